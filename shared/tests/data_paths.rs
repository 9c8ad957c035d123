//! Sample discovery: root escapes (absolute, `..`, symlinks) are rejected, lookups fail
//! independently per modality.
use std::os::unix::fs::symlink;
use std::path::Path;

use weld_cache::data::{Manifest, Modality, SampleFiles, SampleRecord};

const HEADER: &str = "CATEGORY,WELD_TYPE,THICKNESS_MM,STEEL_TYPE,SAMPLES,CURRENT_A,VOLTAGE_V,GAS_BAR,ROBOT_SPEED_CPM,DIRECTORY,SUBDIRS,SPLIT\n";

fn record(subdirs: &str) -> SampleRecord {
    let text = format!("{HEADER}Good,NON_FILLET,7,FE410,1,170,24,4,30,d,{subdirs},TRAIN\n");
    Manifest::parse(Path::new("m.csv"), text.as_bytes())
        .unwrap()
        .samples
        .remove(0)
}

/// A complete sample folder `<root>/<dir>/<id>`.
fn make_sample(root: &Path, dir: &str, id: &str) {
    let d = root.join(dir).join(id);
    std::fs::create_dir_all(d.join("images")).unwrap();
    std::fs::write(d.join(format!("{id}.avi")), b"x").unwrap();
    std::fs::write(d.join(format!("{id}.flac")), b"x").unwrap();
    std::fs::write(d.join("any_name.csv"), b"x").unwrap();
    for (i, ext) in ["png", "jpg", "JPG", "jpeg", "png"].iter().enumerate() {
        std::fs::write(d.join("images").join(format!("v{}.{ext}", 5 - i)), b"x").unwrap();
    }
    std::fs::write(d.join("images").join("notes.txt"), b"x").unwrap();
}

const ID: &str = "01-01-22-0001-00";

#[test]
fn locates_all_modalities() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    make_sample(&root, "sess", ID);
    let f = SampleFiles::locate(&root, &record(&format!("sess/{ID}"))).unwrap();
    assert!(f.video().unwrap().ends_with(format!("{ID}.avi")));
    assert!(f.audio().unwrap().ends_with(format!("{ID}.flac")));
    assert!(f.sensors().unwrap().ends_with("any_name.csv"));
    let imgs = f.images().unwrap();
    let names: Vec<_> = imgs
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["v1.png", "v2.jpeg", "v3.JPG", "v4.jpg", "v5.png"]);
    // .wav when there is no .flac
    let d = root.join("sess").join(ID);
    std::fs::remove_file(d.join(format!("{ID}.flac"))).unwrap();
    std::fs::write(d.join(format!("{ID}.wav")), b"x").unwrap();
    assert!(f.audio().unwrap().ends_with(format!("{ID}.wav")));
}

#[test]
fn modalities_fail_independently() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    make_sample(root, "sess", ID);
    let d = root.join("sess").join(ID);
    std::fs::remove_file(d.join(format!("{ID}.flac"))).unwrap();
    std::fs::remove_file(d.join("images").join("v1.png")).unwrap();
    std::fs::write(d.join("second.csv"), b"x").unwrap();
    let f = SampleFiles::locate(root, &record(&format!("sess/{ID}"))).unwrap();
    assert!(f.video().is_ok());
    let e = f.audio().unwrap_err();
    assert_eq!(
        (e.modality, e.sample.as_str()),
        (Modality::Audio, &*format!("sess/{ID}"))
    );
    let e = f.sensors().unwrap_err();
    assert_eq!(e.modality, Modality::Sensor);
    assert!(e.message.contains("2 *.csv"), "{}", e.message);
    let e = f.images().unwrap_err();
    assert_eq!(e.modality, Modality::Images);
    assert!(e.message.contains("4 images"), "{}", e.message);
    std::fs::remove_dir_all(d.join("images")).unwrap();
    assert_eq!(f.images().unwrap_err().modality, Modality::Images);
    // missing folder
    let e =
        SampleFiles::locate(root, &record(&format!("sess/{}", "01-01-22-0009-00"))).unwrap_err();
    assert_eq!(e.modality, Modality::Folder);
    assert!(e.message.contains("missing"), "{}", e.message);
}

#[test]
fn root_escapes_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    make_sample(&outside, "sess", ID);
    std::fs::create_dir_all(root.join("inner")).unwrap();
    // absolute path to a real, complete sample outside the root
    let abs = outside.join("sess").join(ID);
    let e = SampleFiles::locate(&root, &record(abs.to_str().unwrap())).unwrap_err();
    assert_eq!(e.modality, Modality::Folder);
    assert!(e.message.contains("absolute"), "{}", e.message);
    // .. out of the root
    let e =
        SampleFiles::locate(&root, &record(&format!("inner/../../outside/sess/{ID}"))).unwrap_err();
    assert_eq!(e.modality, Modality::Folder);
    assert!(e.message.contains(".."), "{}", e.message);
    // a directory symlink leaving the root
    symlink(outside.join("sess"), root.join("linked")).unwrap();
    let e = SampleFiles::locate(&root, &record(&format!("linked/{ID}"))).unwrap_err();
    assert_eq!(e.modality, Modality::Folder);
    assert!(e.message.contains("symlink"), "{}", e.message);
    // a symlink staying inside the root is fine
    make_sample(&root, "real", ID);
    symlink(root.join("real"), root.join("alias")).unwrap();
    let f = SampleFiles::locate(&root, &record(&format!("alias/{ID}"))).unwrap();
    assert!(f.video().is_ok());
    // a file symlink leaving the root is rejected for that modality only
    let d = root.join("real").join(ID);
    std::fs::remove_file(d.join(format!("{ID}.avi"))).unwrap();
    symlink(abs.join(format!("{ID}.avi")), d.join(format!("{ID}.avi"))).unwrap();
    let f = SampleFiles::locate(&root, &record(&format!("real/{ID}"))).unwrap();
    let e = f.video().unwrap_err();
    assert_eq!(e.modality, Modality::Video);
    assert!(e.message.contains("symlink"), "{}", e.message);
    assert!(f.audio().is_ok());
}

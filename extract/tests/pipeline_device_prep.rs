//! `run.preprocess = "device"` (the default: resize/crop/normalise from uint8 uploads in the
//! device step) against `"cpu"` (in the decode workers), end to end on a grey MJPEG dataset:
//! on the CPU the two stores are byte-identical (the documented tolerance there is zero; on CUDA
//! the preprocessing itself is tested within its tolerance in
//! `shared/tests/preprocess_device.rs`). Also: the report carries the CPU accounting per stage.
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_extract");

fn run(args: &[&str]) {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "extract {args:?} failed\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn snapshot(store: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                // run reports (timings) are the attributes of the `reports/` groups
                if !rel.starts_with("reports/") {
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(store, store, &mut out);
    out
}

#[test]
fn device_and_cpu_preprocessing_give_identical_stores_on_cpu() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let synth_cfg = t.join("synth.toml");
    std::fs::write(
        &synth_cfg,
        "samples = 6\nseed = 5\nfps = 8.0\nseconds = 2.0\nwidth = 80\nheight = 64\n\
         gray_video = true\nimage_size = 120\nimage_height = 90\n",
    )
    .unwrap();
    let data = t.join("synth");
    let models = t.join("models");
    run(&[
        "synth",
        "--out",
        data.to_str().unwrap(),
        "--config",
        synth_cfg.to_str().unwrap(),
    ]);
    run(&["init-models", "--out", models.to_str().unwrap()]);
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/extract_demo.toml");
    let m = |n: &str| models.join(n).display().to_string();
    let extract = |store: &Path, extra: &[&str]| {
        let mut a: Vec<String> = vec![
            "run".into(),
            "--config".into(),
            config.display().to_string(),
            "--data-root".into(),
            data.display().to_string(),
            "--manifest".into(),
            data.join("manifest.csv").display().to_string(),
            "--out".into(),
            store.display().to_string(),
            "--vjepa".into(),
            m("vjepa2"),
            "--ast".into(),
            m("ast"),
            "--dinov3".into(),
            m("dinov3"),
            "--clip".into(),
            m("clip"),
            "--batch-size".into(),
            "3".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    };
    let dev = t.join("device.zarr");
    let cpu = t.join("cpu.zarr");
    let only = "video,image,frame_dino";
    extract(&dev, &["--preprocess", "device", "--only", only]);
    extract(&cpu, &["--preprocess", "cpu", "--only", only]);
    let (a, b) = (snapshot(&dev), snapshot(&cpu));
    assert!(
        a.keys().any(|k| k.starts_with("video/tokens/c/")),
        "no video chunks"
    );
    assert!(
        a.keys().any(|k| k.starts_with("video/frame_dino/c/")),
        "no frame_dino chunks"
    );
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        assert!(
            v == &b[k],
            "{k} differs between device and cpu preprocessing"
        );
    }
    // the report carries the per-stage CPU accounting
    let group: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dev.join("reports/extract/zarr.json")).unwrap(),
    )
    .unwrap();
    let rep = &group["attributes"]["report"];
    for s in rep["stages"].as_array().unwrap() {
        assert_eq!(s["prepared"].as_u64().unwrap(), 6, "{s}");
        assert!(s["prepare_cpu_seconds"].as_f64().unwrap() > 0.0, "{s}");
        assert!(s["process_cpu_seconds"].as_f64().unwrap() > 0.0, "{s}");
        assert!(s["device_prep_seconds"].as_f64().unwrap() > 0.0, "{s}");
    }
}

//! Manifest parser: the real 4040-row Intel manifest and every rejection rule.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use weld_cache::data::{Manifest, Split, CLASS_NAMES};
use weld_cache::Error;

/// `WELD_INTEL_MANIFEST`, else the copy kept in the repository (`shared/tests/data/`).
fn real_manifest() -> PathBuf {
    if let Ok(p) = std::env::var("WELD_INTEL_MANIFEST") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/intel_manifest.csv")
}

#[test]
fn real_manifest_counts() {
    let path = real_manifest();
    assert!(
        path.exists(),
        "real manifest not found at {} (set WELD_INTEL_MANIFEST)",
        path.display()
    );
    let m = Manifest::read(&path).unwrap();
    assert_eq!(m.samples.len(), 4040);
    let train: Vec<_> = m.split(Split::Train).collect();
    assert_eq!(train.len(), 576);
    assert!(train.iter().all(|s| s.class_code == Some(0) && s.is_good()));
    assert_eq!(m.split(Split::Val).count(), 1732);
    assert_eq!(m.split(Split::Test).count(), 1732);
    let classes: BTreeSet<u8> = m.samples.iter().filter_map(|s| s.class_code).collect();
    assert_eq!(classes.len(), 12);
    // class counts of the published manifest
    let mut per_class: BTreeMap<u8, usize> = BTreeMap::new();
    for s in &m.samples {
        *per_class.entry(s.class_code.unwrap()).or_default() += 1;
        assert_eq!(
            s.class_name.as_deref(),
            Some(CLASS_NAMES[usize::from(s.class_code.unwrap())])
        );
        assert_eq!(s.key, format!("{}/{}", s.directory, s.id));
    }
    let expect = [819, 480, 320, 340, 480, 160, 160, 320, 160, 320, 320, 161];
    for (c, n) in expect.iter().enumerate() {
        assert_eq!(per_class[&(c as u8)], *n, "class {c}");
    }
    // keys unique, 20 ids repeat across folders
    let keys: BTreeSet<&str> = m.samples.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys.len(), 4040);
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for s in &m.samples {
        *ids.entry(s.id.as_str()).or_default() += 1;
    }
    assert_eq!(ids.values().filter(|&&n| n > 1).count(), 20);
    // the hyphen quirk of class 04 folders and the Burnthrough/burn_through spellings
    assert!(m
        .samples
        .iter()
        .any(|s| s.class_code == Some(4) && s.directory.contains("porosity_w-excessive")));
    assert!(m
        .samples
        .iter()
        .any(|s| s.class_code == Some(2) && s.category_raw == "Burnthrough"));
    // file order kept
    assert_eq!(
        m.samples[0].key,
        "good_weld_16_11-18-22_plane_plate/11-18-22-0189-00"
    );
    assert_eq!(m.samples[0].line, 2);
}

const HEADER: &str = "CATEGORY,WELD_TYPE,THICKNESS_MM,STEEL_TYPE,SAMPLES,CURRENT_A,VOLTAGE_V,GAS_BAR,ROBOT_SPEED_CPM,DIRECTORY,SUBDIRS,SPLIT\n";

fn row(cat: &str, dir: &str, id: &str, split: &str) -> String {
    format!("{cat},NON_FILLET,7,FE410,10,170,24.0,4.0,30,{dir},{dir}/{id},{split}\n")
}

fn parse(body: &str) -> Result<Manifest, Error> {
    Manifest::parse(Path::new("m.csv"), format!("{HEADER}{body}").as_bytes())
}

fn manifest_err_row(r: Result<Manifest, Error>) -> (usize, String) {
    match r {
        Err(Error::Manifest { row, message, path }) => {
            assert_eq!(path, Path::new("m.csv"));
            (row, message)
        }
        other => panic!("expected a manifest error, got {other:?}"),
    }
}

#[test]
fn accepts_spelling_variants_and_repeated_ids() {
    let m = parse(
        &[
            row("Good", "a", "01-01-22-0001-00", "TRAIN"),
            row("good", "b", "01-01-22-0001-00", "VAL"), // same id, other folder
            row("Burnthrough", "c", "01-01-22-0002-02", "TEST"),
            row("burn_through", "d", "01-01-22-0003-02", "test"),
            row(
                "Porosity_w-Excessive_Penetration",
                "e",
                "01-01-22-0004-04",
                "VAL",
            ),
        ]
        .concat(),
    )
    .unwrap();
    assert_eq!(m.len(), 5);
    assert_eq!(m.samples[3].class_code, Some(2));
    assert_eq!(m.samples[3].split, Split::Test);
    assert_eq!(
        m.samples[4].class_name.as_deref(),
        Some("porosity_w_excessive_penetration")
    );
    assert_eq!("VAL".parse::<Split>().unwrap().as_str(), "VAL");
}

#[test]
fn rejects_bad_rows_naming_the_row() {
    let good = row("Good", "a", "01-01-22-0001-00", "TRAIN");
    // duplicate key on line 3
    let (r, msg) = manifest_err_row(parse(&format!("{good}{good}")));
    assert_eq!(r, 3);
    assert!(msg.contains("duplicate"), "{msg}");
    // unknown category on line 3
    let (r, msg) = manifest_err_row(parse(&format!(
        "{good}{}",
        row("Cracks", "b", "01-01-22-0002-11", "VAL")
    )));
    assert_eq!(r, 3);
    assert!(msg.contains("unknown CATEGORY"), "{msg}");
    // CATEGORY / CC mismatch on line 2
    let (r, msg) = manifest_err_row(parse(&row("Porosity", "b", "01-01-22-0002-02", "VAL")));
    assert_eq!(r, 2);
    assert!(msg.contains("disagrees"), "{msg}");
    // no CC suffix
    let (r, _) = manifest_err_row(parse(&row("Good", "b", "sample", "VAL")));
    assert_eq!(r, 2);
    // bad split
    let (r, msg) = manifest_err_row(parse(&row("Good", "b", "01-01-22-0002-00", "HOLDOUT")));
    assert_eq!(r, 2);
    assert!(msg.contains("split"), "{msg}");
    // missing column
    let r = Manifest::parse(
        Path::new("m.csv"),
        b"CATEGORY,SUBDIRS,SPLIT\nGood,a/01-01-22-0001-00,TRAIN\n",
    );
    let (r, msg) = manifest_err_row(r);
    assert_eq!(r, 1);
    assert!(msg.contains("missing column"), "{msg}");
    // unreadable file names the path
    match Manifest::read(Path::new("/nonexistent/manifest.csv")) {
        Err(Error::Io { path, .. }) => assert_eq!(path, Path::new("/nonexistent/manifest.csv")),
        other => panic!("{other:?}"),
    }
}

/// Fresh recordings: a manifest without CATEGORY and SPLIT lists UNLABELLED samples (only
/// SUBDIRS required, the session is the folder above the sample); so does an UNLABELLED row with
/// an empty CATEGORY in a labelled manifest. A label on an UNLABELLED row, or only one of the two
/// columns, is refused.
#[test]
fn unlabelled_manifests() {
    let m = Manifest::parse(
        Path::new("m.csv"),
        b"SUBDIRS,WELD_TYPE\ntoday/weld-1,FILLET\ntoday/weld-2,\nloose,\n",
    )
    .unwrap();
    assert_eq!(m.len(), 3);
    for s in &m.samples {
        assert_eq!(
            (s.split, s.class_code, s.class_name.clone()),
            (Split::Unlabelled, None, None)
        );
        assert!(!s.is_good());
    }
    assert_eq!(m.samples[0].id, "weld-1");
    assert_eq!(m.samples[0].directory, "today");
    assert_eq!(m.samples[0].weld_type, "FILLET");
    assert_eq!(m.samples[2].directory, "loose");
    let row_of = m.samples[1].sample_row();
    assert_eq!((row_of.class_code, row_of.split), (None, Split::Unlabelled));

    let mixed = parse(
        &[
            row("Good", "a", "01-01-22-0001-00", "TRAIN"),
            row("", "b", "new-weld", "UNLABELLED"),
        ]
        .concat(),
    )
    .unwrap();
    assert_eq!(mixed.samples[0].class_code, Some(0));
    assert_eq!(mixed.samples[1].class_code, None);
    assert_eq!(mixed.samples[1].split, Split::Unlabelled);

    let (r, msg) = manifest_err_row(parse(&row("Good", "b", "01-01-22-0001-00", "UNLABELLED")));
    assert_eq!(r, 2);
    assert!(msg.contains("an unlabelled sample has no class"), "{msg}");
    let (r, msg) = manifest_err_row(Manifest::parse(
        Path::new("m.csv"),
        b"CATEGORY,SUBDIRS\nGood,a/01-01-22-0001-00\n",
    ));
    assert_eq!(r, 1);
    assert!(msg.contains("has CATEGORY but no SPLIT"), "{msg}");
    let (r, msg) = manifest_err_row(Manifest::parse(Path::new("m.csv"), b"WELD_TYPE\nFILLET\n"));
    assert_eq!(r, 1);
    assert!(msg.contains("missing column SUBDIRS"), "{msg}");
}

/// The shipped split puts most sessions (DIRECTORY) on both sides; `resplit --by-session` and
/// `--supervised` put none, the former with only good welds in TRAIN, the latter with defects.
#[test]
fn real_manifest_sessions_and_resplit() {
    use weld_cache::features::splits::{by_session, sessions_across};
    use weld_cache::schema::SampleRow;
    let m = Manifest::read(&real_manifest()).unwrap();
    let table: Vec<SampleRow> = m.samples.iter().map(|r| r.sample_row()).collect();
    let (across, total) = sessions_across(&table);
    println!("shipped split: {across} of {total} sessions on more than one side");
    assert_eq!((across, total), (215, 236));
    for supervised in [false, true] {
        let rows = by_session(&table, supervised, [0.6, 0.2, 0.2], 0).unwrap();
        assert_eq!(rows.len(), table.len());
        let new: HashMap<&str, Split> = rows.iter().map(|(k, s)| (k.as_str(), *s)).collect();
        let mut t = table.clone();
        for r in t.iter_mut() {
            r.split = new[r.key.as_str()];
        }
        assert_eq!(sessions_across(&t).0, 0, "supervised {supervised}");
        let train_defects = t
            .iter()
            .filter(|r| r.split == Split::Train && r.class_code != Some(0))
            .count();
        for s in [Split::Train, Split::Val, Split::Test] {
            let n = t.iter().filter(|r| r.split == s).count();
            let bad = t
                .iter()
                .filter(|r| r.split == s && r.class_code != Some(0))
                .count();
            println!("supervised {supervised}: {s} {n} ({bad} defective)");
            assert!(n > 0);
            if s != Split::Train {
                assert!(bad > 0, "{s} has no defect");
            }
        }
        if supervised {
            assert!(train_defects > 0, "a supervised split has defects in TRAIN");
        } else {
            assert_eq!(train_defects, 0, "TRAIN holds only good welds");
        }
    }
}

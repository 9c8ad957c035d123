//! `extract synth` then `extract check-data`: zero problems on fresh data; after five kinds of
//! damage (audio deleted, video emptied, CSV column renamed, two images deleted, sample folder
//! deleted) the JSON names exactly those five (sample, modality) pairs.
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_extract");

fn run(args: &[&str]) -> std::process::Output {
    let out = Command::new(BIN).args(args).output().unwrap();
    eprintln!(
        "extract {args:?}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn check(root: &Path, json: &Path, strict: bool) -> (bool, Value) {
    let mut args = vec![
        "check-data",
        "--data-root",
        root.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--threads",
        "2",
    ];
    let manifest = root.join("manifest.csv");
    args.extend(["--manifest", manifest.to_str().unwrap()]);
    if strict {
        args.push("--strict");
    }
    let out = run(&args);
    let v: Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
    (out.status.success(), v)
}

/// Sample keys (SUBDIRS) of the manifest, in order.
fn keys(root: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(root.join("manifest.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').nth(10).unwrap().to_string())
        .collect()
}

#[test]
fn synth_then_check_data_names_each_fault() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("synth");
    let out = run(&[
        "synth",
        "--out",
        root.to_str().unwrap(),
        "--samples",
        "16",
        "--seed",
        "5",
        "--frames",
        "12",
        "--fps",
        "6",
        "--size",
        "40x32",
        "--image-size",
        "48",
    ]);
    assert!(out.status.success());
    let json = tmp.path().join("report.json");
    let (ok, v) = check(&root, &json, true);
    assert!(ok, "strict check of fresh synthetic data failed");
    assert_eq!(v["samples"], 16);
    assert_eq!(v["ok"], 16);
    assert_eq!(v["problems"].as_array().unwrap().len(), 0);
    // exactly the keys of the JSON
    let top: BTreeSet<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(top, BTreeSet::from(["samples", "ok", "problems"]));

    // damage five samples, one way each
    let k = keys(&root);
    let dir = |i: usize| root.join(&k[i]);
    let id = |i: usize| k[i].rsplit('/').next().unwrap().to_string();
    std::fs::remove_file(dir(0).join(format!("{}.flac", id(0)))).unwrap();
    std::fs::write(dir(1).join(format!("{}.avi", id(1))), b"").unwrap();
    let csv = dir(2).join(format!("{}.csv", id(2)));
    let text = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(
        &csv,
        text.replacen("Primary Weld Current", "Primary Current", 1),
    )
    .unwrap();
    let mut imgs: Vec<_> = std::fs::read_dir(dir(3).join("images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    imgs.sort();
    std::fs::remove_file(&imgs[0]).unwrap();
    std::fs::remove_file(&imgs[4]).unwrap();
    std::fs::remove_dir_all(dir(4)).unwrap();

    let (ok, v) = check(&root, &json, false);
    assert!(ok, "check-data without --strict must exit 0");
    assert_eq!(v["samples"], 16);
    assert_eq!(v["ok"], 11);
    let problems = v["problems"].as_array().unwrap();
    let got: BTreeSet<(String, String)> = problems
        .iter()
        .map(|p| {
            (
                p["sample"].as_str().unwrap().to_string(),
                p["modality"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String)> = [
        (0, "audio"),
        (1, "video"),
        (2, "sensor"),
        (3, "images"),
        (4, "folder"),
    ]
    .into_iter()
    .map(|(i, m)| (k[i].clone(), m.to_string()))
    .collect();
    assert_eq!(got, want);
    assert_eq!(
        problems.len(),
        5,
        "one problem per damaged sample: {problems:#?}"
    );
    for p in problems {
        let e = p["error"].as_str().unwrap();
        assert!(
            e.contains(p["sample"].as_str().unwrap().rsplit('/').next().unwrap()),
            "{e}"
        );
    }
    let sensor = problems.iter().find(|p| p["modality"] == "sensor").unwrap();
    assert!(sensor["error"]
        .as_str()
        .unwrap()
        .contains("Primary Weld Current"));
    // --strict turns problems into a failing exit status
    let (ok, _) = check(&root, &json, true);
    assert!(!ok, "--strict must fail when problems exist");
}

#[test]
fn synth_reads_a_config_and_flags_override_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("s.toml");
    std::fs::write(
        &cfg,
        "samples = 5\nseed = 3\nseconds = 1.0\nwidth = 16\nheight = 16\nimage_size = 24\n",
    )
    .unwrap();
    let root = tmp.path().join("d");
    let out = run(&[
        "synth",
        "--config",
        cfg.to_str().unwrap(),
        "--samples",
        "4",
        "--out",
        root.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert_eq!(keys(&root).len(), 4);
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("synth_config.json")).unwrap()).unwrap();
    assert_eq!(written["seed"], 3);
    assert_eq!(written["width"], 16);
    assert_eq!(written["samples"], 4);
    // a typo in the config is an error, not a silent default
    std::fs::write(&cfg, "sampels = 5\n").unwrap();
    let out = run(&[
        "synth",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        root.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
}

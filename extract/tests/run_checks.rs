//! The faults a careful user hits with `extract run` / `extract verify`, and what they now get:
//! every flag checked before any work (nothing left behind, no panic), the writer's real error,
//! a lock against a second unsharded run, verify reading the sample table as the heads do, an
//! old-format store refused with the way to convert it, clear manifest messages.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::{json, Value};
use weld_cache::store::FeatureStore;

const BIN: &str = env!("CARGO_BIN_EXE_extract");

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

struct Fixture {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    models: PathBuf,
}

/// Six synthetic samples and the tiny models.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("synth");
        let models = tmp.path().join("models");
        let d = data.to_str().unwrap();
        let o = run(&[
            "synth",
            "--out",
            d,
            "--samples",
            "6",
            "--seed",
            "5",
            "--seconds",
            "2",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let o = run(&[
            "init-models",
            "--out",
            models.to_str().unwrap(),
            "--size",
            "tiny",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        Fixture {
            _tmp: tmp,
            data,
            models,
        }
    })
}

/// `extract run` arguments; a flag given in `extra` replaces the fixture's.
fn args(store: &Path, manifest: &Path, extra: &[&str]) -> Vec<String> {
    let f = fixture();
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/extract_demo.toml");
    let m = |n: &str| f.models.join(n).display().to_string();
    let mut a: Vec<String> = ["run", "--config", &cfg.display().to_string()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for (flag, v) in [
        ("--data-root", f.data.display().to_string()),
        ("--manifest", manifest.display().to_string()),
        ("--out", store.display().to_string()),
        ("--vjepa", m("vjepa2")),
        ("--ast", m("ast")),
        ("--dinov3", m("dinov3")),
        ("--clip", m("clip")),
        ("--batch-size", "3".into()),
    ] {
        if !extra.contains(&flag) {
            a.push(flag.into());
            a.push(v);
        }
    }
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn extract(store: &Path, extra: &[&str]) -> Output {
    let manifest = fixture().data.join("manifest.csv");
    let a = args(store, &manifest, extra);
    run(&a.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The run fails with exit 1 (an error, not a panic's 101), says `want`, and leaves no store.
fn refused(store: &Path, out: &Output, want: &str) {
    let t = text(out);
    assert_eq!(out.status.code(), Some(1), "expected a clean error:\n{t}");
    assert!(t.contains(want), "message lacks {want:?}:\n{t}");
    assert!(!t.contains("panicked"), "{t}");
    assert!(!store.exists(), "{} was left behind:\n{t}", store.display());
}

#[test]
fn every_flag_is_checked_before_any_work() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("s.zarr");
    let ast = f.models.join("ast").display().to_string();
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--dino-layers", "2,9"],
            "layer 9 out of range: the DINOv3 model".into(),
        ),
        (
            vec!["--dinov3", &ast],
            "this is a `audio-spectrogram-transformer` model folder, but --dinov3 needs a DINOv3 \
             folder"
                .into(),
        ),
        (
            vec!["--ast", "/nonexistent/ast"],
            "--ast /nonexistent/ast: no such model folder".into(),
        ),
        (
            vec!["--frame-dino-layer", "9"],
            "frame_dino.layer 9 out of range: the DINOv3 model".into(),
        ),
        (vec!["--dtype", "f64"], "--dtype / run.dtype".into()),
        (vec!["--device", "tpu"], "unknown device `tpu`".into()),
        (vec!["--device", "cuda:64"], "--device cuda:64".into()),
        (
            vec!["--threads", "100000"],
            "--threads / run.threads 100000 exceeds the".into(),
        ),
    ];
    for (extra, want) in &cases {
        refused(&store, &extract(&store, extra), want);
    }
    // a misspelt stage is a usage error (clap's exit 2) that lists every stage
    let o = extract(&store, &["--only", "frame_dino,spectrum"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(
        t.contains(
            "unknown stage `spectrum` (expected video, audio, image, sensor, text, \
             frame_dino, spectrogram)"
        ),
        "{t}"
    );
    assert!(!store.exists());
    if !tch::Cuda::is_available() {
        let o = extract(&store, &["--device", "cuda"]);
        refused(&store, &o, "libtorch sees no CUDA device on this machine");
    }
    // A truncated weight file is found before any stage runs.
    let broken = tmp.path().join("vjepa2");
    std::fs::create_dir_all(&broken).unwrap();
    let src = f.models.join("vjepa2");
    std::fs::copy(src.join("config.json"), broken.join("config.json")).unwrap();
    let w = std::fs::read(src.join("model.safetensors")).unwrap();
    std::fs::write(broken.join("model.safetensors"), &w[..w.len() / 2]).unwrap();
    let o = extract(&store, &["--vjepa", broken.to_str().unwrap()]);
    refused(&store, &o, "is truncated");
    assert!(text(&o).contains("model.safetensors"), "{}", text(&o));
}

#[test]
fn manifest_faults_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("s.zarr");
    let good = std::fs::read_to_string(fixture().data.join("manifest.csv")).unwrap();
    let header = good.lines().next().unwrap().to_string();
    let cases = [
        ("empty.csv", String::new(), "the file is empty"),
        (
            "semi.csv",
            good.replace(',', ";"),
            "columns are separated by ';', but the manifest must be comma-separated",
        ),
        (
            "header.csv",
            format!("{header}\n"),
            "the manifest lists no sample",
        ),
        (
            "cols.csv",
            good.replace("SPLIT", "PARTITION"),
            "has CATEGORY but no SPLIT (it has CATEGORY,",
        ),
    ];
    for (name, content, want) in cases {
        let m = tmp.path().join(name);
        std::fs::write(&m, content).unwrap();
        let a = args(&store, &m, &[]);
        let o = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
        refused(&store, &o, want);
        assert!(
            text(&o).contains(name),
            "the message names the file:\n{}",
            text(&o)
        );
    }
}

#[test]
fn the_writers_own_error_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("w.zarr");
    let o = extract(&store, &["--only", "sensor"]);
    assert!(o.status.success(), "{}", text(&o));
    // Sample 0's chunk cannot be written (a folder is in its place): as a full disk, the write
    // fails inside the writer thread.
    std::fs::remove_file(store.join("sensor/raw/_markers/0.json")).unwrap();
    let chunk = store.join("sensor/raw/c/0/0/0");
    std::fs::remove_file(&chunk).unwrap();
    std::fs::create_dir(&chunk).unwrap();
    let o = extract(&store, &["--only", "sensor"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(!t.contains("stopped unexpectedly"), "{t}");
    assert!(
        t.contains("sensor/raw/c/0/0/0"),
        "the error names the file:\n{t}"
    );
    assert!(
        t.to_lowercase().contains("is a directory"),
        "the OS error is kept:\n{t}"
    );
}

#[test]
fn a_second_unsharded_run_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("l.zarr");
    assert!(extract(&store, &["--only", "sensor"]).status.success());
    let s = FeatureStore::open(&store).unwrap();
    {
        let _held = s.lock_run(None).unwrap();
        let o = extract(&store, &["--only", "sensor"]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(
            text(&o).contains("is in use by another `extract run`"),
            "{}",
            text(&o)
        );
        let o = extract(&store, &["--only", "sensor", "--shard", "1/2"]);
        assert!(
            text(&o).contains("an unsharded run holds the store"),
            "{}",
            text(&o)
        );
    }
    // Released (the kernel drops the lock with the holder): the next run proceeds.
    assert!(extract(&store, &["--only", "sensor"]).status.success());
}

fn set_root_attr(store: &Path, f: impl FnOnce(&mut Value)) {
    let p = store.join("zarr.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

#[test]
fn verify_reads_the_sample_table_as_the_heads_do() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("t.zarr");
    assert!(extract(&store, &["--only", "sensor"]).status.success());
    let o = run(&["verify", "--store", store.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let rows = {
        let v: Value =
            serde_json::from_slice(&std::fs::read(store.join("zarr.json")).unwrap()).unwrap();
        v["attributes"]["samples"].as_array().unwrap().clone()
    };
    let good: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i]["class_code"] == json!(0))
        .collect();
    let (first, key) = (good[0], rows[good[0]]["key"].as_str().unwrap().to_string());
    // Every good weld named `undercut`: consistent within the table, but not the class table.
    let bad = tmp.path().join("bad.zarr");
    Command::new("cp")
        .args(["-a", store.to_str().unwrap(), bad.to_str().unwrap()])
        .status()
        .unwrap();
    set_root_attr(&bad, |v| {
        for &i in &good {
            v["attributes"]["samples"][i]["class_name"] = json!("undercut");
        }
    });
    let o = run(&["verify", "--store", bad.to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains(&format!(
            "sample table problem: sample {first} (`{key}`): class code 0 is `good`, but the \
             table names the class `undercut`"
        )),
        "{t}"
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with(&format!("verdict: NOT SOUND: {} problem", good.len())),
        "{out}"
    );
    // One good weld named otherwise: the table contradicts itself, the heads refuse it.
    set_root_attr(&bad, |v| {
        for &i in &good[1..] {
            v["attributes"]["samples"][i]["class_name"] = json!("good");
        }
    });
    let o = run(&["verify", "--store", bad.to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("class code 0 is named"), "{t}");
    assert!(t.contains("the heads refuse it"), "{t}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("verdict: NOT SOUND: 1 problem"),
        "{out}"
    );
    // A table the heads cannot parse.
    set_root_attr(&bad, |v| v["attributes"]["samples"] = json!([1, 2, "x"]));
    let o = run(&["verify", "--store", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("bad `samples` table"), "{}", text(&o));
    // An old-format store is refused with the way to convert it.
    set_root_attr(&bad, |v| {
        v["attributes"]["weld_cache_store"]["format_version"] = json!(1);
    });
    let o = run(&["verify", "--store", bad.to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("has format version 1; this build reads version 2"),
        "{t}"
    );
    assert!(t.contains("extract migrate --store"), "{t}");
}

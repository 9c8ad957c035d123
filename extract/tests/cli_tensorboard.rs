//! `extract run --tensorboard DIR`: each invocation appends one step of per-stage throughput,
//! read back with Python `tensorboard`'s reader (tests/oracle/tb_events.py) and equal to the
//! run's report (`reports/extract` group attribute); a rerun (everything already done) is the next step.
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_extract");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> PathBuf {
    std::env::var_os("WELD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"))
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "command failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn extract(args: &[&str]) -> Output {
    ok(Command::new(BIN)
        .env("OMP_NUM_THREADS", "1")
        .args(args)
        .output()
        .unwrap())
}

fn run(data: &Path, models: &Path, store: &Path, tb: &Path) -> Value {
    let m = |n: &str| models.join(n).display().to_string();
    let cfg = repo().join("configs/extract_demo.toml");
    let manifest = data.join("manifest.csv");
    let mut args: Vec<String> = vec!["run".into(), "--config".into(), cfg.display().to_string()];
    for (flag, v) in [
        ("--data-root", data.display().to_string()),
        ("--manifest", manifest.display().to_string()),
        ("--out", store.display().to_string()),
        ("--vjepa", m("vjepa2")),
        ("--ast", m("ast")),
        ("--dinov3", m("dinov3")),
        ("--clip", m("clip")),
        ("--batch-size", "3".into()),
        ("--tensorboard", tb.display().to_string()),
    ] {
        args.push(flag.into());
        args.push(v);
    }
    let out = extract(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("throughput logged to TensorBoard"), "{err}");
    // the run's report: the `report` attribute of the store's `reports/extract` group
    let group: Value =
        serde_json::from_slice(&std::fs::read(store.join("reports/extract/zarr.json")).unwrap())
            .unwrap();
    group["attributes"]["report"].clone()
}

#[test]
fn throughput_scalars_equal_the_report_one_step_per_invocation() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, models) = (tmp.path().join("synth"), tmp.path().join("models"));
    let (store, tb) = (tmp.path().join("s.zarr"), tmp.path().join("tb/extract"));
    let d = data.display().to_string();
    extract(&[
        "synth",
        "--out",
        &d,
        "--samples",
        "6",
        "--seed",
        "3",
        "--seconds",
        "3",
    ]);
    let m = models.display().to_string();
    extract(&["init-models", "--out", &m, "--size", "tiny"]);
    let reports = [
        run(&data, &models, &store, &tb),
        run(&data, &models, &store, &tb),
    ];

    let json = tmp.path().join("tb.json");
    ok(Command::new(python())
        .arg(repo().join("tests/oracle/tb_events.py"))
        .arg(&tb)
        .arg(&json)
        .output()
        .unwrap());
    let got: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(got["runs"], serde_json::json!(["."]));
    let mut scalars: HashMap<(String, i64), Vec<f64>> = HashMap::new();
    for s in got["raw"]["."]["scalars"].as_array().unwrap() {
        let key = (
            s["tag"].as_str().unwrap().to_string(),
            s["step"].as_i64().unwrap(),
        );
        scalars
            .entry(key)
            .or_default()
            .push(s["value"].as_f64().unwrap());
    }
    let one = |tag: &str, step: i64| -> f64 {
        let v = scalars
            .get(&(tag.to_string(), step))
            .unwrap_or_else(|| panic!("no `{tag}` at step {step}"));
        assert_eq!(v.len(), 1, "{tag} at step {step}: {v:?}");
        v[0]
    };
    let f32eq = |a: f64, b: f64| a as f32 == b as f32;
    let mut expected = 0;
    for (step, report) in reports.iter().enumerate() {
        let step = step as i64;
        assert!(f32eq(
            one("extract/total/seconds", step),
            report["seconds"].as_f64().unwrap()
        ));
        assert_eq!(one("extract/total/samples", step), 6.0);
        assert_eq!(one("extract/total/faults", step), 0.0);
        expected += 3;
        let stages = report["stages"].as_array().unwrap();
        assert!(stages.len() >= 4, "{stages:?}");
        for s in stages {
            let p = format!("extract/{}", s["stage"].as_str().unwrap());
            for k in [
                "seconds",
                "prepare_seconds",
                "compute_seconds",
                "wait_seconds",
                "write_seconds",
                "written",
                "already_done",
                "faults",
            ] {
                let want = s[k].as_f64().unwrap();
                assert!(f32eq(one(&format!("{p}/{k}"), step), want), "{p}/{k}");
                expected += 1;
            }
            let written = s["written"].as_f64().unwrap();
            // the first run writes every stage (6 samples; text: one embedding), the rerun
            // finds everything done
            assert_eq!(written > 0.0, step == 0, "{p} wrote {written}");
            let rate = scalars.get(&(format!("{p}/samples_per_s"), step));
            if step == 0 {
                let want = written / s["seconds"].as_f64().unwrap();
                assert!(f32eq(one(&format!("{p}/samples_per_s"), step), want), "{p}");
                expected += 1;
            } else {
                assert!(rate.is_none(), "{p}: a rate for a stage that wrote nothing");
            }
        }
    }
    assert_eq!(scalars.len(), expected, "unexpected extra scalars");
}

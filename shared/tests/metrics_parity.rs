//! Metrics parity with scikit-learn: AUROC, AP, best-F1 threshold with precision/recall, and
//! precision/recall/F1 at a given threshold, on random scores with many ties, to 1e-12.
//! Fixtures come from `tests/oracle/metrics_sklearn.py`, run at test time.
use std::path::PathBuf;
use std::process::Command;
use weld_cache::metrics::{self, Curve};

fn python() -> PathBuf {
    std::env::var_os("WELD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn metrics_match_sklearn() {
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new(python())
        .arg(repo().join("tests/oracle/metrics_sklearn.py"))
        .arg(dir.path())
        .status()
        .expect("spawn python oracle");
    assert!(st.success(), "oracle failed");
    let text = std::fs::read_to_string(dir.path().join("metrics_cases.json")).unwrap();
    let cases: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(cases.len(), 5);
    let f = |c: &serde_json::Value, k: &str| c[k].as_f64().unwrap();
    let mut worst = 0.0f64;
    for (i, c) in cases.iter().enumerate() {
        let scores: Vec<f64> = c["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let pos: Vec<bool> = c["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap() == 1)
            .collect();
        let distinct = {
            let mut s = scores.clone();
            s.sort_by(f64::total_cmp);
            s.dedup();
            s.len()
        };
        assert!(distinct < scores.len(), "case {i} has no ties");
        let curve = Curve::new(&scores, &pos).unwrap();
        let (thr, f1, p, r) = curve.best_f1();
        let fixed = metrics::prf_at(&scores, &pos, f(c, "fixed_threshold"));
        let pairs = [
            ("auroc", curve.auroc()),
            ("ap", curve.average_precision()),
            ("best_threshold", thr),
            ("best_f1", f1),
            ("best_precision", p),
            ("best_recall", r),
            ("fixed_f1", fixed.0),
            ("fixed_precision", fixed.1),
            ("fixed_recall", fixed.2),
        ];
        for (k, got) in pairs {
            let err = (got - f(c, k)).abs();
            worst = worst.max(err);
            assert!(err <= 1e-12, "case {i} {k}: rust {got} sklearn {}", f(c, k));
        }
        // evaluate() agrees with the pieces, on VAL (chosen) and TEST (given) thresholds
        let classes: Vec<u8> = pos.iter().map(|&b| b as u8 * 3).collect();
        let m = metrics::evaluate(&scores, &classes, None).unwrap();
        assert_eq!((m.auroc, m.threshold, m.f1), (curve.auroc(), thr, f1));
        let good = &m.per_class["00_good"];
        let bad = &m.per_class["03_porosity"];
        assert_eq!(good.count + bad.count, scores.len());
        assert_eq!(bad.auroc_vs_good, Some(curve.auroc()));
        assert_eq!(good.auroc_vs_good, None);
    }
    println!("metrics parity: worst abs error {worst:e}");
}

#[test]
fn per_class_statistics() {
    let scores = [1.0, 2.0, 3.0, 10.0, 20.0, 0.5];
    let classes = [0, 0, 0, 5, 5, 7];
    let pc = metrics::per_class(&scores, &classes).unwrap();
    let g = &pc["00_good"];
    assert_eq!((g.count, g.mean, g.min, g.max), (3, 2.0, 1.0, 3.0));
    assert!((g.std - (2.0f64 / 3.0).sqrt()).abs() < 1e-15);
    assert_eq!(pc["05_undercut"].auroc_vs_good, Some(1.0));
    assert_eq!(pc["07_lack_of_fusion"].auroc_vs_good, Some(0.0));
}

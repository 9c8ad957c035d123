//! The training loop on a small MLP autoencoder over synthetic features with planted defects:
//! it learns, runs are deterministic, a resumed run equals an uninterrupted one exactly (CPU),
//! early stopping fires, eval reproduces metrics.json, and wrong stores / configs are refused.
use std::collections::HashMap;
use std::path::Path;
use tch::{nn, Device, Tensor};
use weld_cache::features::synth::{SynthConfig, SynthFeatures};
use weld_cache::heads::mlp_ae::{MlpAe, MlpAeConfig};
use weld_cache::train::{
    apply_set, evaluate_best, fit, load_config, trainer::FitOutcome, Evaluation, RunOptions,
    TrainConfig,
};
use weld_cache::Error;

/// torch's global RNG is shared by the test threads of this binary: runs must not interleave.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn train_cfg(seed: u64) -> TrainConfig {
    TrainConfig {
        epochs: 10,
        batch_size: 16,
        eval_batch_size: 32,
        drop_last: false,
        lr: 1e-2,
        min_lr: 1e-5,
        warmup_epochs: 1,
        warmup_start_lr: 1e-4,
        weight_decay: 1e-2,
        betas: [0.9, 0.999],
        eps: 1e-8,
        grad_clip: 0.5,
        ema: true,
        ema_max_decay: 0.9999,
        patience: 20,
        seed,
        schedule: Default::default(),
        autocast: Default::default(),
    }
}

fn synth_cfg() -> SynthConfig {
    SynthConfig {
        dim: 16,
        rank: 2,
        n_train: 160,
        n_val: 60,
        n_test: 60,
        defect_fraction: 0.4,
        n_classes: 3,
        shift: 5.0,
        noise: 0.1,
        seed: 5,
    }
}

const AE: MlpAeConfig = MlpAeConfig {
    hidden: 32,
    bottleneck: 4,
    input_dropout: 0.1,
    features: Vec::new(),
};

struct Run {
    outcome: FitOutcome,
}

fn run(
    out: &Path,
    cfg: &TrainConfig,
    resume: bool,
    max_epochs: Option<usize>,
) -> weld_cache::Result<Run> {
    let mut src = SynthFeatures::new(&synth_cfg(), Device::Cpu, false)?;
    tch::manual_seed(cfg.seed as i64);
    let vs = nn::VarStore::new(Device::Cpu);
    let head = MlpAe::new(vs.root(), src.dim() as i64, &AE);
    let opts = RunOptions {
        out: out.to_path_buf(),
        fingerprint: src.fingerprint(),
        config_text: format!("{cfg:?}"),
        resume,
        max_epochs_this_run: max_epochs,
    };
    let outcome = fit(&head, &vs, &mut src, cfg, &opts, &mut |_| {})?;
    Ok(Run { outcome })
}

fn finished(r: Run) -> Box<Evaluation> {
    match r.outcome {
        FitOutcome::Finished(e) => e,
        FitOutcome::Paused { .. } => panic!("paused"),
    }
}

/// history.csv without the wall-clock column.
fn history_wo_seconds(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("history.csv"))
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn tensors(path: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path)
        .unwrap()
        .into_iter()
        .collect()
}

fn same_tensors(a: &Path, b: &Path) {
    let (ta, tb) = (tensors(a), tensors(b));
    assert_eq!(ta.len(), tb.len());
    for (k, v) in &ta {
        if k == "__state__" {
            continue;
        }
        assert!(v.equal(&tb[k]), "{k} differs between {a:?} and {b:?}");
    }
}

#[test]
fn learns_is_deterministic_and_resumes_exactly() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c, r) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
        tmp.path().join("r"),
    );
    let cfg = train_cfg(42);
    let ev = finished(run(&a, &cfg, false, None).unwrap());
    let m = &ev.metrics;
    println!(
        "synthetic MLP-AE: best epoch {} ({}), VAL AUROC {:.4}, TEST AUROC {:.4} F1 {:.4}",
        m.best_epoch, m.chosen, m.val.auroc, m.test.auroc, m.test.f1
    );
    assert!(m.test.auroc > 0.85, "TEST AUROC {}", m.test.auroc);

    for f in [
        "config.toml",
        "history.csv",
        "metrics.json",
        "best.safetensors",
        "last.safetensors",
    ] {
        assert!(a.join(f).is_file(), "{f} missing");
    }
    for f in ["roc.png", "scores_by_class.png", "loss.png"] {
        let len = std::fs::metadata(a.join("plots").join(f)).unwrap().len();
        assert!(len > 5_000, "plot {f} is only {len} bytes");
    }
    let hist = history_wo_seconds(&a);
    assert_eq!(hist.lines().count(), 1 + cfg.epochs);
    assert!(hist.lines().next().unwrap().contains("mse"));
    assert!(hist.lines().next().unwrap().contains("z_spread"));

    // same seed -> identical history, metrics and weights
    finished(run(&b, &cfg, false, None).unwrap());
    assert_eq!(hist, history_wo_seconds(&b));
    assert_eq!(
        std::fs::read_to_string(a.join("metrics.json")).unwrap(),
        std::fs::read_to_string(b.join("metrics.json")).unwrap()
    );
    same_tensors(&a.join("last.safetensors"), &b.join("last.safetensors"));

    // another seed -> another history (the comparison above can fail)
    finished(run(&c, &train_cfg(43), false, None).unwrap());
    assert_ne!(hist, history_wo_seconds(&c));

    // stop after 2 epochs, resume twice (1 more, then the rest): same as uninterrupted
    match run(&r, &cfg, false, Some(2)).unwrap().outcome {
        FitOutcome::Paused { epochs_done } => assert_eq!(epochs_done, 2),
        FitOutcome::Finished(_) => panic!("should pause"),
    }
    assert!(!r.join("metrics.json").exists());
    assert!(matches!(
        run(&r, &cfg, true, Some(1)).unwrap().outcome,
        FitOutcome::Paused { epochs_done: 3 }
    ));
    finished(run(&r, &cfg, true, None).unwrap());
    assert_eq!(hist, history_wo_seconds(&r));
    assert_eq!(
        std::fs::read_to_string(a.join("metrics.json")).unwrap(),
        std::fs::read_to_string(r.join("metrics.json")).unwrap()
    );
    same_tensors(&a.join("last.safetensors"), &r.join("last.safetensors"));
    same_tensors(&a.join("best.safetensors"), &r.join("best.safetensors"));

    // eval from the best checkpoint reproduces metrics.json
    let mut src = SynthFeatures::new(&synth_cfg(), Device::Cpu, false).unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let head = MlpAe::new(vs.root(), 16, &AE);
    let fp = src.fingerprint();
    let again = evaluate_best(&head, &vs, &mut src, &a, &fp, cfg.eval_batch_size).unwrap();
    assert_eq!(again.metrics, ev.metrics);
    assert_eq!(again.test.scores, ev.test.scores);

    // another store is refused, by eval and by resume
    let err = evaluate_best(&head, &vs, &mut src, &a, "other-store", 32)
        .err()
        .unwrap();
    assert!(matches!(err, Error::StoreMismatch { .. }), "{err}");
    // starting a fresh run over an existing one is refused
    let err = run(&a, &cfg, false, None).err().unwrap();
    assert!(err.to_string().contains("--resume"), "{err}");
    // resuming with another config is refused
    let err = run(&a, &train_cfg(7), true, None).err().unwrap();
    assert!(err.to_string().contains("config differs"), "{err}");
}

#[test]
fn early_stopping_fires() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    // a learning rate too small to change the ranking of VAL scores: no strict improvement
    let cfg = TrainConfig {
        lr: 1e-12,
        min_lr: 1e-12,
        warmup_epochs: 0,
        warmup_start_lr: 1e-12,
        weight_decay: 0.0,
        epochs: 30,
        patience: 3,
        ..train_cfg(1)
    };
    let ev = finished(run(tmp.path(), &cfg, false, None).unwrap());
    let rows = history_wo_seconds(tmp.path()).lines().count() - 1;
    assert_eq!(rows, 1 + cfg.patience, "stopped after {rows} epochs");
    assert_eq!(ev.metrics.best_epoch, 0);
}

#[test]
fn defaults_config_and_overrides() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = repo.join("configs/train_defaults.toml");
    let doc = load_config(&path, &[]).unwrap();
    let cfg = TrainConfig::from_doc(&doc).unwrap();
    assert_eq!((cfg.lr, cfg.min_lr, cfg.warmup_epochs), (2e-5, 1e-7, 0));
    assert_eq!(
        cfg.schedule,
        weld_cache::train::schedule::ScheduleKind::CosineAnnealing
    );
    assert_eq!((cfg.patience, cfg.batch_size, cfg.seed), (20, 32, 42));
    assert_eq!(
        (cfg.grad_clip, cfg.betas, cfg.eps),
        (0.5, [0.9, 0.999], 1e-8)
    );
    assert_eq!(cfg.autocast, weld_cache::train::config::Autocast::Off);
    let sets = [
        "train.lr=1e-4".to_string(),
        "train.epochs=7".into(),
        "train.weight_decay=0".into(), // integer into a float key
        "train.ema=false".into(),
    ];
    let cfg = TrainConfig::from_doc(&load_config(&path, &sets).unwrap()).unwrap();
    assert_eq!(
        (cfg.lr, cfg.epochs, cfg.weight_decay, cfg.ema),
        (1e-4, 7, 0.0, false)
    );
    for bad in ["train.lr_typo=1", "train.epochs=many", "nolr=1", "train.lr"] {
        let e = load_config(&path, &[bad.to_string()]).err();
        assert!(e.is_some(), "`{bad}` accepted");
    }
    let mut doc = toml::Value::Table(Default::default());
    assert!(apply_set(&mut doc, "a.b=1").is_err());
}

/// `train.autocast = "bf16"` is CUDA only: a CPU run is refused before any step, naming the key,
/// instead of silently training in f32.
#[test]
fn bf16_autocast_is_refused_on_the_cpu() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        autocast: weld_cache::train::config::Autocast::Bf16,
        ..train_cfg(1)
    };
    let err = run(tmp.path(), &cfg, false, None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("autocast") && err.contains("CUDA only"),
        "{err}"
    );
    assert!(!tmp.path().join("history.csv").exists());
}

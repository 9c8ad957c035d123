//! AdamW + gradient clipping against `torch.optim.AdamW` / `clip_grad_norm_` (oracle
//! `tests/oracle/train_adamw.py`, run at test time), the learning-rate curve, and the EMA ramp.
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use tch::{nn, Device, Kind, Tensor};
use weld_cache::train::schedule::ScheduleKind;
use weld_cache::train::{AdamW, AdamWConfig, Ema, Schedule};

fn python() -> PathBuf {
    std::env::var_os("WELD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn adamw_and_clipping_match_torch() {
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new(python())
        .arg(repo().join("tests/oracle/train_adamw.py"))
        .arg(dir.path())
        .status()
        .expect("spawn python oracle");
    assert!(st.success(), "oracle failed");
    let fx: HashMap<String, Tensor> =
        Tensor::read_safetensors(dir.path().join("adamw.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
    let names = ["a", "b", "c"];
    let vs = nn::VarStore::new(Device::Cpu);
    let params: Vec<Tensor> = names
        .iter()
        .map(|n| vs.root().var_copy(n, &fx[&format!("init.{n}")]))
        .collect();
    let mut opt = AdamW::new(
        &vs,
        AdamWConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
        },
    );
    let lrs = Vec::<f64>::try_from(&fx["lr"]).unwrap();
    let (mut worst_p, mut worst_n) = (0.0f64, 0.0f64);
    for (k, &lr) in lrs.iter().enumerate() {
        opt.zero_grad();
        // d/dp sum(p * g) = g exactly
        let loss = names
            .iter()
            .zip(&params)
            .map(|(n, p)| (p * &fx[&format!("grad.{k}.{n}")]).sum(Kind::Float))
            .reduce(|a, b| a + b)
            .unwrap();
        loss.backward();
        let norm = opt.clip_grad_norm(0.5);
        let want = fx[&format!("norm.{k}")].double_value(&[0]);
        worst_n = worst_n.max((norm - want).abs() / want);
        opt.set_lr(lr);
        opt.step();
        for (n, p) in names.iter().zip(&params) {
            let d = max_diff(p, &fx[&format!("param.{k}.{n}")]);
            worst_p = worst_p.max(d);
            assert!(d <= 1e-6, "step {k} param {n}: max abs diff {d}");
        }
    }
    assert!(worst_n <= 1e-6, "grad norm rel err {worst_n}");
    let state: HashMap<String, Tensor> = opt.state_tensors().into_iter().collect();
    for n in names {
        let dm = max_diff(&state[&format!("adam_m.{n}")], &fx[&format!("exp_avg.{n}")]);
        let dv = max_diff(
            &state[&format!("adam_v.{n}")],
            &fx[&format!("exp_avg_sq.{n}")],
        );
        assert!(dm <= 1e-6 && dv <= 1e-6, "moments of {n}: {dm} {dv}");
    }
    assert_eq!(opt.step_count(), lrs.len() as i64);
    println!("adamw parity: max param diff {worst_p:e}, grad-norm rel err {worst_n:e}");
}

#[test]
fn schedule_curve() {
    let s = Schedule {
        lr: 2e-5,
        min_lr: 1e-7,
        warmup_epochs: 3,
        warmup_start_lr: 1e-7,
        epochs: 100,
        kind: ScheduleKind::WarmupCosine,
    };
    let lr: Vec<f64> = (0..100).map(|e| s.lr_at(e)).collect();
    assert_eq!(lr[0], 1e-7);
    assert!((lr[1] - (1e-7 + (2e-5 - 1e-7) / 3.0)).abs() < 1e-20);
    assert_eq!(lr[3], 2e-5);
    assert!((lr[99] - 1e-7).abs() < 1e-20);
    // halfway through the cosine (t = (51 - 3) / 96 = 0.5): the mean of lr and min_lr
    assert!((lr[51] - (2e-5 + 1e-7) / 2.0).abs() < 1e-18);
    assert!(lr[..4].windows(2).all(|w| w[1] > w[0]), "warm-up increases");
    assert!(lr[3..].windows(2).all(|w| w[1] < w[0]), "cosine decreases");
    // v5_text profile: 8 warm-up epochs from 5e-7
    let v5 = Schedule {
        warmup_epochs: 8,
        warmup_start_lr: 5e-7,
        ..s
    };
    assert_eq!(v5.lr_at(0), 5e-7);
    assert_eq!(v5.lr_at(8), 2e-5);
    assert!(v5.lr_at(7) < 2e-5);
    // causal_film.toml: the seed's CosineAnnealingLR(T_max=100, eta_min=1e-7), no warm-up
    let code = Schedule {
        warmup_epochs: 0,
        kind: ScheduleKind::CosineAnnealing,
        ..s
    };
    assert_eq!(code.lr_at(0), 2e-5);
    assert!((code.lr_at(50) - (2e-5 + 1e-7) / 2.0).abs() < 1e-18);
    let torch_last = 1e-7 + (2e-5 - 1e-7) * (1.0 + (std::f64::consts::PI * 0.99).cos()) / 2.0;
    assert_eq!(code.lr_at(99), torch_last);
}

#[test]
fn ema_ramp_and_swap() {
    let vs = nn::VarStore::new(Device::Cpu);
    let w = vs.root().var_copy("w", &Tensor::from_slice(&[0.0f32, 0.0]));
    let mut ema = Ema::new(&vs, 0.9999);
    assert_eq!(ema.decay(), 0.1);
    let mut expect = 0.0f64;
    for k in 0..50 {
        let d = ema.decay();
        assert!((d - (1.0 + k as f64) / (10.0 + k as f64)).abs() < 1e-15);
        let _ = tch::no_grad(|| w.shallow_clone().fill_(1.0 + k as f64));
        ema.update();
        expect = d * expect + (1.0 - d) * (1.0 + k as f64);
    }
    let shadow = ema.named("")[0].1.double_value(&[0]);
    assert!((shadow - expect).abs() < 1e-4, "{shadow} vs {expect}");
    ema.swap();
    assert!((w.double_value(&[1]) - expect).abs() < 1e-4);
    ema.swap();
    assert_eq!(w.double_value(&[1]), 50.0);
    let mut capped = Ema::new(&vs, 0.5);
    for _ in 0..10 {
        capped.update();
    }
    assert_eq!(capped.decay(), 0.5);
}

#[test]
fn clip_groups_clip_each_group_on_its_own() {
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let root = vs.root();
    let a = (&root / "model").var("a", &[2], nn::Init::Const(0.0));
    let b = (&root / "clip_head").var("b", &[2], nn::Init::Const(0.0));
    let grads = |opt: &mut AdamW| {
        opt.zero_grad();
        // d/da = [3, 4] (norm 5), d/db = [6, 8] (norm 10)
        let loss = (&a * Tensor::from_slice(&[3.0f32, 4.0])).sum(Kind::Float)
            + (&b * Tensor::from_slice(&[6.0f32, 8.0])).sum(Kind::Float);
        loss.backward();
    };
    let mut opt = AdamW::new(&vs, AdamWConfig::default());
    grads(&mut opt);
    let n = opt.clip_grad_norm_groups(1.0, &["clip_head.".to_string()]);
    assert!((n - 5.0).abs() < 1e-6, "main group norm {n}");
    let norm = |t: &Tensor| t.grad().norm().double_value(&[]);
    assert!((norm(&a) - 1.0).abs() < 1e-5 && (norm(&b) - 1.0).abs() < 1e-5);
    // one global norm (the original with a trained head): sqrt(125), both scaled alike
    grads(&mut opt);
    let n = opt.clip_grad_norm(1.0);
    assert!((n - 125f64.sqrt()).abs() < 1e-5);
    assert!((norm(&a) - 5.0 / 125f64.sqrt()).abs() < 1e-5);
}

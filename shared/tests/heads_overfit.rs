//! Training sanity on CPU: a few Adam steps on one small batch reduce the loss; training-mode
//! randomness (feature noise, dropouts) comes from torch's RNG, so `tch::manual_seed` makes it
//! reproducible, while eval mode is deterministic and noise-free.
mod heads_common;

use heads_common::{random_batch, rng_lock, small_config};
use tch::nn::OptimizerConfig;
use tch::{nn, Device, Kind, Tensor};
use weld_cache::heads::causal_film::{loss, CausalFilm, ClipHead};

#[test]
fn adam_steps_reduce_the_loss() {
    let _rng = rng_lock();
    tch::set_num_threads(1);
    for profile in ["code", "text"] {
        let cfg = small_config(profile);
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = CausalFilm::new(&(vs.root() / "model"), &cfg);
        let clip = ClipHead::new(&(vs.root() / "clip_head"), &cfg);
        let batch = random_batch(&cfg, 8);
        let text = Tensor::randn([cfg.model.clip_head.text_dim], (Kind::Float, Device::Cpu));
        let eval_loss = || {
            tch::no_grad(|| {
                let (zr, zp) = model.forward_t(&batch, false);
                loss(&cfg, &zr, &zp, &clip, &text, false)
                    .total
                    .double_value(&[])
            })
        };
        let before = eval_loss();
        let mut opt = nn::Adam::default().build(&vs, 3e-3).unwrap();
        for step in 0..40 {
            tch::manual_seed(100 + step);
            let (zr, zp) = model.forward_t(&batch, true);
            let t = loss(&cfg, &zr, &zp, &clip, &text, true);
            assert!(
                t.total.double_value(&[]).is_finite(),
                "{profile}: loss not finite"
            );
            opt.backward_step(&t.total);
        }
        let after = eval_loss();
        println!("{profile}: eval loss {before:.4} -> {after:.4} after 40 Adam steps");
        assert!(after < 0.5 * before, "{profile}: loss {before} -> {after}");
    }
}

#[test]
fn train_mode_noise_follows_torch_rng() {
    let _rng = rng_lock();
    let cfg = small_config("code");
    tch::manual_seed(5);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = CausalFilm::new(&(vs.root() / "model"), &cfg);
    let batch = random_batch(&cfg, 3);
    let run = |seed: i64, train: bool| {
        tch::manual_seed(seed);
        let (zr, zp) = tch::no_grad(|| model.forward_t(&batch, train));
        (zr, zp)
    };
    let (r1, p1) = run(11, true);
    let (r2, p2) = run(11, true);
    let (_, p3) = run(12, true);
    assert!(
        p1.equal(&p2) && r1.equal(&r2),
        "same seed, same train-mode output"
    );
    assert!(!p1.equal(&p3), "another seed changes the train-mode output");
    let (e1r, e1) = run(11, false);
    let (e2r, e2) = run(99, false);
    assert!(
        e1.equal(&e2) && e1r.equal(&e2r),
        "eval mode ignores the RNG"
    );
    assert!(!e1.equal(&p1), "train mode differs from eval mode");
    // Z_result has no dropout: identical in train and eval mode.
    assert!(e1r.equal(&r1));
}

#[test]
fn head_bundle_loss_score_diagnostics() {
    let _rng = rng_lock();
    use weld_cache::heads::causal_film::CausalFilmHead;
    let cfg = small_config("code");
    tch::manual_seed(9);
    let vs = nn::VarStore::new(Device::Cpu);
    let bad_text = Tensor::zeros([3], (Kind::Float, Device::Cpu));
    let err = CausalFilmHead::new(&vs.root(), &cfg, &bad_text).unwrap_err();
    assert!(err.to_string().contains("text embedding"), "{err}");

    let vs = nn::VarStore::new(Device::Cpu);
    let text = Tensor::randn([cfg.model.clip_head.text_dim], (Kind::Float, Device::Cpu));
    let head = CausalFilmHead::new(&(vs.root() / "head"), &cfg, &text).unwrap();
    let batch = random_batch(&cfg, 4);
    let (total, terms) = head.loss(&batch, false);
    let names: Vec<&str> = terms.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["cos", "rec", "gram", "clip"]);
    let l = &cfg.loss;
    let weighted = terms[0].1 * l.cos_weight
        + terms[1].1 * l.rec.weight()
        + terms[2].1 * l.gram_weight
        + terms[3].1 * l.clip_weight;
    assert!((total.double_value(&[]) - weighted).abs() < 1e-5);
    let s = tch::no_grad(|| head.score(&batch));
    assert_eq!(s.size(), vec![4]);
    let d = tch::no_grad(|| head.diagnostics(&batch));
    assert_eq!(d[0].0, "z_result_spread");
    assert!(d.iter().all(|(_, v)| v.is_finite() && *v > 0.0), "{d:?}");
    let report = head.param_report(&vs);
    let model_total: i64 = head.model.param_counts(&vs).iter().map(|x| x.1).sum();
    assert!(model_total > 0 && report.contains("clip_head") && report.contains("process"));

    // Half-precision tokens (as stored) pool in f32: same result as converting them first.
    let mut half = random_batch(&cfg, 2);
    half.image_tokens = half
        .image_tokens
        .iter()
        .map(|t| t.to_kind(Kind::Half))
        .collect();
    half.validate(&cfg).unwrap();
    let mut widened = half
        .image_tokens
        .iter()
        .map(|t| t.to_kind(Kind::Float))
        .collect();
    let zr_half = tch::no_grad(|| head.model.forward_t(&half, false).0);
    std::mem::swap(&mut half.image_tokens, &mut widened);
    let zr_float = tch::no_grad(|| head.model.forward_t(&half, false).0);
    assert!(zr_half.equal(&zr_float));

    // A batch with the wrong image width is refused with a message naming the tensor.
    let mut wrong = random_batch(&cfg, 2);
    wrong.image_tokens[0] = Tensor::zeros([2, 3, 5, 7], (Kind::Float, Device::Cpu));
    let err = wrong.validate(&cfg).unwrap_err().to_string();
    assert!(err.contains("image_tokens[0]"), "{err}");
}

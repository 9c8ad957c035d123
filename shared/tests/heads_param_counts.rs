//! Pins the Causal-FiLM parameter counts of both shipped full-size profiles to DESIGN.md's
//! numbers, per module, and checks the seed's initialisations that the counts cannot see.
use std::path::PathBuf;
use tch::{nn, Device, Kind, Tensor};
use weld_cache::heads::causal_film::{
    format_param_counts, result_branch_inputs, trainable_count, BranchInput, CausalFilm,
    CausalFilmConfig, ClipHead, PooledStat,
};

fn config(name: &str) -> CausalFilmConfig {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../configs")
        .join(name);
    CausalFilmConfig::from_file(&path).expect("shipped config parses")
}

fn counts(cfg: &CausalFilmConfig) -> (Vec<(String, i64)>, i64, nn::VarStore) {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = CausalFilm::new(&(vs.root() / "model"), cfg);
    let _clip = ClipHead::new(&(vs.root() / "clip_head"), cfg);
    let c = model.param_counts(&vs);
    let clip = trainable_count(&vs, "clip_head.");
    (c, clip, vs)
}

fn expect(c: &[(String, i64)], want: &[(&str, i64)]) {
    let got: Vec<(&str, i64)> = c.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    assert_eq!(got, want);
}

#[test]
fn causal_film_profile_counts() {
    let cfg = config("causal_film.toml");
    let (c, clip, vs) = counts(&cfg);
    print!("{}", format_param_counts(&c, clip));
    expect(
        &c,
        &[
            ("sensor", 366_720),
            ("video_proj", 788_480),
            ("audio_proj", 657_408),
            ("process", 6_309_888),
            ("result", 9_615_553),
            ("decoder", 526_336),
        ],
    );
    assert_eq!(c.iter().map(|x| x.1).sum::<i64>(), 18_264_385);
    assert_eq!(clip, 263_424);
    // Everything trainable in the store is accounted for by the modules + the CLIP head.
    assert_eq!(trainable_count(&vs, ""), 18_264_385 + 263_424);
    assert_eq!(
        result_branch_inputs(&cfg),
        vec![
            BranchInput::Pooled {
                layer: 20,
                stat: PooledStat::Mean
            },
            BranchInput::Tokens { layer: 20 },
            BranchInput::Pooled {
                layer: 31,
                stat: PooledStat::Mean
            },
        ]
    );
}

#[test]
fn v5_text_profile_counts() {
    let cfg = config("v5_text.toml");
    let (c, clip, _vs) = counts(&cfg);
    print!("{}", format_param_counts(&c, clip));
    expect(
        &c,
        &[
            ("sensor", 366_720),
            ("video_proj", 788_480),
            ("audio_proj", 657_408),
            ("process", 6_309_888),
            ("result", 4_860_034),
            ("decoder", 526_336),
        ],
    );
    assert_eq!(c.iter().map(|x| x.1).sum::<i64>(), 13_508_866);
    assert_eq!(clip, 263_424);
    assert_eq!(
        result_branch_inputs(&cfg),
        vec![
            BranchInput::Tokens { layer: 9 },
            BranchInput::Tokens { layer: 20 }
        ]
    );
}

#[test]
fn seed_initialisations() {
    let cfg = config("causal_film.toml");
    let (_, _, vs) = counts(&cfg);
    let v = vs.variables();
    let get = |k: &str| {
        v.get(k)
            .unwrap_or_else(|| panic!("missing {k}"))
            .shallow_clone()
    };
    let max_abs = |t: &Tensor| t.abs().max().double_value(&[]);
    // FiLM head zero-initialised: gamma = 1, beta = 0 at start.
    assert_eq!(max_abs(&get("model.sensor.head.weight")), 0.0);
    assert_eq!(max_abs(&get("model.sensor.head.bias")), 0.0);
    // Xavier-uniform sensor embedding with zero bias.
    let w = get("model.sensor.embedding.weight");
    let bound = (6.0f64 / (6.0 + 128.0)).sqrt();
    assert!(max_abs(&w) <= bound && max_abs(&w) > 0.5 * bound);
    assert_eq!(max_abs(&get("model.sensor.embedding.bias")), 0.0);
    // Mamba: A_log = log(1..16) per channel, D = 1, dt bias = softplus^-1(dt in [1e-3, 1e-1]).
    let a_log = get("model.sensor.layers.0.mamba.A_log");
    assert_eq!(a_log.size(), vec![256, 16]);
    let want = Tensor::arange_start(1, 17, (Kind::Float, Device::Cpu)).log();
    assert!(a_log.get(255).allclose(&want, 0.0, 0.0, false));
    assert_eq!(max_abs(&(get("model.sensor.layers.1.mamba.D") - 1.0)), 0.0);
    let dt = get("model.sensor.layers.0.mamba.dt_proj.bias").softplus();
    assert!(dt.min().double_value(&[]) >= 1e-3 * 0.999);
    assert!(dt.max().double_value(&[]) <= 1e-1 * 1.001);
    let dtw = get("model.sensor.layers.0.mamba.dt_proj.weight");
    assert!(max_abs(&dtw) <= 8f64.powf(-0.5));
    // GeM p starts at p0.
    assert_eq!(get("model.result.branches.1.p").double_value(&[0]), 3.0);
}

#[test]
fn demo_profile_builds_and_runs() {
    let cfg = config("demo.toml");
    tch::manual_seed(1);
    let vs = nn::VarStore::new(Device::Cpu);
    let text = Tensor::randn([cfg.model.clip_head.text_dim], (Kind::Float, Device::Cpu));
    let head = weld_cache::heads::causal_film::CausalFilmHead::new(&vs.root(), &cfg, &text)
        .expect("demo head");
    print!("{}", head.param_report(&vs));
    let (b, m) = (2, &cfg.model);
    let o = (Kind::Float, Device::Cpu);
    let batch = weld_cache::heads::causal_film::HeadBatch {
        video: Tensor::randn([b, 16, m.video_dim], o),
        audio: Tensor::randn([b, 12, m.audio_dim], o),
        sensor: Tensor::randn([b, 128, m.sensor_channels], o),
        image_pooled: Tensor::randn([b, 2, m.n_views, m.image_dim], o),
        image_tokens: vec![Tensor::randn([b, m.n_views, 201, m.image_dim], o)],
    };
    batch.validate(&cfg).expect("demo batch shapes");
    let (total, _) = head.loss(&batch, true);
    assert!(total.double_value(&[]).is_finite());
    total.backward();
}

#[test]
fn sensor_stats_only_in_train_mode() {
    let cfg = config("causal_film.toml");
    let vs = nn::VarStore::new(Device::Cpu);
    let mut model = CausalFilm::new(&vs.root(), &cfg);
    let six = Tensor::ones([6], (Kind::Float, Device::Cpu));
    let err = model.set_sensor_stats(&six, &six).unwrap_err().to_string();
    assert!(err.contains("sample"), "{err}");

    let mut cfg = cfg;
    cfg.model.sensor_norm = weld_cache::heads::causal_film::SensorNorm::Train;
    let vs = nn::VarStore::new(Device::Cpu);
    let mut model = CausalFilm::new(&vs.root(), &cfg);
    let mean = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let std = Tensor::from_slice(&[0.5f32, 0.0, 2.0, 1e-9, 3.0, 4.0]);
    model.set_sensor_stats(&mean, &std).unwrap();
    let v = vs.variables();
    let got = v["sensor.stat_std"].shallow_clone();
    let want = Tensor::from_slice(&[0.5f32, 1.0, 2.0, 1.0, 3.0, 4.0]);
    assert!(got.equal(&want), "{got}");
    assert!(v["sensor.stat_mean"].equal(&mean));
    assert!(
        !v["sensor.stat_std"].requires_grad(),
        "statistics are not trainable"
    );
    let wrong = Tensor::ones([5], (Kind::Float, Device::Cpu));
    assert!(model.set_sensor_stats(&wrong, &wrong).is_err());
}

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

//! The generic `StoreFeeder` feeding Causal-FiLM (through `HeadSource`) over a small synthetic store shaped like the demo extract's output
//! (widths 64, hidden states 0..4, token layers 2 and 3, text width 16) read with
//! `configs/demo.toml`: split sizes and classes, batch shapes, resident batches equal to the
//! memory-mapped ones, and the head-scoped fingerprint.
use std::path::{Path, PathBuf};
use tch::nn;
use tch::{Device, Kind};
use weld_cache::features::synth_store::{write_synth_store, SynthStoreSpec};
use weld_cache::features::StoreFeeder;
use weld_cache::heads::CausalFilmConfig;
use weld_cache::heads::{CausalFilmHead, Head, StoreContext};
use weld_cache::schema::Split;
use weld_cache::store::{ArraySpec, FeatureStore, StoreDtype};
use weld_cache::train::{BatchSource, HeadSource};

/// The feeder of `cfg`'s inputs (mapped or resident) and the fingerprint it computed.
fn feeder(store: &Path, cfg: &CausalFilmConfig, resident: bool) -> StoreFeeder {
    let inputs = CausalFilmHead::inputs(cfg);
    StoreFeeder::open(
        store,
        &inputs,
        CausalFilmHead::needs(cfg),
        Device::Cpu,
        resident,
    )
    .unwrap()
}

fn demo_config() -> CausalFilmConfig {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs/demo.toml");
    CausalFilmConfig::from_file(&path).unwrap()
}

fn demo_spec() -> SynthStoreSpec {
    SynthStoreSpec {
        n_train: 6,
        n_val: 4,
        n_test: 4,
        video_tokens: 8,
        video_dim: 64,
        audio_dim: 64,
        image_dim: 64,
        image_tokens: 201,
        layers: 4,
        token_layers: vec![2, 3],
        sensor_len: 32,
        text_dim: 16,
        ..SynthStoreSpec::default()
    }
}

#[test]
fn demo_store_batches_resident_and_fingerprint() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    write_synth_store(&store, &demo_spec()).unwrap();
    let cfg = demo_config();
    let vs = nn::VarStore::new(Device::Cpu);
    let f = feeder(&store, &cfg, false);
    let head = CausalFilmHead::build(&vs.root(), &cfg, &StoreContext { feeder: &f }).unwrap();
    let mut mapped = HeadSource::new(f, &head);
    let mut resident = HeadSource::new(feeder(&store, &cfg, true), &head);
    assert_eq!(mapped.len(Split::Train), 6);
    assert_eq!(mapped.classes(Split::Train), vec![0; 6]);
    assert_eq!(mapped.classes(Split::Val), vec![1, 2, 0, 0]);
    assert_eq!(mapped.feeder.rows(Split::Test), &[10, 11, 12, 13]);
    assert_eq!(mapped.keys(Split::Test)[0], "TEST/00010");

    let idx = [3, 0, 3];
    let a = mapped.load(Split::Train, &idx).unwrap();
    let b = resident.load(Split::Train, &idx).unwrap();
    assert_eq!(a.video.size(), [3, 8, 64]);
    assert_eq!(a.audio.size(), [3, 4 * 3, 64]);
    assert_eq!(a.sensor.size(), [3, 32, 6]);
    // demo branches: (2, mean), (2, gem), (3, mean) -> two pooled, one token tensor
    assert_eq!(a.image_pooled.size(), [3, 2, 5, 64]);
    assert_eq!(a.image_tokens.len(), 1);
    assert_eq!(a.image_tokens[0].size(), [3, 5, 201, 64]);
    for (x, y) in [
        (&a.video, &b.video),
        (&a.audio, &b.audio),
        (&a.sensor, &b.sensor),
        (&a.image_pooled, &b.image_pooled),
        (&a.image_tokens[0], &b.image_tokens[0]),
    ] {
        assert_eq!(x.kind(), Kind::Float);
        assert!(
            x.equal(y),
            "resident batch differs from the memory-mapped one"
        );
    }
    // a repeated position is the same sample; pooled mean of layer 2 = mean of its tokens
    assert!(a.video.get(0).equal(&a.video.get(2)));
    let mean_tok = a.image_tokens[0].mean_dim(2, false, Kind::Float);
    let diff = (mean_tok - a.image_pooled.select(1, 0)).abs().max();
    assert!(diff.double_value(&[]) < 2e-2, "{diff}");
    let out_of_range = mapped.load(Split::Val, &[4]);
    assert!(out_of_range.is_err());

    // the fingerprint ignores arrays the head does not read, but not the data it reads
    let fp = mapped.feeder.fingerprint().to_string();
    let s = FeatureStore::open(&store).unwrap();
    s.ensure_array(&ArraySpec::new(
        "image/tokens_L4",
        &[5, 201, 64],
        StoreDtype::F16,
    ))
    .unwrap();
    assert_eq!(feeder(&store, &cfg, false).fingerprint(), fp);
    let other = tmp.path().join("other");
    let spec = SynthStoreSpec {
        n_val: 5,
        ..demo_spec()
    };
    write_synth_store(&other, &spec).unwrap();
    assert_ne!(feeder(&other, &cfg, false).fingerprint(), fp);
}

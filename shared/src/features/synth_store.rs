//! A small synthetic feature store in the extractor's schema with a planted process -> result
//! coupling, for tests and benchmarks of the Causal-FiLM training path without backbones.
//!
//! Per sample a latent `z ~ N(0, I_rank)` drives every modality through fixed random maps:
//! video tokens `[Tv, Dv]`, audio tokens `[W, Na, Da]`, sensors `[L, C]` (z-weighted sines plus
//! noise) and DINOv3-like tokens `[V, Ntok, Di]` for every hidden state `0..=layers`, from which
//! `image/pooled` `[layers+1, V, 2, Di]` (mean, max over tokens) is computed; the token arrays of
//! `token_layers` are stored as `image/tokens_L{i}`. A defect of class `c` adds `shift * u_c`
//! (fixed random unit direction per class) to the image tokens only: the result no longer
//! follows from the process, which is what Causal-FiLM scores. TRAIN is all good.
//! `video/frame_dino` `[frames, Di]` (per-frame DINOv3-like features of the video) follows the
//! latent through its own maps and carries half the defect offset (a defect is partly visible
//! while welding); it is drawn from a second random stream, so the other arrays do not depend on
//! whether it is written. `audio/spectrogram` `[frames, mels]` (same stream) follows the latent
//! and a defect adds an offset to its second half of frames (a burst in the sound).
//! Writes the `samples` attribute, the sample coordinates and `text/embed` as `extract run` does.
use crate::schema::{
    image_tokens_name, SampleRow, Split, AUDIO_SPECTROGRAM, AUDIO_STARTS, AUDIO_TOKENS,
    IMAGE_POOLED, SAMPLES_ATTR, SENSOR_RAW, VIDEO_FRAME_DINO, VIDEO_TOKENS,
};
use crate::store::{ArraySpec, FeatureStore, StoreDtype};
use crate::{Error, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Sizes and signal of a synthetic store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthStoreSpec {
    pub n_train: usize,
    pub n_val: usize,
    pub n_test: usize,
    /// fraction of VAL / TEST that is defective (classes 1..=n_classes in turn)
    pub defect_fraction: f64,
    /// TRAIN samples labelled defective (0 for a valid store; > 0 only to test the refusal)
    pub train_defects: usize,
    pub n_classes: u8,
    pub rank: usize,
    /// video tokens Tv and width Dv
    pub video_tokens: usize,
    pub video_dim: usize,
    /// audio windows W, tokens per window Na, width Da
    pub audio_windows: usize,
    pub audio_tokens: usize,
    pub audio_dim: usize,
    /// image: views V, tokens per view Ntok, width Di, last hidden-state index (`layers + 1`
    /// hidden states are pooled)
    pub views: usize,
    pub image_tokens: usize,
    pub image_dim: usize,
    pub layers: usize,
    /// hidden states whose tokens are stored
    pub token_layers: Vec<usize>,
    /// sensor time steps and channels
    pub sensor_len: usize,
    pub sensor_channels: usize,
    pub text_dim: usize,
    /// frames of `video/frame_dino` (`[frames, image_dim]`); 0 leaves the array out
    #[serde(default = "default_frames")]
    pub frames: usize,
    /// `audio/spectrogram` frames and mel bins (`[frames, mels]`); 0 frames leaves it out
    #[serde(default = "default_spectrogram")]
    pub spectrogram: (usize, usize),
    /// store every sample as UNLABELLED without a class (new welds to score); the features are
    /// those of the labelled store of the same spec
    #[serde(default)]
    pub unlabelled: bool,
    /// seed of the per-sample draws (latents, noise); `None`: `seed`. The fixed maps and defect
    /// directions (the "physics" of the data) always come from `seed`, so another `sample_seed`
    /// is another dataset of the same process (new welds for a trained head)
    #[serde(default)]
    pub sample_seed: Option<u64>,
    /// samples whose `video/tokens` are not written but carry a fault marker (a broken
    /// recording, as `extract run` records one)
    #[serde(default)]
    pub faulted: Vec<usize>,
    pub shift: f32,
    pub noise: f32,
    pub dtype: StoreDtype,
    pub seed: u64,
}

impl Default for SynthStoreSpec {
    /// A tiny store: 48 / 24 / 24 samples, half of VAL and TEST defective.
    fn default() -> Self {
        SynthStoreSpec {
            n_train: 48,
            n_val: 24,
            n_test: 24,
            defect_fraction: 0.5,
            train_defects: 0,
            n_classes: 3,
            rank: 4,
            video_tokens: 4,
            video_dim: 8,
            audio_windows: 4,
            audio_tokens: 3,
            audio_dim: 8,
            views: 5,
            image_tokens: 6,
            image_dim: 8,
            layers: 2,
            token_layers: vec![1, 2],
            sensor_len: 128,
            sensor_channels: 6,
            text_dim: 16,
            frames: default_frames(),
            spectrogram: default_spectrogram(),
            unlabelled: false,
            sample_seed: None,
            faulted: vec![],
            shift: 3.0,
            noise: 0.3,
            dtype: StoreDtype::F16,
            seed: 7,
        }
    }
}

fn default_frames() -> usize {
    4
}

fn default_spectrogram() -> (usize, usize) {
    (16, 8)
}

struct Gen {
    rng: ChaCha8Rng,
}

impl Gen {
    fn normal(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| self.rng.sample::<f32, _>(StandardNormal))
            .collect()
    }
}

/// `z [rank] @ w [rank, d]` -> [d]
fn project(z: &[f32], w: &[f32], d: usize) -> Vec<f32> {
    let mut out = vec![0f32; d];
    for (k, zk) in z.iter().enumerate() {
        for (o, wv) in out.iter_mut().zip(&w[k * d..(k + 1) * d]) {
            *o += zk * wv;
        }
    }
    out
}

/// Writes the store at `path` (must not exist).
pub fn write_synth_store(path: &Path, s: &SynthStoreSpec) -> Result<()> {
    let n = s.n_train + s.n_val + s.n_test;
    let mut g = Gen {
        rng: ChaCha8Rng::seed_from_u64(s.seed),
    };
    // Fixed maps.
    let scale = 1.0 / (s.rank as f32).sqrt();
    let mut mat =
        |d: usize| -> Vec<f32> { g.normal(s.rank * d).iter().map(|x| x * scale).collect() };
    let wv: Vec<Vec<f32>> = (0..s.video_tokens).map(|_| mat(s.video_dim)).collect();
    let wa: Vec<Vec<f32>> = (0..s.audio_windows * s.audio_tokens)
        .map(|_| mat(s.audio_dim))
        .collect();
    let wi: Vec<Vec<f32>> = (0..=s.layers).map(|_| mat(s.image_dim)).collect();
    let ws = mat(s.sensor_channels);
    let dirs: Vec<Vec<f32>> = (0..s.n_classes)
        .map(|_| {
            let u = g.normal(s.image_dim);
            let norm = u.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
            u.iter().map(|x| x / norm).collect()
        })
        .collect();

    // Sample table.
    let mut samples = vec![];
    let mut classes = vec![];
    for (split, count) in [
        (Split::Train, s.n_train),
        (Split::Val, s.n_val),
        (Split::Test, s.n_test),
    ] {
        let n_bad = if split == Split::Train {
            s.train_defects.min(count)
        } else {
            (count as f64 * s.defect_fraction).round() as usize
        };
        for j in 0..count {
            let class: u8 = if j < n_bad {
                1 + (j % s.n_classes as usize) as u8
            } else {
                0
            };
            let i = samples.len();
            samples.push(if s.unlabelled {
                SampleRow {
                    key: format!("new/{i:05}"),
                    id: format!("{i:05}"),
                    class_code: None,
                    class_name: None,
                    split: Split::Unlabelled,
                    session: Some(format!("s{}", i / 8)),
                }
            } else {
                SampleRow {
                    key: format!("{split}/{i:05}"),
                    id: format!("{i:05}"),
                    class_code: Some(class),
                    class_name: Some(if class == 0 {
                        "good".to_string()
                    } else {
                        format!("defect_{class}")
                    }),
                    split,
                    // blocks of 8 consecutive samples: sessions of one split, some all good
                    session: Some(format!("s{}", i / 8)),
                }
            });
            classes.push(class);
        }
    }
    let mut attrs = serde_json::Map::new();
    let table = serde_json::to_value(&samples).map_err(|e| Error::Msg(format!("samples: {e}")))?;
    attrs.insert(SAMPLES_ATTR.into(), table);
    let coords = crate::store::dims::sample_coords(
        samples.iter().map(|r| r.key.clone()).collect(),
        samples.iter().map(|r| r.class_code).collect(),
        samples
            .iter()
            .map(|r| r.split.as_str().to_string())
            .collect(),
    );
    let store = FeatureStore::create_with(path, n, attrs, &coords)?;
    let d = s.dtype;
    let specs = [
        ArraySpec::new(VIDEO_TOKENS, &[s.video_tokens, s.video_dim], d),
        ArraySpec::new(
            AUDIO_TOKENS,
            &[s.audio_windows, s.audio_tokens, s.audio_dim],
            d,
        ),
        ArraySpec::new(AUDIO_STARTS, &[s.audio_windows], StoreDtype::F32),
        ArraySpec::new(IMAGE_POOLED, &[s.layers + 1, s.views, 2, s.image_dim], d),
        ArraySpec::new(
            SENSOR_RAW,
            &[s.sensor_len, s.sensor_channels],
            StoreDtype::F32,
        ),
    ];
    for spec in &specs {
        store.ensure_array(spec)?;
    }
    if s.frames > 0 {
        store.ensure_array(&ArraySpec::new(
            VIDEO_FRAME_DINO,
            &[s.frames, s.image_dim],
            d,
        ))?;
    }
    let mut g2 = Gen {
        rng: ChaCha8Rng::seed_from_u64(s.seed ^ 0x9e37_79b9_7f4a_7c15),
    };
    let wf: Vec<Vec<f32>> = (0..s.frames)
        .map(|_| {
            g2.normal(s.rank * s.image_dim)
                .iter()
                .map(|x| x * scale)
                .collect()
        })
        .collect();
    let (spec_t, spec_f) = s.spectrogram;
    if spec_t > 0 {
        store.ensure_array(&ArraySpec::new(AUDIO_SPECTROGRAM, &[spec_t, spec_f], d))?;
    }
    let wsp: Vec<f32> = g2
        .normal(s.rank * spec_f)
        .iter()
        .map(|x| x * scale)
        .collect();
    let spec_dir: Vec<Vec<f32>> = (0..s.n_classes)
        .map(|_| {
            let u = g2.normal(spec_f);
            let norm = u.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
            u.iter().map(|x| x / norm).collect()
        })
        .collect();
    if let Some(seed) = s.sample_seed {
        g.rng = ChaCha8Rng::seed_from_u64(seed);
        g2.rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
    }
    for &l in &s.token_layers {
        store.ensure_array(&ArraySpec::new(
            image_tokens_name(l as i64),
            &[s.views, s.image_tokens, s.image_dim],
            d,
        ))?;
    }

    for (i, &class) in classes.iter().enumerate() {
        let z = g.normal(s.rank);
        let noisy = |g: &mut Gen, base: Vec<f32>| -> Vec<f32> {
            let e = g.normal(base.len());
            base.iter().zip(e).map(|(b, e)| b + s.noise * e).collect()
        };
        let video: Vec<f32> = wv
            .iter()
            .flat_map(|w| noisy(&mut g, project(&z, w, s.video_dim)))
            .collect();
        let audio: Vec<f32> = wa
            .iter()
            .flat_map(|w| noisy(&mut g, project(&z, w, s.audio_dim)))
            .collect();
        let amp = project(&z, &ws, s.sensor_channels);
        let mut sensor = Vec::with_capacity(s.sensor_len * s.sensor_channels);
        for t in 0..s.sensor_len {
            let e = g.normal(s.sensor_channels);
            for c in 0..s.sensor_channels {
                let phase = t as f32 / s.sensor_len as f32 * std::f32::consts::TAU * (c + 1) as f32;
                sensor.push(10.0 + amp[c] * phase.sin() + s.noise * e[c]);
            }
        }
        // Image tokens of every hidden state, the defect offset applied, then mean / max pools.
        let mut pooled = vec![0f32; (s.layers + 1) * s.views * 2 * s.image_dim];
        for (l, w) in wi.iter().enumerate() {
            let base = project(&z, w, s.image_dim);
            let mut toks = Vec::with_capacity(s.views * s.image_tokens * s.image_dim);
            for v in 0..s.views {
                let mut mean = vec![0f32; s.image_dim];
                let mut max = vec![f32::NEG_INFINITY; s.image_dim];
                for _ in 0..s.image_tokens {
                    let mut t = noisy(&mut g, base.clone());
                    if class > 0 {
                        for (x, u) in t.iter_mut().zip(&dirs[class as usize - 1]) {
                            *x += s.shift * u;
                        }
                    }
                    for k in 0..s.image_dim {
                        mean[k] += t[k] / s.image_tokens as f32;
                        max[k] = max[k].max(t[k]);
                    }
                    toks.extend(t);
                }
                let o = ((l * s.views + v) * 2) * s.image_dim;
                pooled[o..o + s.image_dim].copy_from_slice(&mean);
                pooled[o + s.image_dim..o + 2 * s.image_dim].copy_from_slice(&max);
            }
            if s.token_layers.contains(&l) {
                let name = image_tokens_name(l as i64);
                store.write_sample(&name, i, &toks)?;
                store.mark_done(&name, i)?;
            }
        }
        if s.frames > 0 {
            let mut frames = Vec::with_capacity(s.frames * s.image_dim);
            for w in &wf {
                let e = g2.normal(s.image_dim);
                for (k, b) in project(&z, w, s.image_dim).iter().enumerate() {
                    let offset = if class > 0 {
                        0.5 * s.shift * dirs[class as usize - 1][k]
                    } else {
                        0.0
                    };
                    frames.push(b + s.noise * e[k] + offset);
                }
            }
            store.write_sample(VIDEO_FRAME_DINO, i, &frames)?;
            store.mark_done(VIDEO_FRAME_DINO, i)?;
        }
        if spec_t > 0 {
            // a stationary log-mel driven by the latent; a defect raises its last half of frames
            let base = project(&z, &wsp, spec_f);
            let mut spec = Vec::with_capacity(spec_t * spec_f);
            for t in 0..spec_t {
                let e = g2.normal(spec_f);
                for k in 0..spec_f {
                    let burst = if class > 0 && t >= spec_t / 2 {
                        s.shift * spec_dir[class as usize - 1][k]
                    } else {
                        0.0
                    };
                    spec.push(base[k] + s.noise * e[k] + burst);
                }
            }
            store.write_sample(AUDIO_SPECTROGRAM, i, &spec)?;
            store.mark_done(AUDIO_SPECTROGRAM, i)?;
        }
        let starts: Vec<f32> = (0..s.audio_windows).map(|w| w as f32 * 1.5).collect();
        if s.faulted.contains(&i) {
            let fault = serde_json::json!({
                "stage": "video",
                "error": format!("synthetic broken recording: sample {i}'s video cannot be decoded"),
            });
            store.mark_faulted(VIDEO_TOKENS, i, &fault)?;
        } else {
            store.write_sample(VIDEO_TOKENS, i, &video)?;
            store.mark_done(VIDEO_TOKENS, i)?;
        }
        for (name, data) in [
            (AUDIO_TOKENS, &audio),
            (AUDIO_STARTS, &starts),
            (IMAGE_POOLED, &pooled),
            (SENSOR_RAW, &sensor),
        ] {
            store.write_sample(name, i, data)?;
            store.mark_done(name, i)?;
        }
    }
    let emb = g.normal(s.text_dim);
    crate::store::write_text_embed(&store, "a normal weld", &emb)?;
    Ok(())
}

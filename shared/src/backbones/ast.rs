//! Audio Spectrogram Transformer (`ASTModel`), after
//! `transformers/models/audio_spectrogram_transformer/modeling_audio_spectrogram_transformer.py`
//! @4.57.1: Conv2d patches over (frequency, time) with the config's strides, CLS + distillation
//! tokens, learned absolute positions, pre-norm ViT blocks, final LayerNorm. A folder saved from
//! `ASTForAudioClassification` carries the prefix `audio_spectrogram_transformer.` and a
//! `classifier.*` head, which is skipped by rule.
//!
//! Returns the `hidden_states` tuple of transformers 4.57.1: `num_hidden_layers + 1` tensors
//! `[B, 2 + F*T', D]` with `F = (num_mel_bins - p) / frequency_stride + 1` and
//! `T' = (max_length - p) / time_stride + 1`; index 0 is the embedding output (tokens + positions),
//! index i the output of block i-1, the last one is LayerNorm'ed (= `last_hidden_state`).
use super::common::{self, Act, LayerNorm, Linear};
use super::loader::{read_config, KeyRules};
use super::tiny;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};

fn d_hidden() -> i64 {
    768
}
fn d_layers() -> i64 {
    12
}
fn d_heads() -> i64 {
    12
}
fn d_inter() -> i64 {
    3072
}
fn d_act() -> String {
    "gelu".into()
}
fn d_eps() -> f64 {
    1e-12
}
fn d_patch() -> i64 {
    16
}
fn yes() -> bool {
    true
}
fn d_stride() -> i64 {
    10
}
fn d_max_length() -> i64 {
    1024
}
fn d_mels() -> i64 {
    128
}

/// `ASTConfig` (defaults = the HF class defaults; the 14-14 AudioSet checkpoint sets strides 14).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    #[serde(default = "d_hidden")]
    pub hidden_size: i64,
    #[serde(default = "d_layers")]
    pub num_hidden_layers: i64,
    #[serde(default = "d_heads")]
    pub num_attention_heads: i64,
    #[serde(default = "d_inter")]
    pub intermediate_size: i64,
    #[serde(default = "d_act")]
    pub hidden_act: String,
    #[serde(default = "d_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "d_patch")]
    pub patch_size: i64,
    #[serde(default = "yes")]
    pub qkv_bias: bool,
    #[serde(default = "d_stride")]
    pub frequency_stride: i64,
    #[serde(default = "d_stride")]
    pub time_stride: i64,
    #[serde(default = "d_max_length")]
    pub max_length: i64,
    #[serde(default = "d_mels")]
    pub num_mel_bins: i64,
}

impl Config {
    /// A tiny config shaped like ast-finetuned-audioset-14-14 (strides 14, 128 mel bins, eps
    /// 1e-12) with a short max_length.
    pub fn tiny() -> Self {
        Self {
            hidden_size: 64,
            num_hidden_layers: 4,
            num_attention_heads: 4,
            intermediate_size: 128,
            hidden_act: "gelu".into(),
            layer_norm_eps: 1e-12,
            patch_size: 16,
            qkv_bias: true,
            frequency_stride: 14,
            time_stride: 14,
            max_length: 128,
            num_mel_bins: 128,
        }
    }

    /// (frequency patches F, time patches T') of the patch grid.
    pub fn grid(&self) -> (i64, i64) {
        (
            (self.num_mel_bins - self.patch_size) / self.frequency_stride + 1,
            (self.max_length - self.patch_size) / self.time_stride + 1,
        )
    }
}

#[derive(Debug)]
struct Block {
    norm_before: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    norm_after: LayerNorm,
    fc_in: Linear,
    fc_out: Linear,
}

impl Block {
    fn new(p: nn::Path, c: &Config) -> Self {
        let d = c.hidden_size;
        let a = &p / "attention";
        let s = &a / "attention";
        let i = c.intermediate_size;
        Self {
            norm_before: LayerNorm::new(&p / "layernorm_before", d, c.layer_norm_eps),
            q: Linear::new(&s / "query", d, d, c.qkv_bias),
            k: Linear::new(&s / "key", d, d, c.qkv_bias),
            v: Linear::new(&s / "value", d, d, c.qkv_bias),
            o: Linear::new(&a / "output" / "dense", d, d, true),
            norm_after: LayerNorm::new(&p / "layernorm_after", d, c.layer_norm_eps),
            fc_in: Linear::new(&p / "intermediate" / "dense", d, i, true),
            fc_out: Linear::new(&p / "output" / "dense", i, d, true),
        }
    }

    fn forward(&self, h: &Tensor, heads: i64, act: Act) -> Tensor {
        let a = self.norm_before.forward(h);
        let q = common::split_heads(&self.q.forward(&a), heads);
        let k = common::split_heads(&self.k.forward(&a), heads);
        let v = common::split_heads(&self.v.forward(&a), heads);
        let h = h + self.o.forward(&common::attention(&q, &k, &v));
        let m = self
            .fc_out
            .forward(&act.forward(&self.fc_in.forward(&self.norm_after.forward(&h))));
        h + m
    }
}

/// AST with frozen weights in their own `VarStore`.
#[derive(Debug)]
pub struct Ast {
    config: Config,
    act: Act,
    vs: nn::VarStore,
    cls: Tensor,
    dist: Tensor,
    pos: Tensor,
    patch_w: Tensor,
    patch_b: Tensor,
    blocks: Vec<Block>,
    norm: LayerNorm,
}

/// Keys of an `ASTForAudioClassification` checkpoint that we never run.
fn ignored(key: &str) -> bool {
    key.starts_with("classifier.")
}

impl Ast {
    fn build(vs: &nn::VarStore, config: Config, dir: &Path) -> Result<Self> {
        let c = &config;
        if c.hidden_size % c.num_attention_heads != 0 {
            return Err(Error::Msg(format!(
                "{}: hidden_size {} not divisible by num_attention_heads {}",
                dir.display(),
                c.hidden_size,
                c.num_attention_heads
            )));
        }
        let act = Act::parse(&c.hidden_act, dir)?;
        let root = vs.root();
        let e = &root / "embeddings";
        let d = c.hidden_size;
        let (f, t) = c.grid();
        let cls = e.zeros("cls_token", &[1, 1, d]);
        let dist = e.zeros("distillation_token", &[1, 1, d]);
        let pos = e.zeros("position_embeddings", &[1, f * t + 2, d]);
        let pe = &e / "patch_embeddings" / "projection";
        let patch_w = pe.zeros("weight", &[d, 1, c.patch_size, c.patch_size]);
        let patch_b = pe.zeros("bias", &[d]);
        let layer = &root / "encoder" / "layer";
        let blocks = (0..c.num_hidden_layers)
            .map(|i| Block::new(&layer / i, c))
            .collect();
        let norm = LayerNorm::new(&root / "layernorm", d, c.layer_norm_eps);
        Ok(Self {
            config,
            act,
            vs: nn::VarStore::new(Device::Cpu),
            cls,
            dist,
            pos,
            patch_w,
            patch_b,
            blocks,
            norm,
        })
    }

    /// Loads an `ASTModel` folder (or an `ASTForAudioClassification` one) onto `device` in
    /// `kind`, frozen.
    pub fn load(dir: &Path, device: Device, kind: Kind) -> Result<Self> {
        let config: Config = read_config(dir)?;
        let mut vs = common::store(device);
        let mut model = Self::build(&vs, config, dir)?;
        let rules = KeyRules {
            strip_prefixes: &["audio_spectrogram_transformer."],
            ignore: &ignored,
        };
        common::load_into(&mut vs, dir, &rules, kind)?;
        model.vs = vs;
        Ok(model)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Number of parameters of the loaded (run) part of the model.
    pub fn num_parameters(&self) -> i64 {
        common::num_parameters(&self.vs)
    }

    fn check_input(&self, x: &Tensor) -> Result<()> {
        let s = x.size();
        let c = &self.config;
        if s.len() != 3 || s[1] != c.max_length || s[2] != c.num_mel_bins {
            return Err(Error::Msg(format!(
                "AST input_values must be [B, {}, {}] (max_length, num_mel_bins), got {s:?}",
                c.max_length, c.num_mel_bins
            )));
        }
        Ok(())
    }

    /// input_values [B, max_length, num_mel_bins] -> tokens + positions [B, 2 + F*T', D]
    fn embed(&self, x: &Tensor) -> Tensor {
        let c = &self.config;
        let x = x
            .to_device(self.patch_w.device())
            .to_kind(self.patch_w.kind())
            .unsqueeze(1)
            .transpose(2, 3); // [B, 1, mel, time]
        let p = x
            .conv2d(
                &self.patch_w,
                Some(&self.patch_b),
                [c.frequency_stride, c.time_stride],
                [0, 0],
                [1, 1],
                1,
            )
            .flatten(2, 3)
            .transpose(1, 2);
        let b = p.size()[0];
        let d = c.hidden_size;
        Tensor::cat(
            &[
                self.cls.expand([b, 1, d], false),
                self.dist.expand([b, 1, d], false),
                p,
            ],
            1,
        ) + &self.pos
    }

    /// input_values [B, max_length, num_mel_bins] -> hidden_states: num_hidden_layers+1 tensors
    /// [B, 2+F*T', D], exactly transformers 4.57.1 (index 0 = embeddings, last = LayerNorm'ed).
    pub fn forward_hidden(&self, input_values: &Tensor) -> Result<Vec<Tensor>> {
        self.check_input(input_values)?;
        Ok(tch::no_grad(|| {
            let h = self.embed(input_values);
            let n = self.blocks.len();
            common::run_blocks(
                h,
                n,
                |i, h| self.blocks[i].forward(h, self.config.num_attention_heads, self.act),
                &self.norm,
                true,
            )
        }))
    }

    /// input_values [B, max_length, num_mel_bins] -> last_hidden_state [B, 2+F*T', D].
    pub fn forward_last(&self, input_values: &Tensor) -> Result<Tensor> {
        self.check_input(input_values)?;
        Ok(tch::no_grad(|| {
            let h = self.embed(input_values);
            let n = self.blocks.len();
            let mut out = common::run_blocks(
                h,
                n,
                |i, h| self.blocks[i].forward(h, self.config.num_attention_heads, self.act),
                &self.norm,
                false,
            );
            out.pop().expect("run_blocks returns the last state")
        }))
    }
}

/// Number of labels of the tiny classification head.
const TINY_LABELS: i64 = 3;

/// Writes a tiny random `ASTForAudioClassification` folder: encoder keys under the prefix
/// `audio_spectrogram_transformer.` plus `classifier.*`, so loading exercises both rules.
pub fn write_tiny(dir: &Path, seed: u64) -> Result<()> {
    write_tiny_config(dir, seed, Config::tiny())
}

/// Classes of the AudioSet classifier of the real checkpoint.
pub const AUDIOSET_LABELS: i64 = 527;

impl Config {
    /// `MIT/ast-finetuned-audioset-14-14-0.443`: ViT-B, 12 layers of 768, strides 14 x 14 over
    /// 1024 x 128 fbank frames (9 x 73 patches + 2 tokens).
    pub fn audioset_14_14() -> Self {
        Self {
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            max_length: 1024,
            ..Self::tiny()
        }
    }

    /// [`Config::tiny`] at the real input geometry: 1024-frame windows (10.24 s).
    pub fn tiny_real() -> Self {
        Self {
            max_length: 1024,
            ..Self::tiny()
        }
    }
}

/// [`write_tiny`] with a given config.
pub fn write_tiny_config(dir: &Path, seed: u64, config: Config) -> Result<()> {
    write_random(dir, seed, config, TINY_LABELS, Kind::Float)
}

/// A random `ASTForAudioClassification` folder of `config` with `labels` classes, weights in
/// `kind`.
pub fn write_random(dir: &Path, seed: u64, config: Config, labels: i64, kind: Kind) -> Result<()> {
    let vs = nn::VarStore::new(Device::Cpu);
    Ast::build(&vs, config.clone(), dir)?;
    let mut tensors: Vec<(String, Tensor)> = tiny::random_tensors(&vs, seed)
        .into_iter()
        .map(|(k, t)| (format!("audio_spectrogram_transformer.{k}"), t))
        .collect();
    let d = config.hidden_size;
    let head = [
        ("classifier.layernorm.weight".to_string(), vec![d]),
        ("classifier.layernorm.bias".into(), vec![d]),
        ("classifier.dense.weight".into(), vec![labels, d]),
        ("classifier.dense.bias".into(), vec![labels]),
    ];
    tensors.extend(tiny::random_extra(&head, seed + 1));
    let mut json = tiny::config_json(
        &config,
        "audio-spectrogram-transformer",
        "ASTForAudioClassification",
    )?;
    let names: serde_json::Map<String, serde_json::Value> = (0..labels)
        .map(|i| (i.to_string(), format!("LABEL_{i}").into()))
        .collect();
    let ids: serde_json::Map<String, serde_json::Value> = (0..labels)
        .map(|i| (format!("LABEL_{i}"), i.into()))
        .collect();
    json["id2label"] = names.into();
    json["label2id"] = ids.into();
    tiny::save_folder(dir, json, &tensors, kind)
}

//! Frozen backbones, one file per family, each matching `transformers==4.57.1`, plus the model
//! folder tooling (strict loader, tiny random folders) and `Backbone`, which picks the family from
//! `config.json`'s `model_type`.
//!
//! Measured parity with transformers 4.57.1 on CPU (tests `backbones_parity`, 12 tiny random
//! configurations, batch 2-3, every hidden state, error = max|ours - ref| / max|ref|): f32 0
//! (bit-exact); bf16 0 against transformers loading the folder in bf16 and <= 1.3e-2 against the
//! f32 reference; f16 <= 1.4e-3 against the f32 reference.
pub mod ast;
pub mod clip;
mod common;
mod cost;
pub mod dinov3;
pub mod loader;
mod tiny;
pub mod vjepa2;

pub use ast::Ast;
pub use dinov3::Dinov3;
pub use tiny::write_safetensors;
pub use vjepa2::VJepa2;

use crate::{Error, Result};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// The model families `Backbone::load` knows, by `config.json` `model_type`.
pub const MODEL_TYPES: [&str; 5] = [
    "dinov3_vit",
    "vjepa2",
    "audio-spectrogram-transformer",
    "clip",
    "clip_text_model",
];

/// One loaded backbone of any family.
pub enum Backbone {
    Dinov3(Dinov3),
    VJepa2(VJepa2),
    Ast(Ast),
    /// The CLIP text tower with its projection (`clip` or `clip_text_model` folders).
    Clip(Box<clip::ClipText>),
}

impl std::fmt::Debug for Backbone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Backbone({}: {})", self.model_type(), self.summary())
    }
}

/// `config.json`'s `model_type` of a model folder.
pub fn model_type(dir: &Path) -> Result<String> {
    let v: serde_json::Value = loader::read_config(dir)?;
    v.get("model_type")
        .and_then(|m| m.as_str())
        .map(str::to_string)
        .ok_or_else(|| {
            Error::Msg(format!(
                "{}: no string `model_type`",
                dir.join("config.json").display()
            ))
        })
}

impl Backbone {
    /// Loads the family named by `dir/config.json`'s `model_type`, frozen, in `kind`.
    pub fn load(dir: &Path, device: Device, kind: Kind) -> Result<Self> {
        match model_type(dir)?.as_str() {
            "dinov3_vit" => Ok(Backbone::Dinov3(Dinov3::load(dir, device, kind)?)),
            "vjepa2" => Ok(Backbone::VJepa2(VJepa2::load(dir, device, kind)?)),
            "audio-spectrogram-transformer" => Ok(Backbone::Ast(Ast::load(dir, device, kind)?)),
            "clip" | "clip_text_model" => Ok(Backbone::Clip(Box::new(clip::ClipText::load(
                dir, device, kind,
            )?))),
            other => Err(Error::Msg(format!(
                "{}: model_type `{other}` is not one of {MODEL_TYPES:?}",
                dir.join("config.json").display()
            ))),
        }
    }

    /// The input tensor name transformers uses for this family.
    pub fn input_name(&self) -> &'static str {
        match self {
            Backbone::Dinov3(_) => "pixel_values",
            Backbone::VJepa2(_) => "pixel_values_videos",
            Backbone::Ast(_) => "input_values",
            Backbone::Clip(_) => "input_ids",
        }
    }

    /// `config.json` `model_type`.
    pub fn model_type(&self) -> &'static str {
        match self {
            Backbone::Dinov3(_) => "dinov3_vit",
            Backbone::VJepa2(_) => "vjepa2",
            Backbone::Ast(_) => "audio-spectrogram-transformer",
            Backbone::Clip(_) => "clip",
        }
    }

    /// All hidden states (`num_hidden_layers + 1` tensors [B, L, D], transformers 4.57.1
    /// meaning; the last equals `last_hidden_state`).
    pub fn forward_hidden(&self, input: &Tensor) -> Result<Vec<Tensor>> {
        match self {
            Backbone::Dinov3(m) => m.forward_hidden(input),
            Backbone::VJepa2(m) => m.forward_hidden(input),
            Backbone::Ast(m) => m.forward_hidden(input),
            Backbone::Clip(m) => {
                m.check_input_ids(input)?;
                Ok(m.forward(input).hidden_states)
            }
        }
    }

    /// `last_hidden_state` [B, L, D] only.
    pub fn forward_last(&self, input: &Tensor) -> Result<Tensor> {
        match self {
            Backbone::Dinov3(m) => m.forward_last(input),
            Backbone::VJepa2(m) => m.forward_last(input),
            Backbone::Ast(m) => m.forward_last(input),
            Backbone::Clip(m) => {
                m.check_input_ids(input)?;
                Ok(m.forward(input).last_hidden_state)
            }
        }
    }

    /// Number of parameters of the part we run (heads and predictors are not counted).
    pub fn num_parameters(&self) -> i64 {
        match self {
            Backbone::Dinov3(m) => m.num_parameters(),
            Backbone::VJepa2(m) => m.num_parameters(),
            Backbone::Ast(m) => m.num_parameters(),
            Backbone::Clip(m) => m.num_parameters(),
        }
    }

    /// Every output `extract forward` writes, named as transformers names them:
    /// `hidden_states.{i}`, `last_hidden_state` and, for CLIP, `text_embeds`.
    pub fn forward_outputs(&self, input: &Tensor) -> Result<Vec<(String, Tensor)>> {
        let (hidden, last, embeds) = match self {
            Backbone::Clip(m) => {
                m.check_input_ids(input)?;
                let o = m.forward(input);
                (o.hidden_states, o.last_hidden_state, Some(o.text_embeds))
            }
            _ => {
                let h = self.forward_hidden(input)?;
                let last = h
                    .last()
                    .ok_or_else(|| Error::Msg("model returned no hidden state".into()))?
                    .shallow_clone();
                (h, last, None)
            }
        };
        let mut out: Vec<(String, Tensor)> = hidden
            .into_iter()
            .enumerate()
            .map(|(i, h)| (format!("hidden_states.{i}"), h))
            .collect();
        out.push(("last_hidden_state".into(), last));
        if let Some(e) = embeds {
            out.push(("text_embeds".into(), e));
        }
        Ok(out)
    }

    /// A one-line summary of the architecture from `config.json`.
    pub fn summary(&self) -> String {
        match self {
            Backbone::Dinov3(m) => {
                let c = m.config();
                format!(
                    "hidden {} x {} layers, {} heads, mlp {} ({}{}), patch {}, {} registers, \
                     rope_theta {}, eps {}, key_bias {}",
                    c.hidden_size,
                    c.num_hidden_layers,
                    c.num_attention_heads,
                    c.intermediate_size,
                    c.hidden_act,
                    if c.use_gated_mlp { ", gated" } else { "" },
                    c.patch_size,
                    c.num_register_tokens,
                    c.rope_theta,
                    c.layer_norm_eps,
                    c.key_bias
                )
            }
            Backbone::VJepa2(m) => {
                let c = m.config();
                format!(
                    "hidden {} x {} layers, {} heads, mlp_ratio {} ({}), patch {}, tubelet {}, \
                     crop {}, frames_per_clip {}, eps {}",
                    c.hidden_size,
                    c.num_hidden_layers,
                    c.num_attention_heads,
                    c.mlp_ratio,
                    c.hidden_act,
                    c.patch_size,
                    c.tubelet_size,
                    c.crop_size,
                    c.frames_per_clip,
                    c.layer_norm_eps
                )
            }
            Backbone::Ast(m) => {
                let c = m.config();
                let (f, t) = c.grid();
                format!(
                    "hidden {} x {} layers, {} heads, mlp {} ({}), patch {}, strides (freq {}, \
                     time {}), input [{} x {}] -> {} x {} patches + 2 tokens, eps {}",
                    c.hidden_size,
                    c.num_hidden_layers,
                    c.num_attention_heads,
                    c.intermediate_size,
                    c.hidden_act,
                    c.patch_size,
                    c.frequency_stride,
                    c.time_stride,
                    c.max_length,
                    c.num_mel_bins,
                    f,
                    t,
                    c.layer_norm_eps
                )
            }
            Backbone::Clip(m) => {
                let c = m.config();
                format!(
                    "text tower: hidden {} x {} layers, {} heads, mlp {} ({}), vocab {}, \
                     {} positions, projection {}, eos_token_id {}, eps {}",
                    c.hidden_size,
                    c.num_hidden_layers,
                    c.num_attention_heads,
                    c.intermediate_size,
                    c.hidden_act,
                    c.vocab_size,
                    c.max_position_embeddings,
                    c.projection_dim,
                    c.eos_token_id,
                    c.layer_norm_eps
                )
            }
        }
    }
}

/// Parses a dtype name: `f32`, `bf16` or `f16`.
pub fn parse_kind(s: &str) -> Result<Kind> {
    match s {
        "f32" | "float32" => Ok(Kind::Float),
        "bf16" | "bfloat16" => Ok(Kind::BFloat16),
        "f16" | "float16" => Ok(Kind::Half),
        other => Err(Error::Msg(format!(
            "dtype `{other}`: expected f32, bf16 or f16"
        ))),
    }
}

/// Writes tiny random folders of every backbone: `out/dinov3`, `out/vjepa2`, `out/ast`,
/// `out/clip` (with a valid `tokenizer.json`).
pub fn write_tiny_all(out: &Path, seed: u64) -> Result<Vec<std::path::PathBuf>> {
    write_tiny_all_geometry(out, seed, false)
}

/// Random-weight folders of the real architectures, weights stored in `kind` (bf16: ~2.5 GB in
/// all): `out/dinov3` (ViT-H+/16), `out/vjepa2` (ViT-L fpc64-256), `out/ast` (audioset 14-14).
/// For timing on a GPU (`scripts/gpu_check.sh`); the features they give mean nothing.
pub fn write_real_all(out: &Path, seed: u64, kind: Kind) -> Result<Vec<std::path::PathBuf>> {
    let dirs = [out.join("dinov3"), out.join("vjepa2"), out.join("ast")];
    dinov3::write_random(&dirs[0], seed, dinov3::Config::vith16plus(), kind)?;
    vjepa2::write_random(&dirs[1], seed + 1, vjepa2::Config::vitl_fpc64_256(), kind)?;
    ast::write_random(
        &dirs[2],
        seed + 2,
        ast::Config::audioset_14_14(),
        ast::AUDIOSET_LABELS,
        kind,
    )?;
    Ok(dirs.to_vec())
}

/// [`write_tiny_all`]; with `real_geometry` V-JEPA 2 takes 256 px crops and AST 1024-frame
/// windows (the real models' input geometry; widths stay tiny), DINOv3 is 224 px either way.
pub fn write_tiny_all_geometry(
    out: &Path,
    seed: u64,
    real_geometry: bool,
) -> Result<Vec<std::path::PathBuf>> {
    let dirs = [
        out.join("dinov3"),
        out.join("vjepa2"),
        out.join("ast"),
        out.join("clip"),
    ];
    dinov3::write_tiny(&dirs[0], seed)?;
    if real_geometry {
        vjepa2::write_tiny_config(&dirs[1], seed + 1, vjepa2::Config::tiny_real())?;
        ast::write_tiny_config(&dirs[2], seed + 2, ast::Config::tiny_real())?;
    } else {
        vjepa2::write_tiny(&dirs[1], seed + 1)?;
        ast::write_tiny(&dirs[2], seed + 2)?;
    }
    clip::write_tiny(&dirs[3], seed + 3)?;
    Ok(dirs.to_vec())
}

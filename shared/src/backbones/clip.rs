//! CLIP text tower with projection (`CLIPTextModelWithProjection` / the text half of `CLIPModel`,
//! transformers 4.57.1) and its byte-level BPE tokenizer (`tokenizer.json`, crate `tokenizers`).
//!
//! Forward: `h = token_embedding[ids] + position_embedding[0..L]`; each pre-norm block adds
//! causal multi-head attention (scale `head_dim^-0.5`) and a `fc2(act(fc1(.)))` MLP
//! (`quick_gelu` = `x sigmoid(1.702 x)`); `last_hidden_state = final_layer_norm(h)`. The pooled
//! token is the first `eos_token_id` of each row, or, for legacy configs with `eos_token_id == 2`,
//! `argmax(input_ids)` (the first end-of-text, which has the largest id). `text_embeds` is the
//! pooled token through `text_projection` (no bias), NOT L2-normalised.
//!
//! `hidden_states` has `num_hidden_layers + 1` entries: the embedding output, then the raw output
//! of every block (the last one without the final norm), exactly as transformers returns them.
mod tiny;

pub use tiny::{tiny_tokenizer_json, write_tiny};

use super::loader::{load_strict, read_checkpoint, read_config, KeyRules};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

/// `CLIPTextConfig` fields we use; missing fields take the class defaults
/// (`openai/clip-vit-base-patch32`'s text tower).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClipTextConfig {
    pub vocab_size: i64,
    pub hidden_size: i64,
    pub intermediate_size: i64,
    pub num_hidden_layers: i64,
    pub num_attention_heads: i64,
    pub max_position_embeddings: i64,
    pub hidden_act: String,
    pub layer_norm_eps: f64,
    pub projection_dim: i64,
    pub bos_token_id: i64,
    pub eos_token_id: i64,
    pub pad_token_id: i64,
}

impl Default for ClipTextConfig {
    fn default() -> Self {
        Self {
            vocab_size: 49408,
            hidden_size: 512,
            intermediate_size: 2048,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 77,
            hidden_act: "quick_gelu".into(),
            layer_norm_eps: 1e-5,
            projection_dim: 512,
            bos_token_id: 49406,
            eos_token_id: 49407,
            pad_token_id: 1,
        }
    }
}

impl ClipTextConfig {
    /// The text config of a folder's `config.json`: nested `text_config` of a `CLIPModel`
    /// (`model_type` "clip", projection size from the top-level `projection_dim`) or the top level
    /// of a `CLIPTextModelWithProjection` (`model_type` "clip_text_model").
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let v: serde_json::Value = read_config(dir)?;
        let path = dir.join("config.json");
        let bad = |e: serde_json::Error| Error::Msg(format!("{}: {e}", path.display()));
        let cfg = match v.get("model_type").and_then(|m| m.as_str()) {
            Some("clip") => {
                // as `CLIPConfig.__init__`: a legacy `text_config_dict` replaces `text_config`
                // (class defaults for what it omits); neither present means all defaults
                let text = ["text_config_dict", "text_config"]
                    .iter()
                    .find_map(|k| v.get(*k).filter(|t| t.is_object()).cloned())
                    .unwrap_or(serde_json::json!({}));
                let mut cfg: ClipTextConfig = serde_json::from_value(text).map_err(bad)?;
                cfg.projection_dim = v
                    .get("projection_dim")
                    .and_then(|p| p.as_i64())
                    .unwrap_or(512);
                cfg
            }
            Some("clip_text_model") => serde_json::from_value(v).map_err(bad)?,
            other => {
                return Err(Error::Msg(format!(
                    "{}: model_type {other:?} is not a CLIP model (expected \"clip\" or \
                     \"clip_text_model\")",
                    path.display()
                )))
            }
        };
        cfg.validate()
            .map_err(|e| Error::Msg(format!("{}: {e}", path.display())))?;
        Ok(cfg)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.hidden_size % self.num_attention_heads != 0 {
            return Err(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if !matches!(self.hidden_act.as_str(), "quick_gelu" | "gelu") {
            return Err(format!(
                "hidden_act `{}` is not supported (quick_gelu, gelu)",
                self.hidden_act
            ));
        }
        Ok(())
    }
}

/// A CLIP byte-level BPE tokenizer read from a `tokenizer.json`.
pub struct ClipTokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
}

impl ClipTokenizer {
    /// Reads `tokenizer.json` (as written by `CLIPTokenizerFast.save_pretrained`).
    pub fn from_file(path: &Path) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))?;
        Ok(Self {
            inner,
            path: path.to_path_buf(),
        })
    }

    /// Token ids with `<|startoftext|>` and `<|endoftext|>` added, no padding or truncation
    /// (as `CLIPTokenizerFast(text)["input_ids"]`).
    pub fn encode(&self, text: &str) -> Result<Vec<i64>> {
        let enc = self
            .inner
            .encode(text, true)
            .map_err(|e| Error::Tokenizer(format!("{}: {e}", self.path.display())))?;
        Ok(enc.get_ids().iter().map(|&i| i as i64).collect())
    }
}

/// Outputs of [`ClipText::forward`], in the model's dtype and device.
#[derive(Debug)]
pub struct ClipTextOutput {
    /// `num_hidden_layers + 1` tensors `[B, L, D]`: embeddings, then every block's raw output.
    pub hidden_states: Vec<Tensor>,
    /// `[B, L, D]`: the last block's output through `final_layer_norm`.
    pub last_hidden_state: Tensor,
    /// `[B, projection_dim]`: pooled end-of-text token through `text_projection` (not normalised).
    pub text_embeds: Tensor,
}

struct Layer {
    ln1: nn::LayerNorm,
    q: nn::Linear,
    k: nn::Linear,
    v: nn::Linear,
    o: nn::Linear,
    ln2: nn::LayerNorm,
    fc1: nn::Linear,
    fc2: nn::Linear,
}

/// The CLIP text tower with projection. Build with [`ClipText::load`].
pub struct ClipText {
    cfg: ClipTextConfig,
    device: Device,
    kind: Kind,
    token_embedding: nn::Embedding,
    position_embedding: Tensor,
    layers: Vec<Layer>,
    final_ln: nn::LayerNorm,
    text_projection: nn::Linear,
    tokenizer: Option<ClipTokenizer>,
    // keeps the parameters alive
    _vs: nn::VarStore,
}

impl std::fmt::Debug for ClipText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipText")
            .field("cfg", &self.cfg)
            .field("device", &self.device)
            .field("kind", &self.kind)
            .field("tokenizer", &self.tokenizer.as_ref().map(|t| &t.path))
            .finish()
    }
}

/// Checkpoint keys that belong to parts of a `CLIPModel` we never run, or buffers.
fn ignored_key(k: &str) -> bool {
    k.starts_with("vision_model.")
        || k == "visual_projection.weight"
        || k == "logit_scale"
        || k.ends_with(".position_ids")
}

fn layer_norm(p: nn::Path, cfg: &ClipTextConfig) -> nn::LayerNorm {
    let c = nn::LayerNormConfig {
        eps: cfg.layer_norm_eps,
        ..Default::default()
    };
    nn::layer_norm(p, vec![cfg.hidden_size], c)
}

impl ClipText {
    /// Builds the modules under `root` with parameter names equal to the HF checkpoint keys.
    fn build(
        root: &nn::Path,
        cfg: &ClipTextConfig,
    ) -> (nn::Embedding, Tensor, Vec<Layer>, nn::LayerNorm, nn::Linear) {
        let d = cfg.hidden_size;
        let tm = root / "text_model";
        let emb = &tm / "embeddings";
        let token_embedding = nn::embedding(
            &emb / "token_embedding",
            cfg.vocab_size,
            d,
            Default::default(),
        );
        let position_embedding = (&emb / "position_embedding").var(
            "weight",
            &[cfg.max_position_embeddings, d],
            nn::Init::Const(0.0),
        );
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| {
                let p = &tm / "encoder" / "layers" / i;
                let attn = &p / "self_attn";
                let mlp = &p / "mlp";
                let lin = |p: nn::Path, i, o| nn::linear(p, i, o, Default::default());
                Layer {
                    ln1: layer_norm(&p / "layer_norm1", cfg),
                    q: lin(&attn / "q_proj", d, d),
                    k: lin(&attn / "k_proj", d, d),
                    v: lin(&attn / "v_proj", d, d),
                    o: lin(&attn / "out_proj", d, d),
                    ln2: layer_norm(&p / "layer_norm2", cfg),
                    fc1: lin(&mlp / "fc1", d, cfg.intermediate_size),
                    fc2: lin(&mlp / "fc2", cfg.intermediate_size, d),
                }
            })
            .collect();
        let final_ln = layer_norm(&tm / "final_layer_norm", cfg);
        let text_projection = nn::linear(
            root / "text_projection",
            d,
            cfg.projection_dim,
            nn::LinearConfig {
                bias: false,
                ..Default::default()
            },
        );
        (
            token_embedding,
            position_embedding,
            layers,
            final_ln,
            text_projection,
        )
    }

    /// Loads a `CLIPModel` or `CLIPTextModelWithProjection` folder (`config.json` + weights),
    /// strictly: `vision_model.*`, `visual_projection.weight`, `logit_scale` and `*.position_ids`
    /// are skipped by rule, any other missing, unexpected or mis-shaped key is an error. The
    /// tokenizer is read from `DIR/tokenizer.json` when present (needed only by
    /// [`ClipText::tokenize`] and [`ClipText::embed_text`]).
    pub fn load(dir: &Path, device: Device, kind: Kind) -> Result<Self> {
        let cfg = ClipTextConfig::from_dir(dir)?;
        let mut vs = nn::VarStore::new(device);
        let (token_embedding, position_embedding, layers, final_ln, text_projection) =
            Self::build(&vs.root(), &cfg);
        let tensors = read_checkpoint(dir)?;
        let rules = KeyRules {
            strip_prefixes: &[],
            ignore: &ignored_key,
        };
        load_strict(&mut vs, tensors, &rules, dir)?;
        if kind != Kind::Float {
            vs.set_kind(kind);
        }
        vs.freeze();
        let tok_path = dir.join("tokenizer.json");
        let tokenizer = if tok_path.is_file() {
            Some(ClipTokenizer::from_file(&tok_path)?)
        } else {
            None
        };
        Ok(Self {
            cfg,
            device,
            kind,
            token_embedding,
            position_embedding,
            layers,
            final_ln,
            text_projection,
            tokenizer,
            _vs: vs,
        })
    }

    /// The text config read from the folder.
    pub fn config(&self) -> &ClipTextConfig {
        &self.cfg
    }

    /// The device the parameters live on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// The parameters' dtype.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Number of parameters of the text tower and projection.
    pub fn num_parameters(&self) -> i64 {
        self._vs
            .variables()
            .values()
            .map(|t| t.numel() as i64)
            .sum()
    }

    /// Token ids of `text` (with start/end-of-text), from the folder's `tokenizer.json`.
    pub fn tokenize(&self, text: &str) -> Result<Vec<i64>> {
        match &self.tokenizer {
            Some(t) => t.encode(text),
            None => Err(Error::Tokenizer(
                "this CLIP folder has no tokenizer.json".to_string(),
            )),
        }
    }

    /// Checks `input_ids` before [`ClipText::forward`]: `[B, L]` integers with
    /// `1 <= L <= max_position_embeddings` and every id in `[0, vocab_size)`.
    pub fn check_input_ids(&self, input_ids: &Tensor) -> Result<()> {
        let size = input_ids.size();
        let bad = |m: String| Err(Error::Msg(format!("CLIP input_ids: {m}")));
        if size.len() != 2 || size[0] == 0 || size[1] == 0 {
            return bad(format!("expected a non-empty [B, L] tensor, got {size:?}"));
        }
        if !matches!(input_ids.kind(), Kind::Int64 | Kind::Int) {
            return bad(format!("expected int64 ids, got {:?}", input_ids.kind()));
        }
        if size[1] > self.cfg.max_position_embeddings {
            return bad(format!(
                "sequence length {} exceeds max_position_embeddings {}",
                size[1], self.cfg.max_position_embeddings
            ));
        }
        let (lo, hi) = (
            input_ids.min().int64_value(&[]),
            input_ids.max().int64_value(&[]),
        );
        if lo < 0 || hi >= self.cfg.vocab_size {
            return bad(format!(
                "ids span [{lo}, {hi}], outside the vocabulary [0, {})",
                self.cfg.vocab_size
            ));
        }
        Ok(())
    }

    fn attention(&self, l: &Layer, x: &Tensor) -> Tensor {
        let (b, n, d) = x.size3().unwrap();
        let h = self.cfg.num_attention_heads;
        let hd = d / h;
        let split = |t: Tensor| t.view([b, n, h, hd]).transpose(1, 2);
        let q = split(l.q.forward(x));
        let k = split(l.k.forward(x));
        let v = split(l.v.forward(x));
        let scale = (hd as f64).powf(-0.5);
        let a = Tensor::scaled_dot_product_attention::<Tensor>(
            &q, &k, &v, None, 0.0, true, scale, false,
        );
        l.o.forward(&a.transpose(1, 2).reshape([b, n, d]))
    }

    fn mlp(&self, l: &Layer, x: &Tensor) -> Tensor {
        let y = l.fc1.forward(x);
        let y = if self.cfg.hidden_act == "gelu" {
            y.gelu("none")
        } else {
            &y * (&y * 1.702).sigmoid()
        };
        l.fc2.forward(&y)
    }

    /// Runs the tower under `no_grad`. `input_ids`: `[B, L]` int64 (any device; moved to the
    /// model's). Padding after the end-of-text token does not change `text_embeds` (causal mask).
    /// Panics on ids that [`ClipText::check_input_ids`] rejects; call it first on untrusted input.
    pub fn forward(&self, input_ids: &Tensor) -> ClipTextOutput {
        tch::no_grad(|| {
            let ids = input_ids.to_device(self.device).to_kind(Kind::Int64);
            let (b, n) = ids.size2().unwrap();
            let mut h = self.token_embedding.forward(&ids)
                + self.position_embedding.narrow(0, 0, n).unsqueeze(0);
            let mut hidden_states = Vec::with_capacity(self.layers.len() + 1);
            for l in &self.layers {
                hidden_states.push(h.shallow_clone());
                h = &h + self.attention(l, &l.ln1.forward(&h));
                h = &h + self.mlp(l, &l.ln2.forward(&h));
            }
            hidden_states.push(h.shallow_clone());
            let last_hidden_state = self.final_ln.forward(&h);
            let pos = if self.cfg.eos_token_id == 2 {
                // legacy configs: the end-of-text token has the largest id
                ids.argmax(-1, false)
            } else {
                ids.eq(self.cfg.eos_token_id)
                    .to_kind(Kind::Int)
                    .argmax(-1, false)
            };
            let rows = Tensor::arange(b, (Kind::Int64, self.device));
            let pooled = last_hidden_state.index(&[Some(rows), Some(pos)]);
            let text_embeds = self.text_projection.forward(&pooled);
            ClipTextOutput {
                hidden_states,
                last_hidden_state,
                text_embeds,
            }
        })
    }

    /// `text_embeds` of one text: `[projection_dim]` f32 on the CPU (not normalised).
    pub fn embed_text(&self, text: &str) -> Result<Tensor> {
        let ids = self.tokenize(text)?;
        let ids = Tensor::from_slice(&ids).unsqueeze(0);
        self.check_input_ids(&ids)
            .map_err(|e| Error::Msg(format!("text {text:?}: {e}")))?;
        let out = self.forward(&ids);
        Ok(out
            .text_embeds
            .get(0)
            .to_kind(Kind::Float)
            .to_device(Device::Cpu))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(config: serde_json::Value) -> ClipTextConfig {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        ClipTextConfig::from_dir(dir.path()).unwrap()
    }

    #[test]
    fn config_variants() {
        // CLIPModel: nested text config, projection size from the top level
        let c = parse(
            serde_json::json!({"model_type": "clip", "projection_dim": 24,
            "text_config": {"hidden_size": 48, "num_attention_heads": 4, "eos_token_id": 2,
                            "projection_dim": 512}}),
        );
        assert_eq!(
            (c.hidden_size, c.projection_dim, c.eos_token_id),
            (48, 24, 2)
        );
        assert_eq!(c.vocab_size, 49408);
        // legacy text_config_dict wins over text_config
        let c = parse(serde_json::json!({"model_type": "clip",
            "text_config": {"hidden_size": 48, "num_attention_heads": 4},
            "text_config_dict": {"hidden_size": 64}}));
        assert_eq!((c.hidden_size, c.num_attention_heads), (64, 8));
        // CLIPTextModelWithProjection: top level
        let c = parse(
            serde_json::json!({"model_type": "clip_text_model", "projection_dim": 16,
            "hidden_size": 32, "num_attention_heads": 4}),
        );
        assert_eq!((c.hidden_size, c.projection_dim), (32, 16));
        assert_eq!(
            c,
            ClipTextConfig {
                hidden_size: 32,
                num_attention_heads: 4,
                projection_dim: 16,
                ..Default::default()
            }
        );
    }

    #[test]
    fn bad_configs_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        for bad in [
            serde_json::json!({"model_type": "dinov3_vit"}),
            serde_json::json!({"model_type": "clip_text_model", "hidden_size": 30}),
            serde_json::json!({"model_type": "clip_text_model", "hidden_act": "relu"}),
        ] {
            std::fs::write(dir.path().join("config.json"), bad.to_string()).unwrap();
            assert!(ClipTextConfig::from_dir(dir.path()).is_err(), "{bad}");
        }
    }
}

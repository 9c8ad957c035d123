//! V-JEPA 2 video encoder (`VJEPA2Model`, encoder only), after
//! `transformers/models/vjepa2/modeling_vjepa2.py` @4.57.1: Conv3d tubelets, 3-D RoPE on q and k
//! (interleaved pairs with tiled frequencies, positions from the config's grid, computed in the
//! activation dtype), pre-norm blocks without layer scale, final LayerNorm. The predictor is never
//! run; its keys (and a video-classification head's `pooler.*`/`classifier.*`) are skipped by rule.
//!
//! Returns the `hidden_states` tuple of transformers 4.57.1: `num_hidden_layers + 1` tensors
//! `[B, (T/tubelet)*(H/p)*(W/p), D]`; index 0 is the patch embedding, index i the output of block
//! i-1, the last one is LayerNorm'ed (= `last_hidden_state`). Odd T drops the last frame (the
//! strided Conv3d does), T < tubelet_size repeats the clip tubelet_size times.
use super::common::{self, Act, LayerNorm, Linear};
use super::loader::{read_config, KeyRules};
use super::tiny;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};

fn d_patch() -> i64 {
    16
}
fn d_crop() -> i64 {
    256
}
fn d_frames() -> i64 {
    64
}
fn d_tubelet() -> i64 {
    2
}
fn d_hidden() -> i64 {
    1024
}
fn d_chans() -> i64 {
    3
}
fn d_heads() -> i64 {
    16
}
fn d_layers() -> i64 {
    24
}
fn d_ratio() -> f64 {
    4.0
}
fn d_eps() -> f64 {
    1e-6
}
fn yes() -> bool {
    true
}
fn d_act() -> String {
    "gelu".into()
}
fn d_pred_hidden() -> i64 {
    384
}
fn d_pred_heads() -> i64 {
    12
}
fn d_pred_layers() -> i64 {
    12
}
fn d_pred_masks() -> i64 {
    10
}

/// `VJEPA2Config` (defaults = the HF class defaults = vjepa2-vitl-fpc64-256). The `pred_*` fields
/// are only used to write tiny folders whose predictor keys match transformers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    #[serde(default = "d_patch")]
    pub patch_size: i64,
    #[serde(default = "d_crop")]
    pub crop_size: i64,
    #[serde(default = "d_frames")]
    pub frames_per_clip: i64,
    #[serde(default = "d_tubelet")]
    pub tubelet_size: i64,
    #[serde(default = "d_hidden")]
    pub hidden_size: i64,
    #[serde(default = "d_chans")]
    pub in_chans: i64,
    #[serde(default = "d_heads")]
    pub num_attention_heads: i64,
    #[serde(default = "d_layers")]
    pub num_hidden_layers: i64,
    #[serde(default = "d_ratio")]
    pub mlp_ratio: f64,
    #[serde(default = "d_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "yes")]
    pub qkv_bias: bool,
    #[serde(default = "d_act")]
    pub hidden_act: String,
    #[serde(default = "d_pred_hidden")]
    pub pred_hidden_size: i64,
    #[serde(default = "d_pred_heads")]
    pub pred_num_attention_heads: i64,
    #[serde(default = "d_pred_layers")]
    pub pred_num_hidden_layers: i64,
    #[serde(default = "d_pred_masks")]
    pub pred_num_mask_tokens: i64,
    #[serde(default = "d_ratio")]
    pub pred_mlp_ratio: f64,
}

impl Config {
    /// A tiny config shaped like ViT-L fpc64-256 (tubelets of 2, RoPE with pass-through channels).
    pub fn tiny() -> Self {
        Self {
            patch_size: 16,
            crop_size: 64,
            frames_per_clip: 16,
            tubelet_size: 2,
            hidden_size: 64,
            in_chans: 3,
            num_attention_heads: 2,
            num_hidden_layers: 4,
            mlp_ratio: 4.0,
            layer_norm_eps: 1e-6,
            qkv_bias: true,
            hidden_act: "gelu".into(),
            pred_hidden_size: 32,
            pred_num_attention_heads: 2,
            pred_num_hidden_layers: 1,
            pred_num_mask_tokens: 2,
            pred_mlp_ratio: 4.0,
        }
    }
}

#[derive(Debug)]
struct Block {
    norm1: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    proj: Linear,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

impl Block {
    fn new(p: nn::Path, c: &Config) -> Self {
        let d = c.hidden_size;
        let a = &p / "attention";
        let m = &p / "mlp";
        let i = (d as f64 * c.mlp_ratio) as i64;
        Self {
            norm1: LayerNorm::new(&p / "norm1", d, c.layer_norm_eps),
            q: Linear::new(&a / "query", d, d, c.qkv_bias),
            k: Linear::new(&a / "key", d, d, c.qkv_bias),
            v: Linear::new(&a / "value", d, d, c.qkv_bias),
            proj: Linear::new(&a / "proj", d, d, true),
            norm2: LayerNorm::new(&p / "norm2", d, c.layer_norm_eps),
            fc1: Linear::new(&m / "fc1", d, i, true),
            fc2: Linear::new(&m / "fc2", i, d, true),
        }
    }

    fn forward(&self, h: &Tensor, rope: &Rope, heads: i64, act: Act) -> Tensor {
        let a = self.norm1.forward(h);
        let q = rope.apply(&common::split_heads(&self.q.forward(&a), heads));
        let k = rope.apply(&common::split_heads(&self.k.forward(&a), heads));
        let v = common::split_heads(&self.v.forward(&a), heads);
        let h = h + self.proj.forward(&common::attention(&q, &k, &v));
        let m = self
            .fc2
            .forward(&act.forward(&self.fc1.forward(&self.norm2.forward(&h))));
        h + m
    }
}

/// 3-D RoPE tables of `VJEPA2RopeAttention`: per axis (depth, height, width) a `seg`-channel
/// segment with (cos, sin) [N, seg]; channels past 3*seg pass through.
struct Rope {
    seg: i64,
    tables: [(Tensor, Tensor); 3],
}

impl Rope {
    /// `n` tokens, `grid` = crop_size / patch_size (from the config, not the input).
    fn new(n: i64, grid: i64, head_dim: i64, kind: Kind, device: Device) -> Self {
        let seg = 2 * ((head_dim / 3) / 2);
        let ids = Tensor::arange(n, (Kind::Int64, device));
        let per_frame = grid * grid;
        let frame = ids.divide_scalar_mode(per_frame, "floor");
        let rem = &ids - &frame * per_frame;
        let height = rem.divide_scalar_mode(grid, "floor");
        let width = &rem - &height * grid;
        // omega = 1 / 10000 ** (arange(seg/2) / (seg/2)), in the activation dtype.
        let half = seg / 2;
        let omega = Tensor::arange(half, (kind, device)) / (half as f64);
        let omega = Tensor::pow_scalar(10000.0, &omega).reciprocal();
        let table = |pos: &Tensor| {
            let freq = pos.unsqueeze(-1).to_kind(kind) * &omega; // [N, seg/2]
            (freq.cos().repeat([1, 2]), freq.sin().repeat([1, 2])) // tiled [N, seg]
        };
        Self {
            seg,
            tables: [table(&frame), table(&height), table(&width)],
        }
    }

    /// x [B, H, N, Dh] -> [B, H, N, Dh]
    fn apply(&self, x: &Tensor) -> Tensor {
        let dh = x.size()[3];
        let mut parts = Vec::with_capacity(4);
        for (i, (cos, sin)) in self.tables.iter().enumerate() {
            let s = x.narrow(-1, i as i64 * self.seg, self.seg);
            // y[2i] = -x[2i+1], y[2i+1] = x[2i]
            let pairs = s.unflatten(-1, [-1, 2]);
            let x1 = pairs.select(-1, 0);
            let x2 = pairs.select(-1, 1);
            let y = Tensor::stack(&[-x2, x1], -1).flatten(-2, -1);
            parts.push(&s * cos + y * sin);
        }
        let used = 3 * self.seg;
        if used < dh {
            parts.push(x.narrow(-1, used, dh - used));
        }
        Tensor::cat(&parts, -1)
    }
}

/// V-JEPA 2 encoder with frozen weights in their own `VarStore`.
#[derive(Debug)]
pub struct VJepa2 {
    config: Config,
    act: Act,
    vs: nn::VarStore,
    patch_w: Tensor,
    patch_b: Tensor,
    blocks: Vec<Block>,
    norm: LayerNorm,
}

/// Keys of a `VJEPA2Model` / `VJEPA2ForVideoClassification` checkpoint that we never run.
fn ignored(key: &str) -> bool {
    key.starts_with("predictor.") || key.starts_with("pooler.") || key.starts_with("classifier.")
}

impl VJepa2 {
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
        let enc = &root / "encoder";
        let pe = &enc / "embeddings" / "patch_embeddings" / "proj";
        let d = c.hidden_size;
        let (t, p) = (c.tubelet_size, c.patch_size);
        let patch_w = pe.zeros("weight", &[d, c.in_chans, t, p, p]);
        let patch_b = pe.zeros("bias", &[d]);
        let layer = &enc / "layer";
        let blocks = (0..c.num_hidden_layers)
            .map(|i| Block::new(&layer / i, c))
            .collect();
        let norm = LayerNorm::new(&enc / "layernorm", d, c.layer_norm_eps);
        Ok(Self {
            config,
            act,
            vs: nn::VarStore::new(Device::Cpu),
            patch_w,
            patch_b,
            blocks,
            norm,
        })
    }

    /// Loads a `VJEPA2Model` folder (or a `VJEPA2ForVideoClassification` one, prefix `vjepa2.`)
    /// onto `device` in `kind`, frozen.
    pub fn load(dir: &Path, device: Device, kind: Kind) -> Result<Self> {
        let config: Config = read_config(dir)?;
        let mut vs = common::store(device);
        let mut model = Self::build(&vs, config, dir)?;
        let rules = KeyRules {
            strip_prefixes: &["vjepa2."],
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
        if s.len() != 5
            || s[1] < 1
            || s[2] != c.in_chans
            || s[3] < c.patch_size
            || s[4] < c.patch_size
        {
            return Err(Error::Msg(format!(
                "V-JEPA 2 pixel_values_videos must be [B, T, {}, H, W], got {s:?}",
                c.in_chans
            )));
        }
        Ok(())
    }

    /// [B, T, C, H, W] -> tokens [B, N, D] and the RoPE tables.
    fn embed(&self, x: &Tensor) -> (Tensor, Rope) {
        let c = &self.config;
        let kind = self.patch_w.kind();
        let mut x = x.to_device(self.patch_w.device()).permute([0, 2, 1, 3, 4]);
        if x.size()[2] < c.tubelet_size {
            x = x.repeat([1, 1, c.tubelet_size, 1, 1]);
        }
        let x = x.to_kind(kind);
        let (t, p) = (c.tubelet_size, c.patch_size);
        let h = x
            .conv3d(
                &self.patch_w,
                Some(&self.patch_b),
                [t, p, p],
                [0, 0, 0],
                [1, 1, 1],
                1,
            )
            .flatten(2, 4)
            .transpose(1, 2);
        let n = h.size()[1];
        let head_dim = c.hidden_size / c.num_attention_heads;
        let rope = Rope::new(n, c.crop_size / c.patch_size, head_dim, kind, h.device());
        (h, rope)
    }

    /// pixel_values_videos [B, T, 3, H, W] -> hidden_states: num_hidden_layers+1 tensors
    /// [B, N, D], exactly transformers 4.57.1 (index 0 = patch embedding, last = LayerNorm'ed).
    pub fn forward_hidden(&self, pixel_values_videos: &Tensor) -> Result<Vec<Tensor>> {
        self.check_input(pixel_values_videos)?;
        Ok(tch::no_grad(|| {
            let (h, rope) = self.embed(pixel_values_videos);
            let n = self.blocks.len();
            common::run_blocks(
                h,
                n,
                |i, h| self.blocks[i].forward(h, &rope, self.config.num_attention_heads, self.act),
                &self.norm,
                true,
            )
        }))
    }

    /// pixel_values_videos [B, T, 3, H, W] -> last_hidden_state [B, N, D] (no list kept).
    pub fn forward_last(&self, pixel_values_videos: &Tensor) -> Result<Tensor> {
        self.check_input(pixel_values_videos)?;
        Ok(tch::no_grad(|| {
            let (h, rope) = self.embed(pixel_values_videos);
            let n = self.blocks.len();
            let mut out = common::run_blocks(
                h,
                n,
                |i, h| self.blocks[i].forward(h, &rope, self.config.num_attention_heads, self.act),
                &self.norm,
                false,
            );
            out.pop().expect("run_blocks returns the last state")
        }))
    }
}

/// Shapes of the predictor keys `VJEPA2Model` saves (never run here; written by `write_tiny` so
/// the folder is complete for transformers).
fn predictor_shapes(c: &Config) -> Vec<(String, Vec<i64>)> {
    let (d, pd) = (c.hidden_size, c.pred_hidden_size);
    let pi = (pd as f64 * c.pred_mlp_ratio) as i64;
    let mut v = vec![
        (
            "predictor.embeddings.mask_tokens".to_string(),
            vec![c.pred_num_mask_tokens, 1, 1, pd],
        ),
        (
            "predictor.embeddings.predictor_embeddings.weight".into(),
            vec![pd, d],
        ),
        (
            "predictor.embeddings.predictor_embeddings.bias".into(),
            vec![pd],
        ),
        ("predictor.layernorm.weight".into(), vec![pd]),
        ("predictor.layernorm.bias".into(), vec![pd]),
        ("predictor.proj.weight".into(), vec![d, pd]),
        ("predictor.proj.bias".into(), vec![d]),
    ];
    for i in 0..c.pred_num_hidden_layers {
        let l = format!("predictor.layer.{i}");
        for n in ["norm1", "norm2"] {
            v.push((format!("{l}.{n}.weight"), vec![pd]));
            v.push((format!("{l}.{n}.bias"), vec![pd]));
        }
        for n in ["query", "key", "value", "proj"] {
            v.push((format!("{l}.attention.{n}.weight"), vec![pd, pd]));
            v.push((format!("{l}.attention.{n}.bias"), vec![pd]));
        }
        v.push((format!("{l}.mlp.fc1.weight"), vec![pi, pd]));
        v.push((format!("{l}.mlp.fc1.bias"), vec![pi]));
        v.push((format!("{l}.mlp.fc2.weight"), vec![pd, pi]));
        v.push((format!("{l}.mlp.fc2.bias"), vec![pd]));
    }
    v
}

impl Config {
    /// `facebook/vjepa2-vitl-fpc64-256`: ViT-L/16, 24 layers of 1024, tubelets of 2, 256 px crops,
    /// 64 frames per clip; predictor 12 layers of 384 (stored, not run).
    pub fn vitl_fpc64_256() -> Self {
        Self {
            crop_size: 256,
            frames_per_clip: 64,
            hidden_size: 1024,
            num_attention_heads: 16,
            num_hidden_layers: 24,
            pred_hidden_size: 384,
            pred_num_attention_heads: 12,
            pred_num_hidden_layers: 12,
            pred_num_mask_tokens: 10,
            ..Self::tiny()
        }
    }

    /// [`Config::tiny`] at the real input geometry (256 px crops, 64 frames per clip as
    /// fpc64-256), with 2 blocks so a CPU benchmark measures the input side, not 4096-token
    /// attention.
    pub fn tiny_real() -> Self {
        Self {
            crop_size: 256,
            frames_per_clip: 64,
            num_hidden_layers: 2,
            ..Self::tiny()
        }
    }
}

/// Writes a tiny random `VJEPA2Model` folder (config.json + model.safetensors with the encoder
/// and predictor keys, HF names).
pub fn write_tiny(dir: &Path, seed: u64) -> Result<()> {
    write_tiny_config(dir, seed, Config::tiny())
}

/// [`write_tiny`] with a given config.
pub fn write_tiny_config(dir: &Path, seed: u64, config: Config) -> Result<()> {
    write_random(dir, seed, config, Kind::Float)
}

/// A random `VJEPA2Model` folder of `config` (encoder and predictor keys), weights in `kind`.
pub fn write_random(dir: &Path, seed: u64, config: Config, kind: Kind) -> Result<()> {
    let vs = nn::VarStore::new(Device::Cpu);
    VJepa2::build(&vs, config.clone(), dir)?;
    let mut tensors = tiny::random_tensors(&vs, seed);
    tensors.extend(tiny::random_extra(&predictor_shapes(&config), seed + 1));
    let json = tiny::config_json(&config, "vjepa2", "VJEPA2Model")?;
    tiny::save_folder(dir, json, &tensors, kind)
}

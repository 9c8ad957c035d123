//! DINOv3 ViT (`DINOv3ViTModel`), after `transformers/models/dinov3_vit/modeling_dinov3_vit.py`
//! @4.57.1: patch Conv2d, CLS + register tokens, 2-D RoPE on patch tokens (tables in f32, then
//! cast), layer scale, gated or plain MLP, optional q/k/v/o/MLP biases, final LayerNorm.
//!
//! Returns the `hidden_states` tuple of transformers 4.57.1: `num_hidden_layers + 1` tensors
//! `[B, 1 + R + Hp*Wp, D]`; index 0 is the embedding output, index i the output of block i-1, and
//! the last one carries the final LayerNorm (it equals `last_hidden_state`).
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
fn d_hidden() -> i64 {
    384
}
fn d_inter() -> i64 {
    1536
}
fn d_layers() -> i64 {
    12
}
fn d_heads() -> i64 {
    6
}
fn d_act() -> String {
    "gelu".into()
}
fn d_eps() -> f64 {
    1e-5
}
fn d_theta() -> f64 {
    100.0
}
fn d_image() -> i64 {
    224
}
fn d_channels() -> i64 {
    3
}
fn yes() -> bool {
    true
}
fn d_layerscale() -> f64 {
    1.0
}

/// `DINOv3ViTConfig` fields that shape the eval forward (defaults = the HF class defaults).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    #[serde(default = "d_patch")]
    pub patch_size: i64,
    #[serde(default = "d_hidden")]
    pub hidden_size: i64,
    #[serde(default = "d_inter")]
    pub intermediate_size: i64,
    #[serde(default = "d_layers")]
    pub num_hidden_layers: i64,
    #[serde(default = "d_heads")]
    pub num_attention_heads: i64,
    #[serde(default = "d_act")]
    pub hidden_act: String,
    #[serde(default = "d_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "d_theta")]
    pub rope_theta: f64,
    #[serde(default = "d_image")]
    pub image_size: i64,
    #[serde(default = "d_channels")]
    pub num_channels: i64,
    #[serde(default = "yes")]
    pub query_bias: bool,
    #[serde(default)]
    pub key_bias: bool,
    #[serde(default = "yes")]
    pub value_bias: bool,
    #[serde(default = "yes")]
    pub proj_bias: bool,
    #[serde(default = "yes")]
    pub mlp_bias: bool,
    #[serde(default = "d_layerscale")]
    pub layerscale_value: f64,
    #[serde(default)]
    pub use_gated_mlp: bool,
    #[serde(default)]
    pub num_register_tokens: i64,
}

impl Config {
    /// A tiny config shaped like the real ViT-H/16+ (registers, gated SiLU MLP, k without bias).
    pub fn tiny() -> Self {
        Self {
            patch_size: 16,
            hidden_size: 64,
            intermediate_size: 128,
            num_hidden_layers: 4,
            num_attention_heads: 4,
            hidden_act: "silu".into(),
            layer_norm_eps: 1e-5,
            rope_theta: 100.0,
            image_size: 224,
            num_channels: 3,
            query_bias: true,
            key_bias: false,
            value_bias: true,
            proj_bias: true,
            mlp_bias: true,
            layerscale_value: 1.0,
            use_gated_mlp: true,
            num_register_tokens: 4,
        }
    }

    /// `facebook/dinov3-vith16plus-pretrain-lvd1689m`: ViT-H+/16, 32 layers of 1280, SwiGLU 5120,
    /// 20 heads, 4 registers (~840M parameters).
    pub fn vith16plus() -> Self {
        Self {
            hidden_size: 1280,
            intermediate_size: 5120,
            num_hidden_layers: 32,
            num_attention_heads: 20,
            ..Self::tiny()
        }
    }

    fn head_dim(&self) -> i64 {
        self.hidden_size / self.num_attention_heads
    }
}

#[derive(Debug)]
struct Block {
    norm1: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ls1: Tensor,
    norm2: LayerNorm,
    gate: Option<Linear>,
    up: Linear,
    down: Linear,
    ls2: Tensor,
}

impl Block {
    fn new(p: nn::Path, c: &Config) -> Self {
        let d = c.hidden_size;
        let a = &p / "attention";
        let m = &p / "mlp";
        let i = c.intermediate_size;
        Self {
            norm1: LayerNorm::new(&p / "norm1", d, c.layer_norm_eps),
            q: Linear::new(&a / "q_proj", d, d, c.query_bias),
            k: Linear::new(&a / "k_proj", d, d, c.key_bias),
            v: Linear::new(&a / "v_proj", d, d, c.value_bias),
            o: Linear::new(&a / "o_proj", d, d, c.proj_bias),
            ls1: (&p / "layer_scale1").ones("lambda1", &[d]),
            norm2: LayerNorm::new(&p / "norm2", d, c.layer_norm_eps),
            gate: c
                .use_gated_mlp
                .then(|| Linear::new(&m / "gate_proj", d, i, c.mlp_bias)),
            up: Linear::new(&m / "up_proj", d, i, c.mlp_bias),
            down: Linear::new(&m / "down_proj", i, d, c.mlp_bias),
            ls2: (&p / "layer_scale2").ones("lambda1", &[d]),
        }
    }

    /// h [B, L, D], rope (cos, sin) [P, Dh] for the last P tokens -> [B, L, D]
    fn forward(&self, h: &Tensor, rope: &(Tensor, Tensor), heads: i64, act: Act) -> Tensor {
        let a = self.norm1.forward(h);
        let q = common::split_heads(&self.q.forward(&a), heads);
        let k = common::split_heads(&self.k.forward(&a), heads);
        let v = common::split_heads(&self.v.forward(&a), heads);
        let (q, k) = (apply_rope(&q, rope), apply_rope(&k, rope));
        let attn = self.o.forward(&common::attention(&q, &k, &v));
        let h = h + attn * &self.ls1;
        let m = self.norm2.forward(&h);
        let inner = match &self.gate {
            Some(g) => act.forward(&g.forward(&m)) * self.up.forward(&m),
            None => act.forward(&self.up.forward(&m)),
        };
        h + self.down.forward(&inner) * &self.ls2
    }
}

/// `rotate_half`: cat(-x[.., Dh/2:], x[.., :Dh/2])
fn rotate_half(x: &Tensor) -> Tensor {
    let half = x.size()[x.dim() - 1] / 2;
    let x1 = x.narrow(-1, 0, half);
    let x2 = x.narrow(-1, half, half);
    Tensor::cat(&[-x2, x1], -1)
}

/// RoPE on the last P tokens only (the CLS and register tokens pass through). x [B, H, L, Dh]
fn apply_rope(x: &Tensor, (cos, sin): &(Tensor, Tensor)) -> Tensor {
    let l = x.size()[2];
    let p = cos.size()[0];
    let prefix = x.narrow(2, 0, l - p);
    let patches = x.narrow(2, l - p, p);
    let rotated = &patches * cos + rotate_half(&patches) * sin;
    Tensor::cat(&[prefix, rotated], 2)
}

/// DINOv3 ViT backbone with frozen weights in their own `VarStore`.
#[derive(Debug)]
pub struct Dinov3 {
    config: Config,
    act: Act,
    vs: nn::VarStore,
    cls: Tensor,
    registers: Tensor,
    patch_w: Tensor,
    patch_b: Tensor,
    inv_freq: Tensor,
    blocks: Vec<Block>,
    norm: LayerNorm,
}

impl Dinov3 {
    fn build(vs: &nn::VarStore, config: Config, dir: &Path) -> Result<Self> {
        let c = &config;
        if c.hidden_size % c.num_attention_heads != 0 || c.head_dim() % 4 != 0 {
            return Err(Error::Msg(format!(
                "{}: hidden_size {} / heads {} must give a head_dim divisible by 4",
                dir.display(),
                c.hidden_size,
                c.num_attention_heads
            )));
        }
        let act = Act::parse(&c.hidden_act, dir)?;
        let root = vs.root();
        let e = &root / "embeddings";
        let d = c.hidden_size;
        let cls = e.zeros("cls_token", &[1, 1, d]);
        let _mask = e.zeros("mask_token", &[1, 1, d]);
        let registers = e.zeros("register_tokens", &[1, c.num_register_tokens, d]);
        let pe = &e / "patch_embeddings";
        let patch_w = pe.zeros("weight", &[d, c.num_channels, c.patch_size, c.patch_size]);
        let patch_b = pe.zeros("bias", &[d]);
        let layer = &root / "layer";
        let blocks = (0..c.num_hidden_layers)
            .map(|i| Block::new(&layer / i, c))
            .collect();
        let norm = LayerNorm::new(&root / "norm", d, c.layer_norm_eps);
        // inv_freq = 1 / base ** arange(0, 1, 4 / head_dim): a non-persistent f32 buffer that
        // transformers computes on the CPU at init and then moves to the device.
        let step = 4.0 / c.head_dim() as f64;
        let steps = Tensor::arange_start_step(0.0, 1.0, step, (Kind::Float, Device::Cpu));
        let inv_freq = Tensor::pow_scalar(c.rope_theta, &steps)
            .reciprocal()
            .to_device(vs.device());
        Ok(Self {
            config,
            act,
            vs: nn::VarStore::new(Device::Cpu),
            cls,
            registers,
            patch_w,
            patch_b,
            inv_freq,
            blocks,
            norm,
        })
    }

    /// Loads a `DINOv3ViTModel` folder onto `device` in `kind` (f32, bf16 or f16), frozen.
    pub fn load(dir: &Path, device: Device, kind: Kind) -> Result<Self> {
        let config: Config = read_config(dir)?;
        let mut vs = common::store(device);
        let mut model = Self::build(&vs, config, dir)?;
        let rules = KeyRules {
            strip_prefixes: &["dinov3_vit."],
            ignore: &|_k: &str| false,
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

    /// (cos, sin) [Hp*Wp, Dh] in the activation dtype, computed in f32 as transformers does.
    fn rope(&self, hp: i64, wp: i64, kind: Kind) -> (Tensor, Tensor) {
        let dev = self.inv_freq.device();
        let ch = Tensor::arange_start(0.5, hp as f64, (Kind::Float, dev)) / hp as f64;
        let cw = Tensor::arange_start(0.5, wp as f64, (Kind::Float, dev)) / wp as f64;
        let grid = Tensor::meshgrid_indexing(&[ch, cw], "ij");
        let coords = Tensor::stack(&grid, -1).flatten(0, 1) * 2.0 - 1.0; // [P, 2] (y, x)
        let angles =
            (coords.unsqueeze(-1) * (2.0 * std::f64::consts::PI)) * self.inv_freq.view([1, 1, -1]); // [P, 2, Dh/4]
        let angles = angles.flatten(1, 2).tile([1, 2]); // [P, Dh]
        (angles.cos().to_kind(kind), angles.sin().to_kind(kind))
    }

    /// pixel_values [B, C, H, W] -> tokens [B, 1 + R + Hp*Wp, D] and RoPE tables.
    fn embed(&self, x: &Tensor) -> (Tensor, (Tensor, Tensor)) {
        let kind = self.patch_w.kind();
        let x = x.to_device(self.patch_w.device()).to_kind(kind);
        let p = self.config.patch_size;
        let patches = x.conv2d(
            &self.patch_w,
            Some(&self.patch_b),
            [p, p],
            [0, 0],
            [1, 1],
            1,
        );
        let (b, _, hp, wp) = patches.size4().expect("conv2d output is 4-D");
        let patches = patches.flatten(2, 3).transpose(1, 2);
        let d = self.config.hidden_size;
        let h = Tensor::cat(
            &[
                self.cls.expand([b, 1, d], false),
                self.registers
                    .expand([b, self.config.num_register_tokens, d], false),
                patches,
            ],
            1,
        );
        (h, self.rope(hp, wp, kind))
    }

    fn check_input(&self, x: &Tensor) -> Result<()> {
        let s = x.size();
        let p = self.config.patch_size;
        if s.len() != 4 || s[1] != self.config.num_channels || s[2] % p != 0 || s[3] % p != 0 {
            return Err(Error::Msg(format!(
                "DINOv3 pixel_values must be [B, {}, H, W] with H, W multiples of {p}, got {s:?}",
                self.config.num_channels
            )));
        }
        Ok(())
    }

    /// pixel_values [B, 3, H, W] -> hidden_states: num_hidden_layers+1 tensors
    /// [B, 1+R+Hp*Wp, D], exactly transformers 4.57.1 (index 0 = embeddings, last =
    /// final-LayerNorm'ed).
    pub fn forward_hidden(&self, pixel_values: &Tensor) -> Result<Vec<Tensor>> {
        self.check_input(pixel_values)?;
        Ok(tch::no_grad(|| {
            let (h, rope) = self.embed(pixel_values);
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

    /// pixel_values [B, 3, H, W] -> last_hidden_state [B, 1+R+Hp*Wp, D] (no list kept).
    pub fn forward_last(&self, pixel_values: &Tensor) -> Result<Tensor> {
        self.check_input(pixel_values)?;
        Ok(tch::no_grad(|| {
            let (h, rope) = self.embed(pixel_values);
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

impl Dinov3 {
    /// pixel_values [B, 3, H, W] -> `hidden_states[layer]` [B, 1+R+Hp*Wp, D] only, running just
    /// the first `layer` blocks (the final LayerNorm only when `layer` is the last index).
    pub fn forward_hidden_at(&self, pixel_values: &Tensor, layer: usize) -> Result<Tensor> {
        self.check_input(pixel_values)?;
        let n = self.blocks.len();
        if layer > n {
            return Err(Error::Msg(format!(
                "DINOv3 has hidden states 0..={n}; layer {layer} requested"
            )));
        }
        Ok(tch::no_grad(|| {
            let (mut h, rope) = self.embed(pixel_values);
            for i in 0..layer {
                h = self.blocks[i].forward(&h, &rope, self.config.num_attention_heads, self.act);
            }
            if layer == n {
                self.norm.forward(&h)
            } else {
                h
            }
        }))
    }
}

/// Writes a tiny random `DINOv3ViTModel` folder (config.json + model.safetensors, HF key names).
pub fn write_tiny(dir: &Path, seed: u64) -> Result<()> {
    write_random(dir, seed, Config::tiny(), Kind::Float)
}

/// Writes a random `DINOv3ViTModel` folder of `config`, weights stored in `kind`.
pub fn write_random(dir: &Path, seed: u64, config: Config, kind: Kind) -> Result<()> {
    let vs = nn::VarStore::new(Device::Cpu);
    Dinov3::build(&vs, config.clone(), dir)?;
    let tensors = tiny::random_tensors(&vs, seed);
    let json = tiny::config_json(&config, "dinov3_vit", "DINOv3ViTModel")?;
    tiny::save_folder(dir, json, &tensors, kind)
}

//! Matmul FLOPs of one encoder forward, counted from the config (for the GPU check's achieved
//! TFLOP/s and MFU): per block 2·N·4·D² for the q/k/v/output projections, 2·N·D·F·m for the MLP
//! (m = 3 matrices gated, 2 plain) and 4·N²·D for the two attention products, plus the patch
//! embedding 2·P·D·(C·patch volume). Norms, softmax, GELU and RoPE are left out (a few percent).

use super::Backbone;

/// Encoder matmul FLOPs of `layers` blocks over `tokens` tokens of width `d`, MLP width `f`.
fn encoder(tokens: f64, d: f64, f: f64, mlp_mats: f64, layers: f64) -> f64 {
    layers
        * (2.0 * tokens * 4.0 * d * d + 2.0 * tokens * d * f * mlp_mats + 4.0 * tokens * tokens * d)
}

impl Backbone {
    /// Matmul FLOPs of one forward of a batch of shape `input` (the transformers input of the
    /// family: `[B, 3, H, W]`, `[B, T, 3, H, W]` or `[B, frames, mels]`); `None` for CLIP.
    pub fn forward_flops(&self, input: &[i64]) -> Option<f64> {
        let b = *input.first()? as f64;
        match self {
            Backbone::Dinov3(m) => {
                let c = m.config();
                let (h, w) = (input[2], input[3]);
                let patches = ((h / c.patch_size) * (w / c.patch_size)) as f64;
                let tokens = patches + 1.0 + c.num_register_tokens as f64;
                let d = c.hidden_size as f64;
                let mats = if c.use_gated_mlp { 3.0 } else { 2.0 };
                let embed = 2.0 * patches * d * (3 * c.patch_size * c.patch_size) as f64;
                let enc = encoder(
                    tokens,
                    d,
                    c.intermediate_size as f64,
                    mats,
                    c.num_hidden_layers as f64,
                );
                Some(b * (embed + enc))
            }
            Backbone::VJepa2(m) => {
                let c = m.config();
                let (t, h, w) = (input[1], input[3], input[4]);
                let tokens =
                    ((t / c.tubelet_size) * (h / c.patch_size) * (w / c.patch_size)) as f64;
                let d = c.hidden_size as f64;
                let f = (c.hidden_size as f64 * c.mlp_ratio).floor();
                let vol = (c.in_chans * c.tubelet_size * c.patch_size * c.patch_size) as f64;
                let enc = encoder(tokens, d, f, 2.0, c.num_hidden_layers as f64);
                Some(b * (2.0 * tokens * d * vol + enc))
            }
            Backbone::Ast(m) => {
                let c = m.config();
                let (fq, tm) = c.grid();
                let patches = (fq * tm) as f64;
                let d = c.hidden_size as f64;
                let embed = 2.0 * patches * d * (c.patch_size * c.patch_size) as f64;
                let enc = encoder(
                    patches + 2.0,
                    d,
                    c.intermediate_size as f64,
                    2.0,
                    c.num_hidden_layers as f64,
                );
                Some(b * (embed + enc))
            }
            Backbone::Clip(_) => None,
        }
    }
}

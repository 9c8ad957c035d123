//! `train-head synth-store`: writes a synthetic feature store in the extractor's schema with a
//! planted process -> result coupling (see `weld_cache::train::synth_store`), for benchmarks
//! and trials of the Causal-FiLM path without backbones. Defaults: demo-scale widths.
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use weld_cache::features::synth_store::{write_synth_store, SynthStoreSpec};

#[derive(Args)]
pub struct SynthStoreArgs {
    /// Store folder to create (must not exist)
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 100)]
    n_train: usize,
    #[arg(long, default_value_t = 40)]
    n_val: usize,
    #[arg(long, default_value_t = 40)]
    n_test: usize,
    /// video tokens per sample
    #[arg(long, default_value_t = 64)]
    video_tokens: usize,
    /// audio tokens per window (4 windows)
    #[arg(long, default_value_t = 83)]
    audio_tokens: usize,
    /// DINOv3 tokens per view
    #[arg(long, default_value_t = 201)]
    image_tokens: usize,
    /// width of every backbone feature (video, audio, image) not given on its own
    #[arg(long, default_value_t = 64)]
    dim: usize,
    /// width of the video tokens (default: --dim; V-JEPA 2 ViT-L: 1024)
    #[arg(long)]
    video_dim: Option<usize>,
    /// width of the audio tokens (default: --dim; AST base: 768)
    #[arg(long)]
    audio_dim: Option<usize>,
    /// width of the image tokens (default: --dim; DINOv3 ViT-H+: 1280)
    #[arg(long)]
    image_dim: Option<usize>,
    /// last hidden-state index (hidden states 0..=layers are pooled)
    #[arg(long, default_value_t = 4)]
    layers: usize,
    /// hidden states whose tokens are stored
    #[arg(long, value_delimiter = ',', default_values_t = [2usize, 3])]
    token_layers: Vec<usize>,
    #[arg(long, default_value_t = 16)]
    text_dim: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

pub fn run(a: SynthStoreArgs) -> Result<()> {
    let spec = SynthStoreSpec {
        n_train: a.n_train,
        n_val: a.n_val,
        n_test: a.n_test,
        video_tokens: a.video_tokens,
        video_dim: a.video_dim.unwrap_or(a.dim),
        audio_tokens: a.audio_tokens,
        audio_dim: a.audio_dim.unwrap_or(a.dim),
        image_tokens: a.image_tokens,
        image_dim: a.image_dim.unwrap_or(a.dim),
        layers: a.layers,
        token_layers: a.token_layers,
        text_dim: a.text_dim,
        seed: a.seed,
        ..SynthStoreSpec::default()
    };
    write_synth_store(&a.out, &spec).with_context(|| format!("writing {}", a.out.display()))?;
    println!("wrote {}", a.out.display());
    Ok(())
}

//! Model tools: `extract inspect` (what a model folder holds), `extract forward` (run the raw
//! backbone on a safetensors input and write every hidden state: the parity harness users can
//! run on their own checkpoints) and `extract init-models` (tiny random HF folders for the demo
//! and the tests).
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;
use tch::{Kind, Tensor};
use weld_cache::backbones::{self, loader, Backbone};

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Hugging Face model folder (config.json + weights).
    #[arg(long)]
    pub model_dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct ForwardArgs {
    /// Hugging Face model folder (config.json + weights).
    #[arg(long)]
    pub model_dir: PathBuf,
    /// safetensors file with the input named as transformers names it (`pixel_values`,
    /// `pixel_values_videos`, `input_values`).
    #[arg(long)]
    pub input: PathBuf,
    /// Output safetensors: every `hidden_states.{i}` and `last_hidden_state`, in f32.
    #[arg(long)]
    pub output: PathBuf,
    /// `cpu` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// `f32`, `bf16` or `f16`.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Also time N `last_hidden_state`-only forwards (after one warm-up) and print
    /// `TIME <seconds per forward>` (used by scripts/bench_backbones.sh).
    #[arg(long, default_value_t = 0)]
    pub bench: usize,
}

#[derive(Args, Debug)]
pub struct InitModelsArgs {
    /// Output folder; gets `dinov3/`, `vjepa2/`, `ast/`.
    #[arg(long)]
    pub out: PathBuf,
    /// `tiny` (random weights of tiny widths, for the demo and tests; every backbone and CLIP)
    /// or `real` (random weights of the real architectures: DINOv3 ViT-H+/16 with 4 registers,
    /// V-JEPA 2 ViT-L/16 at 256 px, AST base 14-14; ~1.2B parameters, for GPU timing only).
    #[arg(long, default_value = "tiny", value_parser = ["tiny", "real"])]
    pub size: String,
    /// Storage dtype of the weights: `f32`, `bf16` or `f16` (`--size real`; tiny folders are
    /// always f32).
    #[arg(long, default_value = "bf16")]
    pub dtype: String,
    /// Seed of the random weights.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Input geometry of the tiny models: `demo` (64 px V-JEPA 2 crops, 128-frame AST windows)
    /// or `real` (256 px crops, 1024-frame windows, as the real checkpoints; for benchmarks).
    #[arg(long, default_value = "demo", value_parser = ["demo", "real"])]
    pub geometry: String,
}

/// `extract inspect`: model type, config summary, parameter count, stored dtype, files + sha256.
pub fn inspect(a: &InspectArgs) -> Result<()> {
    let dir = &a.model_dir;
    let model_type = backbones::model_type(dir).with_context(|| format!("{}", dir.display()))?;
    let model = Backbone::load(dir, tch::Device::Cpu, Kind::Float)
        .with_context(|| format!("loading {}", dir.display()))?;
    println!("model dir:  {}", dir.display());
    println!("model type: {model_type} (input `{}`)", model.input_name());
    println!("config:     {}", model.summary());
    let files = loader::weight_files(dir).with_context(|| format!("{}", dir.display()))?;
    let mut total = 0u64;
    let mut dtypes = std::collections::BTreeMap::<String, u64>::new();
    let mut lines = Vec::new();
    for f in &files {
        let info = loader::weight_file_info(f).with_context(|| format!("{}", f.display()))?;
        total += info.numel;
        for (k, n) in &info.dtypes {
            *dtypes.entry(k.clone()).or_default() += n;
        }
        lines.push(format!(
            "  {}  {} tensors  sha256 {}",
            f.file_name().unwrap_or_default().to_string_lossy(),
            info.tensors,
            info.sha256
        ));
    }
    println!("stored:     {total} values in checkpoint ({dtypes:?})");
    println!(
        "parameters: {} in the backbone we run (heads/predictors skipped by rule)",
        model.num_parameters()
    );
    println!("weight files:");
    for l in lines {
        println!("{l}");
    }
    Ok(())
}

/// `extract forward`: every hidden state of the raw backbone, written as f32 safetensors.
pub fn forward(a: &ForwardArgs) -> Result<()> {
    let device = weld_cache::device::parse_device(&a.device)
        .with_context(|| format!("--device {}", a.device))?;
    let kind = backbones::parse_kind(&a.dtype).with_context(|| format!("--dtype {}", a.dtype))?;
    let model = Backbone::load(&a.model_dir, device, kind)
        .with_context(|| format!("loading {}", a.model_dir.display()))?;
    let inputs = Tensor::read_safetensors(&a.input)
        .with_context(|| format!("reading {}", a.input.display()))?;
    let name = model.input_name();
    let Some((_, input)) = inputs.iter().find(|(k, _)| k == name) else {
        let have: Vec<&str> = inputs.iter().map(|(k, _)| k.as_str()).collect();
        bail!(
            "{}: no tensor `{name}` (model type {}); it holds {have:?}",
            a.input.display(),
            model.model_type()
        );
    };
    let out: Vec<(String, Tensor)> = model
        .forward_outputs(input)
        .with_context(|| format!("forward on {}", a.input.display()))?
        .into_iter()
        .map(|(k, t)| (k, to_f32_cpu(&t)))
        .collect();
    let n_hidden = out
        .iter()
        .filter(|(k, _)| k.starts_with("hidden_states."))
        .count();
    backbones::write_safetensors(&a.output, &out)
        .with_context(|| format!("writing {}", a.output.display()))?;
    if a.bench > 0 {
        let _ = model.forward_last(input)?;
        let t0 = std::time::Instant::now();
        for _ in 0..a.bench {
            // to_device(Cpu) waits for a CUDA stream, so the time is the real forward time.
            let _ = model.forward_last(input)?.to_device(tch::Device::Cpu);
        }
        println!("TIME {:.6}", t0.elapsed().as_secs_f64() / a.bench as f64);
    }
    println!(
        "{}: {} hidden states of shape {:?} ({}, {:?}) -> {}",
        model.model_type(),
        n_hidden,
        out[0].1.size(),
        a.dtype,
        device,
        a.output.display()
    );
    Ok(())
}

fn to_f32_cpu(t: &Tensor) -> Tensor {
    t.to_device(tch::Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous()
}

/// `extract init-models`: random HF folders of every backbone (tiny, or the real architectures).
pub fn init_models(a: &InitModelsArgs) -> Result<()> {
    let dirs = if a.size == "real" {
        if a.geometry != "demo" {
            bail!("--geometry is for tiny models; --size real has the real geometry already");
        }
        let kind =
            backbones::parse_kind(&a.dtype).with_context(|| format!("--dtype {}", a.dtype))?;
        backbones::write_real_all(&a.out, a.seed, kind)
            .with_context(|| format!("writing real-size models under {}", a.out.display()))?
    } else {
        backbones::write_tiny_all_geometry(&a.out, a.seed, a.geometry == "real")
            .with_context(|| format!("writing tiny models under {}", a.out.display()))?
    };
    for d in dirs {
        println!("{}", d.display());
    }
    Ok(())
}

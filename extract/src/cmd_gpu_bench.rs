//! `extract gpu-bench`: the device side of extraction, timed without decoders (the decoder-free
//! build runs it on a GPU box that has no OpenCV). Prints markdown tables for
//! `scripts/gpu_check.sh`:
//! - each backbone's `last_hidden_state` forward at several batch sizes, counted in welds (one
//!   weld = 5 DINOv3 views, one 32-frame V-JEPA 2 clip, 4 AST windows, as `extract run` feeds
//!   them): ms per forward, welds/s, achieved TFLOP/s (matmul FLOPs from the config,
//!   `backbones::cost`) and MFU against `--peak-tflops`;
//! - the device-side preprocessing of one weld's real-size media from uint8 uploads (32 grey
//!   640x480 frames -> V-JEPA 2, 5 BGR 1920x1080 images -> DINOv3 224, 16 frames -> frame_dino);
//! - parity of the device against the CPU (`--parity-models`, tiny f32 folders): each backbone's
//!   forward and both preprocessing paths on the same inputs.
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;
use tch::{Device, Kind, Tensor};
use weld_cache::backbones::{self, Backbone};
use weld_cache::preprocess::device::{
    dinov3_pixels_bgr_u8, dinov3_pixels_frames_u8, vjepa2_pixels_u8,
};
use weld_cache::preprocess::image::ImageNorm;

#[derive(Args, Debug)]
pub struct GpuBenchArgs {
    /// Folder with `dinov3/`, `vjepa2/`, `ast/` model folders to time (e.g. from
    /// `extract init-models --size real`).
    #[arg(long)]
    pub models: PathBuf,
    /// `cpu` or `cuda:N`.
    #[arg(long, default_value = "cuda:0")]
    pub device: String,
    /// Compute dtype of the timed forwards: `bf16`, `f16` or `f32`.
    #[arg(long, default_value = "bf16")]
    pub dtype: String,
    /// Batch sizes, in welds.
    #[arg(long, value_delimiter = ',', default_values_t = [1i64, 2, 4, 8, 16, 32])]
    pub batches: Vec<i64>,
    /// Timed repetitions per batch size (after one warm-up).
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Peak dense TFLOP/s of the device in `--dtype`, the denominator of MFU.
    #[arg(long, default_value_t = 790.0)]
    pub peak_tflops: f64,
    /// Folder of tiny f32 model folders (`extract init-models --size tiny`): compare the device
    /// against the CPU on them. Without it no parity table is printed.
    #[arg(long)]
    pub parity_models: Option<PathBuf>,
    /// Skip the preprocessing table.
    #[arg(long)]
    pub no_prep: bool,
}

/// Waits for the device's queued work (CUDA kernels run asynchronously).
fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Mean seconds of `f` over `repeat` calls after one warm-up call.
fn time<F: FnMut() -> Result<()>>(device: Device, repeat: usize, mut f: F) -> Result<f64> {
    f()?;
    sync(device);
    let t0 = Instant::now();
    for _ in 0..repeat.max(1) {
        f()?;
    }
    sync(device);
    Ok(t0.elapsed().as_secs_f64() / repeat.max(1) as f64)
}

/// One weld's input shape for `model` with `batch` welds.
fn weld_input(model: &Backbone, batch: i64) -> Result<Vec<i64>> {
    Ok(match model {
        Backbone::Dinov3(m) => {
            let s = m.config().image_size;
            vec![5 * batch, 3, s, s]
        }
        Backbone::VJepa2(m) => {
            let c = m.config();
            vec![
                batch,
                32.min(c.frames_per_clip),
                3,
                c.crop_size,
                c.crop_size,
            ]
        }
        Backbone::Ast(m) => {
            let c = m.config();
            vec![4 * batch, c.max_length, c.num_mel_bins]
        }
        Backbone::Clip(_) => bail!("CLIP is not timed here"),
    })
}

/// A libtorch error (an out-of-memory, say) panics inside tch: caught as an error of the row.
fn catching<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            bail!("{}", msg.lines().next().unwrap_or("panic"))
        }
    }
}

const FAMILIES: [&str; 3] = ["dinov3", "vjepa2", "ast"];

fn forwards(a: &GpuBenchArgs, device: Device, kind: Kind) -> Result<()> {
    println!(
        "## Backbone forwards ({}, {device:?}; a batch of B welds = 5B DINOv3 views, B 32-frame \
         V-JEPA 2 clips, 4B AST windows)\n",
        a.dtype
    );
    println!("| backbone | parameters | welds | input | ms / forward | welds/s | TFLOP/s | MFU |");
    println!("|---|---:|---:|---|---:|---:|---:|---:|");
    for fam in FAMILIES {
        let dir = a.models.join(fam);
        let t0 = Instant::now();
        let model = Backbone::load(&dir, device, kind)
            .with_context(|| format!("loading {}", dir.display()))?;
        eprintln!(
            "[gpu-bench] {fam}: loaded in {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        for &b in &a.batches {
            let shape = weld_input(&model, b)?;
            let row = catching(|| {
                let x = Tensor::randn(shape.as_slice(), (kind, device));
                let s = time(device, a.repeat, || {
                    model.forward_last(&x).map(|_| ()).map_err(Into::into)
                })?;
                Ok(s)
            });
            let shape_txt = format!("{shape:?}");
            match row {
                Ok(s) => {
                    let flops = model.forward_flops(&shape).unwrap_or(0.0);
                    let tflops = flops / s / 1e12;
                    println!(
                        "| {fam} | {:.1}M | {b} | {shape_txt} | {:.2} | {:.1} | {} | {:.2}% |",
                        model.num_parameters() as f64 / 1e6,
                        s * 1e3,
                        b as f64 / s,
                        if tflops < 1.0 {
                            format!("{tflops:.4}")
                        } else {
                            format!("{tflops:.1}")
                        },
                        100.0 * tflops / a.peak_tflops
                    );
                }
                Err(e) => println!(
                    "| {fam} | {:.1}M | {b} | {shape_txt} | failed: {e} | | | |",
                    model.num_parameters() as f64 / 1e6
                ),
            }
        }
        drop(model);
    }
    println!(
        "\nTFLOP/s counts matmul FLOPs from each config (projections, MLP, both attention \
         products, patch embedding); MFU = TFLOP/s / {} TFLOP/s.\n",
        a.peak_tflops
    );
    Ok(())
}

/// The device-side preprocessing steps of one weld, as `extract run` calls them with its
/// default geometry (V-JEPA 2: short side 292, crop 256; DINOv3: 224 x 224).
struct PrepStep {
    /// `{name} {what}` in the timing table, `{name} preprocessing` in the parity table
    name: &'static str,
    what: &'static str,
    /// one weld's real-size u8 input (seeded noise: the kernels' cost does not depend on it)
    input: Tensor,
    output: &'static str,
    /// leading frames / views compared in the parity table (0: not compared)
    parity: i64,
    run: fn(&Tensor, &ImageNorm) -> weld_cache::Result<Tensor>,
}

/// The three steps on one weld's real-size media: 32 grey 640x480 frames, 5 BGR 1920x1080
/// images, 16 grey frames.
fn prep_steps() -> [PrepStep; 3] {
    tch::manual_seed(0);
    let u8s = |shape: &[i64]| Tensor::randint(256, shape, (Kind::Uint8, Device::Cpu));
    [
        PrepStep {
            name: "V-JEPA 2",
            what: "clip",
            input: u8s(&[32, 480, 640, 1]),
            output: "[32, 3, 256, 256]",
            parity: 4,
            run: |x, n| vjepa2_pixels_u8(x, 292, 256, n),
        },
        PrepStep {
            name: "DINOv3",
            what: "views",
            input: u8s(&[5, 1080, 1920, 3]),
            output: "[5, 3, 224, 224]",
            parity: 2,
            run: |x, n| dinov3_pixels_bgr_u8(x, 224, 224, n),
        },
        PrepStep {
            name: "frame_dino",
            what: "frames",
            input: u8s(&[16, 480, 640, 1]),
            output: "[16, 3, 224, 224]",
            parity: 0,
            run: |x, n| dinov3_pixels_frames_u8(x, 224, 224, n),
        },
    ]
}

fn prep(a: &GpuBenchArgs, device: Device) -> Result<()> {
    let norm = ImageNorm::default();
    println!(
        "## Device-side preprocessing of one weld's real-size media ({device:?}, uint8 upload \
         included)\n"
    );
    println!("| step | input (u8) | output | ms / weld | welds/s |");
    println!("|---|---|---|---:|---:|");
    let mut total = 0.0;
    for step in prep_steps() {
        let s = time(device, a.repeat, || {
            let _ = (step.run)(&step.input.to_device(device), &norm)?;
            Ok(())
        })?;
        total += s;
        println!(
            "| {} {} | {:?} | {} | {:.2} | {:.0} |",
            step.name,
            step.what,
            step.input.size(),
            step.output,
            s * 1e3,
            1.0 / s
        );
    }
    println!(
        "| **sum** | | | **{:.2}** | **{:.0}** |\n",
        total * 1e3,
        1.0 / total
    );
    Ok(())
}

/// max |x - y| / max |y| (0 when both are zero).
fn rel_err(x: &Tensor, y: &Tensor) -> f64 {
    let x = x.to_device(Device::Cpu).to_kind(Kind::Double);
    let y = y.to_device(Device::Cpu).to_kind(Kind::Double);
    let num = (&x - &y).abs().max().double_value(&[]);
    let den = y.abs().max().double_value(&[]);
    if den == 0.0 {
        num
    } else {
        num / den
    }
}

fn parity(dir: &std::path::Path, device: Device) -> Result<()> {
    println!("## {device:?} against the CPU (tiny f32 models, same inputs)\n");
    println!("| what | input | max rel. error |");
    println!("|---|---|---:|");
    for fam in FAMILIES {
        let d = dir.join(fam);
        let cpu = Backbone::load(&d, Device::Cpu, Kind::Float)
            .with_context(|| format!("loading {}", d.display()))?;
        let dev = Backbone::load(&d, device, Kind::Float)
            .with_context(|| format!("loading {} on {device:?}", d.display()))?;
        let shape = weld_input(&cpu, 2)?;
        tch::manual_seed(1);
        let x = Tensor::randn(shape.as_slice(), (Kind::Float, Device::Cpu));
        let want = cpu.forward_last(&x)?;
        let got = dev.forward_last(&x.to_device(device))?;
        println!(
            "| {fam} last_hidden_state | {shape:?} | {:.2e} |",
            rel_err(&got, &want)
        );
    }
    let norm = ImageNorm::default();
    for step in prep_steps().into_iter().filter(|s| s.parity > 0) {
        let x = step.input.narrow(0, 0, step.parity);
        let want = (step.run)(&x, &norm)?;
        let got = (step.run)(&x.to_device(device), &norm)?;
        println!(
            "| {} preprocessing | {:?} u8 | {:.2e} |",
            step.name,
            x.size(),
            rel_err(&got, &want)
        );
    }
    if device == Device::Cpu {
        println!("\n(device = cpu: a dry run; the errors are trivially 0)");
    }
    println!();
    Ok(())
}

pub fn run(a: &GpuBenchArgs) -> Result<()> {
    let device = weld_cache::device::parse_device(&a.device)
        .with_context(|| format!("--device {}", a.device))?;
    let kind = backbones::parse_kind(&a.dtype).with_context(|| format!("--dtype {}", a.dtype))?;
    if a.batches.iter().any(|&b| b < 1) {
        bail!("--batches: every batch size must be >= 1");
    }
    forwards(a, device, kind)?;
    if !a.no_prep {
        prep(a, device)?;
    }
    if let Some(dir) = &a.parity_models {
        parity(dir, device)?;
    }
    Ok(())
}

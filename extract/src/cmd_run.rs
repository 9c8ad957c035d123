//! `extract run` and `extract verify`.
use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::sync::Mutex;
use weld_cache::data::video::VideoReader;
use weld_cache::pipeline::config::PreprocessAt;
use weld_cache::pipeline::like::GivenModels;
use weld_cache::pipeline::{
    run_extract, ExtractConfig, Progress, RunOptions, Shard, StageKind, StageSummary,
};
use weld_cache::store::StoreDtype;

#[derive(Args)]
pub struct RunArgs {
    /// TOML configuration (every knob; the flags below override it).
    #[arg(long, default_value = "configs/extract.toml")]
    config: PathBuf,
    /// Dataset root: samples live in <root>/<SUBDIRS>/. Without --manifest, DATA_ROOT/manifest.csv
    /// is read when present; otherwise the sample folders under it are discovered by their files
    /// (<name>.avi/.flac/.wav or images/) and stored UNLABELLED, for scoring fresh recordings.
    #[arg(long)]
    data_root: Option<PathBuf>,
    /// manifest.csv of the dataset (CATEGORY, ..., SUBDIRS, SPLIT). Without CATEGORY and SPLIT
    /// columns (only SUBDIRS required) its samples are stored UNLABELLED.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Extract exactly as this (training) store was: copies its stages, DINOv3 layers, every
    /// preprocessing parameter, compute and storage dtype and model folders (a --vjepa/--ast/
    /// --dinov3/--clip flag names another folder, whose config and weight hashes must equal the
    /// recorded ones). The data, --out, --device, batch and threads stay yours.
    #[arg(long, value_name = "TRAIN_STORE")]
    like: Option<PathBuf>,
    /// Output Zarr v3 store (created, or resumed when it exists).
    #[arg(long)]
    out: Option<PathBuf>,
    /// V-JEPA 2 model folder (Hugging Face layout).
    #[arg(long)]
    vjepa: Option<PathBuf>,
    /// AST model folder.
    #[arg(long)]
    ast: Option<PathBuf>,
    /// DINOv3 model folder.
    #[arg(long)]
    dinov3: Option<PathBuf>,
    /// CLIP model folder (text tower + tokenizer.json).
    #[arg(long)]
    clip: Option<PathBuf>,
    /// cpu, cuda or cuda:N.
    #[arg(long)]
    device: Option<String>,
    /// Compute dtype of the backbones: f32, bf16 or f16.
    #[arg(long)]
    dtype: Option<String>,
    /// Storage dtype of the features: f16 (default, readable by Python zarr), bf16 or f32.
    #[arg(long)]
    store_dtype: Option<StoreDtype>,
    /// DINOv3 hidden-state indices whose tokens are stored (0 = embeddings; seed "layer 21" = 20).
    #[arg(long, value_delimiter = ',')]
    dino_layers: Option<Vec<usize>>,
    /// Frames sampled uniformly from each video.
    #[arg(long)]
    video_frames: Option<usize>,
    /// Frames of the video/frame_dino stage, sampled uniformly over the clip (frame_dino.frames).
    #[arg(long)]
    frame_dino_frames: Option<usize>,
    /// DINOv3 hidden-state index of the video/frame_dino stage (frame_dino.layer; seed "Layer
    /// 12" = 11).
    #[arg(long)]
    frame_dino_layer: Option<usize>,
    /// Spatial average pooling factor of the V-JEPA 2 token grid (1 = keep all tokens).
    #[arg(long)]
    video_pool: Option<usize>,
    /// Samples per fixed batch group.
    #[arg(long)]
    batch_size: Option<usize>,
    /// CPU decode/preprocess threads.
    #[arg(long)]
    workers: Option<usize>,
    /// libtorch intra-op threads (0 = available cores / (workers + 1)).
    #[arg(long)]
    threads: Option<usize>,
    /// Where images and frames are resized/cropped/normalised: device (from uint8 uploads, the
    /// default) or cpu (in the decode workers).
    #[arg(long)]
    preprocess: Option<PreprocessAt>,
    /// Video frame reader: auto (MJPEG AVIs frame by frame, others through opencv), opencv,
    /// mjpeg.
    #[arg(long)]
    video_reader: Option<VideoReader>,
    /// Decode large JPEGs at reduced size (libjpeg DCT scaling; not exact, see README).
    #[arg(long)]
    jpeg_reduce: bool,
    /// This process fills batch groups g with g % n == i (run n processes for n GPUs/nodes).
    #[arg(long, default_value = "0/1")]
    shard: Shard,
    /// Only these stages (comma-separated): video, audio, image, sensor, text, frame_dino
    /// (video/frame_dino: DINOv3 on frame_dino.frames video frames), spectrogram
    /// (audio/spectrogram: log-mel of the whole clip). Adds them to an existing store without
    /// touching the other arrays.
    #[arg(long, value_delimiter = ',')]
    only: Option<Vec<StageKind>>,
    /// Stop at the first faulty sample with a non-zero exit (default: report it and go on).
    #[arg(long)]
    strict: bool,
    /// Resume an existing store, skipping done samples (always on; kept for explicitness).
    #[arg(long)]
    resume: bool,
    /// Also log this invocation's per-stage throughput (samples/s, stage seconds) as TensorBoard
    /// scalars in DIR (one step per invocation; a shard of n>1 writes DIR/shard-i-of-n).
    #[arg(long, value_name = "DIR")]
    tensorboard: Option<PathBuf>,
}

fn apply(args: &RunArgs) -> Result<ExtractConfig> {
    let mut c = ExtractConfig::from_file(&args.config)?;
    macro_rules! set {
        ($field:expr, $v:expr) => {
            if let Some(v) = $v.clone() {
                $field = v;
            }
        };
    }
    set!(c.data.root, args.data_root);
    match (&args.manifest, &args.data_root) {
        (Some(m), _) => c.data.manifest = Some(m.clone()),
        (None, Some(root)) => {
            let m = root.join("manifest.csv");
            c.data.manifest = m.is_file().then_some(m);
        }
        (None, None) => {}
    }
    set!(c.store.path, args.out);
    set!(c.models.vjepa, args.vjepa);
    set!(c.models.ast, args.ast);
    set!(c.models.dinov3, args.dinov3);
    set!(c.models.clip, args.clip);
    set!(c.run.device, args.device);
    set!(c.run.dtype, args.dtype);
    set!(c.store.dtype, args.store_dtype);
    set!(c.image.layers, args.dino_layers);
    set!(c.video.frames, args.video_frames);
    set!(c.video.pool, args.video_pool);
    set!(c.frame_dino.frames, args.frame_dino_frames);
    set!(c.frame_dino.layer, args.frame_dino_layer);
    set!(c.run.batch_size, args.batch_size);
    set!(c.run.workers, args.workers);
    set!(c.run.threads, args.threads);
    set!(c.run.only, args.only);
    set!(c.run.preprocess, args.preprocess);
    set!(c.video.reader, args.video_reader);
    c.image.jpeg_reduce |= args.jpeg_reduce;
    c.validate()?;
    Ok(c)
}

/// `--like`: refuses flags that would contradict the copied choices, then copies them.
fn apply_like(c: &mut ExtractConfig, args: &RunArgs, like: &std::path::Path) -> Result<()> {
    let clash: Vec<&str> = [
        ("--dtype", args.dtype.is_some()),
        ("--store-dtype", args.store_dtype.is_some()),
        ("--dino-layers", args.dino_layers.is_some()),
        ("--video-frames", args.video_frames.is_some()),
        ("--frame-dino-frames", args.frame_dino_frames.is_some()),
        ("--frame-dino-layer", args.frame_dino_layer.is_some()),
        ("--video-pool", args.video_pool.is_some()),
        ("--preprocess", args.preprocess.is_some()),
        ("--video-reader", args.video_reader.is_some()),
        ("--jpeg-reduce", args.jpeg_reduce),
    ]
    .into_iter()
    .filter_map(|(f, set)| set.then_some(f))
    .collect();
    if !clash.is_empty() {
        anyhow::bail!(
            "--like {} copies every feature-shaping choice from that store; drop {}",
            like.display(),
            clash.join(", ")
        );
    }
    let device = weld_cache::device::parse_device(&c.run.device)?;
    let given = GivenModels {
        vjepa: args.vjepa.is_some(),
        ast: args.ast.is_some(),
        dinov3: args.dinov3.is_some(),
        clip: args.clip.is_some(),
    };
    for line in weld_cache::pipeline::like::apply_like(c, like, args.only.is_some(), given, device)?
    {
        eprintln!("like: {line}");
    }
    Ok(())
}

/// One indicatif bar per stage; warnings printed above it.
struct Bars {
    bar: Mutex<Option<ProgressBar>>,
    warnings: Mutex<usize>,
}

impl Progress for Bars {
    fn start(&self, stage: &str, total: u64) {
        let pb = ProgressBar::new(total);
        pb.set_style(
            ProgressStyle::with_template(
                "{prefix:>7} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}",
            )
            .unwrap()
            .progress_chars("=> "),
        );
        pb.set_prefix(stage.to_string());
        *self.bar.lock().unwrap() = Some(pb);
    }
    fn inc(&self, n: u64) {
        if let Some(pb) = &*self.bar.lock().unwrap() {
            pb.inc(n);
        }
    }
    fn finish(&self, stage: &str, s: &StageSummary) {
        if let Some(pb) = self.bar.lock().unwrap().take() {
            pb.finish_and_clear();
        }
        let per = |x: f64| 1e3 * x / s.prepared.max(1) as f64;
        eprintln!(
            "{stage:>7}: {} written, {} already done, {} faults, {:.2} s \
             (decode {:.2} s over workers, device {:.2} s, waiting {:.2} s, writing {:.2} s); \
             CPU per sample: decode+preprocess {:.1} ms in the workers, device-side \
             preprocessing {:.1} ms, whole process {:.1} ms",
            s.written,
            s.already_done,
            s.faults,
            s.seconds,
            s.prepare_seconds,
            s.compute_seconds,
            s.wait_seconds,
            s.write_seconds,
            per(s.prepare_cpu_seconds),
            per(s.device_prep_seconds),
            per(s.process_cpu_seconds)
        );
    }
    fn warn(&self, msg: &str) {
        *self.warnings.lock().unwrap() += 1;
        match &*self.bar.lock().unwrap() {
            Some(pb) => pb.println(format!("warning: {msg}")),
            None => eprintln!("warning: {msg}"),
        }
    }
}

pub fn run(args: RunArgs) -> Result<()> {
    let mut cfg = apply(&args).with_context(|| format!("reading {}", args.config.display()))?;
    if let Some(like) = &args.like {
        apply_like(&mut cfg, &args, like)
            .with_context(|| format!("extracting like the store {}", like.display()))?;
    }
    eprintln!(
        "extract: {} -> {} on {} ({}, {} decode workers, {} intra-op threads), store {:?}, shard {}/{}",
        cfg.data.describe(),
        cfg.store.path.display(),
        cfg.run.device,
        cfg.run.dtype,
        cfg.run.workers,
        cfg.run.intra_op_threads(),
        cfg.store.dtype,
        args.shard.index,
        args.shard.count
    );
    let bars = Bars {
        bar: Mutex::new(None),
        warnings: Mutex::new(0),
    };
    let opts = RunOptions {
        shard: args.shard,
        strict: args.strict,
    };
    let report = run_extract(&cfg, &opts, &bars)
        .with_context(|| format!("extracting into {}", cfg.store.path.display()))?;
    let n = report.faults.len();
    eprintln!(
        "done in {:.1} s: {} samples in this shard, {} fault(s); report: {}",
        report.seconds,
        report.samples,
        n,
        cfg.store.path.join(args.shard.report_name()).display()
    );
    if n > 0 {
        eprintln!("warning: {n} sample modality(ies) could not be extracted (see the report); rerun to retry them");
    }
    if let Some(dir) = &args.tensorboard {
        log_throughput(dir, &args.shard, &report)?;
    }
    Ok(())
}

#[derive(Args)]
pub struct VerifyArgs {
    /// The store to check.
    #[arg(long)]
    store: PathBuf,
    /// Also print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Fail (exit 1) when any sample is faulted (its input was broken during extraction);
    /// by default faulted samples are listed and the store counts as sound.
    #[arg(long)]
    require_complete: bool,
}

/// Problems of the store's sample table, read by the parser the heads use
/// ([`weld_cache::schema::sample_table`]: every row parses, one row per sample, keys unique, a
/// class code always carries one name), plus: each class code names its class in the dataset's
/// class table, and TRAIN holds good welds only.
fn sample_table_problems(reader: &weld_cache::store::StoreReader) -> Vec<String> {
    use weld_cache::data::manifest::CLASS_NAMES;
    use weld_cache::schema::Split;
    let rows = match weld_cache::schema::sample_table(reader) {
        Ok(rows) => rows,
        Err(e) => {
            return vec![format!(
                "{e} (the heads refuse it; extract the store again)"
            )]
        }
    };
    let mut problems = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let at = format!("sample {i} (`{}`)", r.key);
        let (Some(code), Some(name)) = (r.class_code, r.class_name.as_deref()) else {
            continue; // unlabelled (checked by the parser)
        };
        match CLASS_NAMES.get(usize::from(code)) {
            None => problems.push(format!("{at}: class code {code} is unknown (0..=11)")),
            Some(&known) if known != name => problems.push(format!(
                "{at}: class code {code} is `{known}`, but the table names the class `{name}`"
            )),
            Some(_) => {}
        }
        if r.split == Split::Train && code != 0 {
            problems.push(format!(
                "{at}: TRAIN sample of class {code} `{name}` (TRAIN must hold good welds only)"
            ));
        }
    }
    problems
}

pub fn verify(args: VerifyArgs) -> Result<()> {
    let report = weld_cache::store::verify(&args.store)
        .with_context(|| format!("verifying {}", args.store.display()))?;
    print!("{report}");
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    let reader = weld_cache::store::StoreReader::open(&args.store)
        .with_context(|| format!("opening {}", args.store.display()))?;
    let names: Vec<String> = reader.specs().into_iter().map(|s| s.name).collect();
    let prov = weld_cache::pipeline::provenance::check_store_provenance(&reader, &names);
    for p in &prov {
        println!("provenance problem: {p}");
    }
    if prov.is_empty() {
        println!("provenance: recorded for every stage (weights SHA-256, config, preprocessing)");
    }
    let table = sample_table_problems(&reader);
    for p in &table {
        println!("sample table problem: {p}");
    }
    if table.is_empty() {
        println!(
            "sample table: {} rows, readable by the heads",
            reader.n_samples()
        );
    }
    // The verdict comes last and counts every check above.
    let (ok, verdict) = report.verdict(prov.len() + table.len(), args.require_complete);
    println!("verdict: {verdict}");
    if !ok {
        anyhow::bail!("{}: {verdict}", args.store.display());
    }
    Ok(())
}

/// Appends the run's per-stage throughput to the TensorBoard run in `dir` (`--tensorboard`):
/// `extract/<stage>/{samples_per_s, seconds, prepare_seconds, compute_seconds, wait_seconds,
/// write_seconds, written, already_done, faults}` and `extract/total/{seconds, samples,
/// faults}`, at the step after the last invocation's. `samples_per_s` (written / stage
/// seconds) is left out for a stage that wrote nothing.
fn log_throughput(
    dir: &std::path::Path,
    shard: &Shard,
    report: &weld_cache::pipeline::ExtractReport,
) -> Result<()> {
    let dir = match shard.count {
        1 => dir.to_path_buf(),
        n => dir.join(format!("shard-{}-of-{n}", shard.index)),
    };
    let mut v = vec![
        ("extract/total/seconds".to_string(), report.seconds),
        ("extract/total/samples".into(), report.samples as f64),
        ("extract/total/faults".into(), report.faults.len() as f64),
    ];
    for s in &report.stages {
        let p = format!("extract/{}", s.stage);
        if s.written > 0 && s.seconds > 0.0 {
            v.push((format!("{p}/samples_per_s"), s.written as f64 / s.seconds));
        }
        for (k, x) in [
            ("seconds", s.seconds),
            ("prepare_seconds", s.prepare_seconds),
            ("compute_seconds", s.compute_seconds),
            ("wait_seconds", s.wait_seconds),
            ("write_seconds", s.write_seconds),
            ("written", s.written as f64),
            ("already_done", s.already_done as f64),
            ("faults", s.faults as f64),
        ] {
            v.push((format!("{p}/{k}"), x));
        }
    }
    let step = weld_cache::tracking::tensorboard::append_scalars(&dir, &v)
        .with_context(|| format!("writing TensorBoard events to {}", dir.display()))?;
    eprintln!(
        "throughput logged to TensorBoard: {} (step {step})",
        dir.display()
    );
    Ok(())
}

//! `train-head sweep`: expand a grid into trials x seeds, check every trial against the store
//! before anything trains, run each as an ordinary `train-head train` process (`--jobs` at
//! once, spread over `--devices`; resumable), and write the leaderboard. Cluster use: `--plan`,
//! `--trial I` (one Slurm array task), `--report`.
use anyhow::{bail, Context, Result};
use clap::Args;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Instant;
use weld_cache::heads::registry;
use weld_cache::runs::leaderboard;
use weld_cache::runs::sweep::{check_overrides, expand, run_state, Plan, RunSpec, RunState};
use weld_cache::train::{load_config, Setup, Task};

#[derive(Args)]
pub struct SweepArgs {
    /// Feature store every trial trains on
    #[arg(long)]
    store: PathBuf,
    /// Grid TOML (`[grid]` axes and/or `[[trial]]` entries; see configs/sweeps/)
    #[arg(long)]
    grid: PathBuf,
    /// Sweep folder: plan.json, <trial>/seed-<k>/ runs, leaderboard.{csv,md,png}
    #[arg(long)]
    out: PathBuf,
    /// Base config (default: the grid file's `config`)
    #[arg(long)]
    config: Option<PathBuf>,
    /// Seeds per trial (default: the grid file's `seeds`, else 1); seed k trains with
    /// train.seed = base seed + k
    #[arg(long)]
    seeds: Option<usize>,
    /// Trial processes at once (torch's RNG is process-global: one process per run)
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Devices the jobs are spread over, round robin: `cpu` or `cuda:0,cuda:1`
    #[arg(long, value_delimiter = ',', default_value = "cpu")]
    devices: Vec<String>,
    /// Override a key of every trial (applied before the trial's own overrides; repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Load each run's splits into device memory once
    #[arg(long)]
    resident: bool,
    /// Train and evaluate every run on the splits of this `key,split` CSV (`train-head
    /// resplit`) instead of the store's
    #[arg(long, value_name = "CSV")]
    split_file: Option<PathBuf>,
    /// libtorch threads per run (default: the machine's cores divided by --jobs)
    #[arg(long)]
    threads: Option<usize>,
    /// Write plan.json, print the trials and exit (for a cluster array: one task per trial)
    #[arg(long, conflicts_with_all = ["trial", "report"])]
    plan: bool,
    /// Run only trial I (its every seed), e.g. `--trial $SLURM_ARRAY_TASK_ID`; no leaderboard
    #[arg(long, value_name = "I", conflicts_with = "report")]
    trial: Option<usize>,
    /// Only (re)write the leaderboard from the finished runs
    #[arg(long)]
    report: bool,
}

fn make_plan(a: &SweepArgs) -> Result<Plan> {
    let (grid_config, grid_seeds, trials) =
        expand(&a.grid).with_context(|| format!("reading grid {}", a.grid.display()))?;
    let config = a.config.clone().or(grid_config).with_context(|| {
        format!(
            "{}: no base config: give `config = \"configs/...toml\"` in the grid or --config",
            a.grid.display()
        )
    })?;
    let base = load_config(&config, &a.sets)
        .with_context(|| format!("reading base config {}", config.display()))?;
    let base_seed = base
        .get("train")
        .and_then(|t| t.get("seed"))
        .and_then(|s| s.as_integer())
        .with_context(|| format!("{}: no integer train.seed", config.display()))?;
    let seeds = a.seeds.or(grid_seeds).unwrap_or(1);
    if seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    Ok(Plan {
        store: a.store.clone(),
        config,
        base_sets: a.sets.clone(),
        seeds,
        base_seed: base_seed as u64,
        trials,
        split_file: a
            .split_file
            .as_deref()
            .map(crate::cmd_train::absolute)
            .transpose()?,
    })
}

/// Builds every trial's head against the store (CPU, no training): a missing array or layer,
/// a dims mismatch or a bad override fails here, before any run starts.
fn preflight(plan: &Plan, sweep: &Path) -> Result<()> {
    check_overrides(plan)?;
    for t in &plan.trials {
        let spec = plan.run(sweep, t, 0);
        let doc = plan.resolve(&spec)?;
        let setup = Setup {
            doc: &doc,
            store: &plan.store,
            device: tch::Device::Cpu,
            resident: false,
            verbose: false,
        };
        registry::run(&setup, Task::Check)
            .with_context(|| format!("trial {} does not fit the store", t.name))?;
    }
    Ok(())
}

fn run_one(
    spec: &RunSpec,
    plan: &Plan,
    device: &str,
    threads: usize,
    resident: bool,
) -> Result<()> {
    let state = run_state(&spec.dir);
    let log_path = spec.dir.with_extension("log");
    std::fs::create_dir_all(spec.dir.parent().expect("trial folder"))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("train")
        .arg("--store")
        .arg(&plan.store)
        .arg("--config")
        .arg(&plan.config)
        .arg("--out")
        .arg(&spec.dir)
        .args(["--device", device, "--threads", &threads.to_string()]);
    for s in &spec.sets {
        cmd.arg("--set").arg(s);
    }
    if let Some(f) = &plan.split_file {
        cmd.arg("--split-file").arg(f);
    }
    if resident {
        cmd.arg("--resident");
    }
    if state == RunState::Started {
        cmd.arg("--resume");
    }
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    die_with_parent(&mut cmd);
    let status = cmd
        .status()
        .with_context(|| format!("starting a run for {}", spec.dir.display()))?;
    if !status.success() {
        bail!(
            "{} failed ({status}); see {}",
            spec.dir.display(),
            log_path.display()
        );
    }
    Ok(())
}

/// A killed sweep takes its runs with it (they resume on the next call).
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

fn summary(dir: &Path) -> String {
    let m: Option<serde_json::Value> = std::fs::read_to_string(dir.join("metrics.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    match m {
        Some(m) => format!(
            "VAL {:.4} TEST {:.4}",
            m["val"]["auroc"].as_f64().unwrap_or(f64::NAN),
            m["test"]["auroc"].as_f64().unwrap_or(f64::NAN)
        ),
        None => "no metrics".into(),
    }
}

pub fn run(a: SweepArgs) -> Result<()> {
    if a.report {
        let plan = Plan::read(&a.out)?;
        let rows = leaderboard::collect(&a.out, &plan)?;
        print!("{}", leaderboard::write(&a.out, &rows)?);
        println!(
            "leaderboard written to {}",
            a.out.join("leaderboard.md").display()
        );
        return Ok(());
    }
    let plan = make_plan(&a)?;
    preflight(&plan, &a.out)?;
    plan.write_or_check(&a.out)?;
    let all = plan.runs(&a.out);
    if a.plan {
        for t in &plan.trials {
            println!(
                "{}\t{}\t{}",
                t.index,
                t.name,
                t.overrides
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        println!(
            "{} trials x {} seeds = {} runs; plan written to {} (run one trial with --trial I)",
            plan.trials.len(),
            plan.seeds,
            all.len(),
            a.out.join("plan.json").display()
        );
        return Ok(());
    }
    if let Some(i) = a.trial {
        if i >= plan.trials.len() {
            bail!(
                "--trial {i}: the plan has trials 0..{}",
                plan.trials.len() - 1
            );
        }
    }
    let selected: Vec<RunSpec> = all
        .into_iter()
        .filter(|r| a.trial.is_none_or(|i| r.trial == i))
        .collect();
    let todo: VecDeque<RunSpec> = selected
        .iter()
        .filter(|r| run_state(&r.dir) != RunState::Finished)
        .cloned()
        .collect();
    let skipped = selected.len() - todo.len();
    println!(
        "sweep {}: {} runs, {skipped} already finished (skipped), {} to run with {} job(s)",
        a.out.display(),
        selected.len(),
        todo.len(),
        a.jobs.max(1)
    );
    let jobs = a.jobs.max(1).min(todo.len().max(1));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = a.threads.unwrap_or((cores / jobs).max(1));
    let total = todo.len();
    let queue = Mutex::new(todo);
    let failed = Mutex::new(Vec::<String>::new());
    let done = Mutex::new(0usize);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for w in 0..jobs {
            let device = a.devices[w % a.devices.len()].clone();
            let (queue, failed, done, plan) = (&queue, &failed, &done, &plan);
            s.spawn(move || loop {
                let Some(spec) = queue.lock().expect("queue").pop_front() else {
                    break;
                };
                let name = format!("{}/seed-{}", plan.trials[spec.trial].name, spec.seed_index);
                let r = run_one(&spec, plan, &device, threads, a.resident);
                let mut d = done.lock().expect("count");
                *d += 1;
                match r {
                    Ok(()) => println!(
                        "[{}/{total}] {name} on {device}: {} ({:.0} s into the sweep)",
                        *d,
                        summary(&spec.dir),
                        t0.elapsed().as_secs_f64()
                    ),
                    Err(e) => {
                        println!("[{}/{total}] {name} FAILED: {e:#}", *d);
                        failed
                            .lock()
                            .expect("failed")
                            .push(format!("{name}: {e:#}"));
                    }
                }
            });
        }
    });
    let failed = failed.into_inner().expect("failed");
    if a.trial.is_none() {
        let rows = leaderboard::collect(&a.out, &plan)?;
        print!("{}", leaderboard::write(&a.out, &rows)?);
        println!(
            "leaderboard written to {}",
            a.out.join("leaderboard.md").display()
        );
    }
    if !failed.is_empty() {
        bail!("{} run(s) failed:\n  {}", failed.len(), failed.join("\n  "));
    }
    Ok(())
}

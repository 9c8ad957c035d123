//! Sweeps: a grid TOML expanded into trials (cartesian `[grid]` axes of config keys and/or an
//! explicit `[[trial]]` list; any key, `head` included) times seeds, each an ordinary run under
//! `SWEEP/<trial>/seed-<k>/`.
//!
//! Grid file:
//! ```toml
//! config = "configs/demo.toml"          # base config (relative to the working directory)
//! seeds = 2                             # default of --seeds
//! [grid]                                # cartesian product of every axis
//! "train.lr" = [1e-3, 3e-4]
//! [[trial]]                             # and/or explicit trials
//! name = "no-ema"
//! set = { "train.ema" = false }
//! ```
//! The plan (`SWEEP/plan.json`) fixes the trial list; a sweep folder refuses a different plan.
//! Seed `k` of a trial runs with `train.seed = <base seed> + k`.
use crate::train::config::{load_config, set_value};
use crate::train::history::write_atomic;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One trial: its folder name and its overrides (dotted key, TOML value as text), in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    pub index: usize,
    pub name: String,
    pub overrides: Vec<(String, String)>,
}

/// `SWEEP/plan.json`: everything that decides what the sweep's runs compute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub store: PathBuf,
    pub config: PathBuf,
    /// `--set` overrides applied to every trial, before the trial's own
    pub base_sets: Vec<String>,
    pub seeds: usize,
    pub base_seed: u64,
    pub trials: Vec<Trial>,
    /// `--split-file` of every run (absolute), if any
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_file: Option<PathBuf>,
}

/// One run of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    pub trial: usize,
    pub seed_index: usize,
    pub dir: PathBuf,
    /// every `--set` of the run: base, trial, then `train.seed`
    pub sets: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GridFile {
    config: Option<PathBuf>,
    seeds: Option<usize>,
    #[serde(default)]
    grid: toml::Table,
    #[serde(default)]
    trial: Vec<TrialSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrialSpec {
    name: Option<String>,
    set: toml::Table,
}

/// `lr=0.001` from `train.lr` and `0.001`: the last key segment and a compact value,
/// restricted to `[A-Za-z0-9._=+-]`.
fn slug(key: &str, value: &toml::Value) -> String {
    let last = key.rsplit('.').next().unwrap_or(key);
    let v = match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(a) => format!("{}items-{:08x}", a.len(), short_hash(&value.to_string())),
        toml::Value::Table(_) => format!("t{:08x}", short_hash(&value.to_string())),
        other => other.to_string(),
    };
    let s: String = format!("{last}={v}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._=+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    s.chars().take(48).collect()
}

fn short_hash(s: &str) -> u32 {
    // FNV-1a: stable across builds and platforms
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The trials of a grid file: the cartesian product of `[grid]` (axes in key order, the last
/// varying fastest), then the explicit `[[trial]]` list.
pub fn expand(grid_path: &Path) -> Result<(Option<PathBuf>, Option<usize>, Vec<Trial>)> {
    let text = std::fs::read_to_string(grid_path).map_err(|e| Error::io(grid_path, e))?;
    let g: GridFile =
        toml::from_str(&text).map_err(|e| Error::Msg(format!("{}: {e}", grid_path.display())))?;
    let mut combos: Vec<Vec<(String, toml::Value)>> = vec![];
    if !g.grid.is_empty() {
        combos.push(vec![]);
        for (key, values) in &g.grid {
            let values = values.as_array().ok_or_else(|| {
                Error::Msg(format!(
                    "{}: [grid] `{key}` must be an array of values",
                    grid_path.display()
                ))
            })?;
            if values.is_empty() {
                return Err(Error::Msg(format!(
                    "{}: [grid] `{key}` has no values",
                    grid_path.display()
                )));
            }
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    values.iter().map(move |v| {
                        let mut c = c.clone();
                        c.push((key.clone(), v.clone()));
                        c
                    })
                })
                .collect();
        }
    }
    let mut trials = vec![];
    for c in combos {
        let name = c
            .iter()
            .map(|(k, v)| slug(k, v))
            .collect::<Vec<_>>()
            .join(",");
        trials.push((name, c));
    }
    for t in g.trial {
        let c: Vec<(String, toml::Value)> = t.set.into_iter().collect();
        let name = t.name.unwrap_or_else(|| {
            c.iter()
                .map(|(k, v)| slug(k, v))
                .collect::<Vec<_>>()
                .join(",")
        });
        trials.push((name, c));
    }
    if trials.is_empty() {
        return Err(Error::Msg(format!(
            "{}: no trial: give [grid] axes and/or [[trial]] entries",
            grid_path.display()
        )));
    }
    let trials = trials
        .into_iter()
        .enumerate()
        .map(|(i, (name, c))| {
            let name = if name.is_empty() { "base".into() } else { name };
            let name: String = name.chars().take(80).collect();
            Trial {
                index: i,
                name: format!("t{i:02}-{name}"),
                overrides: c.into_iter().map(|(k, v)| (k, v.to_string())).collect(),
            }
        })
        .collect();
    Ok((g.config, g.seeds, trials))
}

impl Plan {
    /// The resolved config document of `spec` (base config + every override).
    pub fn resolve(&self, spec: &RunSpec) -> Result<toml::Value> {
        let mut doc = load_config(&self.config, &spec.sets)?;
        if let (Some(f), Some(t)) = (&self.split_file, doc.as_table_mut()) {
            t.insert(
                "split_file".into(),
                toml::Value::String(f.display().to_string()),
            );
        }
        Ok(doc)
    }

    /// Every run of the plan, trial-major.
    pub fn runs(&self, sweep: &Path) -> Vec<RunSpec> {
        let mut out = vec![];
        for t in &self.trials {
            for k in 0..self.seeds {
                out.push(self.run(sweep, t, k));
            }
        }
        out
    }

    /// Seed `k` of trial `t`.
    pub fn run(&self, sweep: &Path, t: &Trial, k: usize) -> RunSpec {
        let mut sets = self.base_sets.clone();
        sets.extend(t.overrides.iter().map(|(k, v)| format!("{k}={v}")));
        sets.push(format!("train.seed={}", self.base_seed + k as u64));
        RunSpec {
            trial: t.index,
            seed_index: k,
            dir: sweep.join(&t.name).join(format!("seed-{k}")),
            sets,
        }
    }

    /// Writes `SWEEP/plan.json`, or checks that an existing one is the same plan.
    pub fn write_or_check(&self, sweep: &Path) -> Result<()> {
        std::fs::create_dir_all(sweep).map_err(|e| Error::io(sweep, e))?;
        let path = sweep.join("plan.json");
        let bytes =
            serde_json::to_vec_pretty(self).map_err(|e| Error::Msg(format!("plan: {e}")))?;
        match std::fs::read(&path) {
            Ok(old) => {
                let old: Plan = serde_json::from_slice(&old)
                    .map_err(|e| Error::Msg(format!("{}: {e}", path.display())))?;
                if &old != self {
                    return Err(Error::Msg(format!(
                        "{} holds another plan (a different grid, store, config, --set or \
                         --seeds); choose another --out, or delete the folder to start over",
                        path.display()
                    )));
                }
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => write_atomic(&path, &bytes),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// Reads `SWEEP/plan.json`.
    pub fn read(sweep: &Path) -> Result<Plan> {
        let path = sweep.join("plan.json");
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Msg(format!("{}: {e}", path.display())))
    }
}

/// The state of one run folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// `metrics.json` exists: never rerun
    Finished,
    /// a checkpoint exists: resume it
    Started,
    Fresh,
}

pub fn run_state(dir: &Path) -> RunState {
    if dir.join("metrics.json").is_file() {
        RunState::Finished
    } else if dir.join("last.safetensors").is_file() || dir.join("best.safetensors").is_file() {
        RunState::Started
    } else {
        RunState::Fresh
    }
}

/// Checks that the base config accepts every trial's overrides (each key exists, each value has
/// the key's type), before anything runs.
pub fn check_overrides(plan: &Plan) -> Result<()> {
    let base = load_config(&plan.config, &plan.base_sets)?;
    for t in &plan.trials {
        let mut doc = base.clone();
        for (k, v) in &t.overrides {
            let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {v}"))
                .map_err(|e| Error::Msg(format!("trial {}: `{k}` = {v}: {e}", t.name)))?
                .remove("v")
                .expect("parsed key");
            set_value(&mut doc, k, value)
                .map_err(|e| Error::Msg(format!("trial {}: {e}", t.name)))?;
        }
    }
    Ok(())
}

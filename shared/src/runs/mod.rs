//! Run folders and what is built from many of them. A run is a folder: `config.toml`
//! (resolved), `history.csv` (gradient heads), checkpoints, `metrics.json`, `scores.csv`,
//! `run.json` ([`RunInfo`]) and `plots/`. [`sweep`] expands a grid into runs, [`leaderboard`]
//! ranks them and [`compare`] tabulates any set of runs.
pub mod compare;
pub mod leaderboard;
pub mod sweep;

use crate::train::history::write_atomic;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::{Path, PathBuf};

/// `run.json`: what a finished run was, beside its metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub head: String,
    /// `"gradient"` or `"fit-once"`
    pub learner: String,
    pub trainable_params: i64,
    /// training time summed over every invocation (resumes included), seconds
    pub train_seconds: f64,
    /// the training store (absolute path; `train-head score` builds the head against it)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<std::path::PathBuf>,
}

pub const RUN_INFO: &str = "run.json";

pub fn write_run_info(run: &Path, info: &RunInfo) -> Result<()> {
    let bytes =
        serde_json::to_vec_pretty(info).map_err(|e| Error::Msg(format!("run.json: {e}")))?;
    write_atomic(&run.join(RUN_INFO), &bytes)
}

pub fn read_run_info(run: &Path) -> Result<RunInfo> {
    let p = run.join(RUN_INFO);
    let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Msg(format!("{}: {e}", p.display())))
}

/// An exclusive lock on a run folder (`RUN/.lock`, an OS file lock released when the process
/// ends, however it ends): a second process training into the same folder is refused.
pub struct RunLock {
    _file: File,
    path: PathBuf,
}

impl RunLock {
    /// Creates the folder if needed and takes the lock, or fails naming the folder.
    pub fn acquire(run: &Path) -> Result<RunLock> {
        std::fs::create_dir_all(run).map_err(|e| Error::io(run, e))?;
        let path = run.join(".lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(RunLock { _file: file, path }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::Msg(format!(
                "{}: another train-head process is writing this run (its lock {} is held); \
                 wait for it to finish, or choose another --out",
                run.display(),
                path.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

//! Per-(array, sample) completion markers: `STORE/<array>/_markers/<i>.json`, holding the sample's
//! absolute maximum and chunk size. Written by tmp + rename after the chunk is synced, so a
//! marker's presence means the chunk is complete; a chunk without marker is not done.
//!
//! The markers live inside the array's folder, where zarr readers never look (they read only the
//! array's `zarr.json` and its `c/...` chunk keys): Python `zarr` lists the group without a
//! warning, and moving or deleting an array moves or deletes its markers with it.
//!
//! A sample whose input could not be extracted gets a fault marker `<i>.fault.json` (stage,
//! file, reason) instead: verify tells it from a sample still to do. Writing the sample later
//! removes the fault marker.
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fsutil::{fsync_all, read_json, to_json_bytes, write_atomic_via};
use super::StoreError;
use crate::{Error, Result};

/// Folder of an array's markers, inside the array's folder.
pub(crate) const MARKER_DIR: &str = "_markers";

/// Content of a marker file.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    /// Largest |x| of the stored (converted) values of the sample.
    pub abs_max: f32,
    /// Size of the chunk file in bytes.
    pub nbytes: u64,
}

pub(crate) fn marker_dir(root: &Path, array: &str) -> PathBuf {
    root.join(array).join(MARKER_DIR)
}

pub(crate) fn fault_path(root: &Path, array: &str, index: usize) -> PathBuf {
    marker_dir(root, array).join(format!("{index}.fault.json"))
}

/// Writes the fault marker of sample `index` atomically (fixed temporary name per sample).
pub(crate) fn write_fault(
    root: &Path,
    array: &str,
    index: usize,
    v: &serde_json::Value,
) -> Result<()> {
    let tmp = format!(".{index}.fault.json.tmp");
    write_atomic_via(&fault_path(root, array, index), &tmp, &to_json_bytes(v))
}

/// Removes the fault marker of a sample if present.
pub(crate) fn remove_fault(root: &Path, array: &str, index: usize) -> Result<()> {
    let path = fault_path(root, array, index);
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The fault markers of an array: `(sample index, content)`, ascending, from one listing.
/// Samples `>= n_samples` are ignored.
pub(crate) fn list_faults(
    root: &Path,
    array: &str,
    n_samples: usize,
) -> Result<Vec<(usize, serde_json::Value)>> {
    let dir = marker_dir(root, array);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(&dir, e))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".fault.json")) else {
            continue;
        };
        if let Ok(i) = stem.parse::<usize>() {
            if i < n_samples {
                out.push((i, read_json(&entry.path())?));
            }
        }
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out)
}

pub(crate) fn marker_path(root: &Path, array: &str, index: usize) -> PathBuf {
    marker_dir(root, array).join(format!("{index}.json"))
}

/// Writes the marker atomically (tmp + fsync + rename + fsync of the folder). The temporary name
/// is fixed per sample (`.<i>.json.tmp`: one writer per sample), so a killed writer's leftover is
/// reused and renamed away when the sample is marked on resume.
pub(crate) fn write_marker(root: &Path, array: &str, index: usize, m: &Marker) -> Result<()> {
    let v = serde_json::to_value(m).expect("a marker serialises");
    let tmp = format!(".{index}.json.tmp");
    write_atomic_via(&marker_path(root, array, index), &tmp, &to_json_bytes(&v))
}

/// [`write_marker`] for many samples at once, with the same guarantees and fewer sync rounds:
/// every temporary file is written, then all are fsync'ed concurrently, renamed into place, and
/// their folders fsync'ed concurrently.
pub(crate) fn write_markers(root: &Path, markers: &[(&str, usize, Marker)]) -> Result<()> {
    if markers.len() == 1 {
        let (array, index, m) = &markers[0];
        return write_marker(root, array, *index, m);
    }
    let mut tmps = Vec::with_capacity(markers.len());
    let mut dirs = Vec::new();
    let result = (|| -> Result<()> {
        for (array, index, m) in markers {
            let dir = marker_dir(root, array);
            if !dirs.contains(&dir) {
                fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                dirs.push(dir.clone());
            }
            let tmp = dir.join(format!(".{index}.json.tmp"));
            let v = serde_json::to_value(m).expect("a marker serialises");
            fs::write(&tmp, to_json_bytes(&v)).map_err(|e| Error::io(&tmp, e))?;
            tmps.push(tmp);
        }
        fsync_all(&tmps)?;
        for ((array, index, _), tmp) in markers.iter().zip(&tmps) {
            let path = marker_path(root, array, *index);
            fs::rename(tmp, &path).map_err(|e| Error::io(path, e))?;
        }
        Ok(())
    })();
    if result.is_err() {
        for t in &tmps {
            let _ = fs::remove_file(t);
        }
    }
    result?;
    fsync_all(&dirs)
}

/// Reads a marker; `Ok(None)` when absent.
pub(crate) fn read_marker(root: &Path, array: &str, index: usize) -> Result<Option<Marker>> {
    let path = marker_path(root, array, index);
    if !path.exists() {
        return Ok(None);
    }
    let v = read_json(&path)?;
    serde_json::from_value(v)
        .map(Some)
        .map_err(|source| StoreError::Json { path, source }.into())
}

/// Removes a marker if present (before a sample is rewritten).
pub(crate) fn remove_marker(root: &Path, array: &str, index: usize) -> Result<()> {
    let path = marker_path(root, array, index);
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The completion mask of an array from one listing of its marker folder.
pub(crate) fn completion_mask(root: &Path, array: &str, n_samples: usize) -> Result<Vec<bool>> {
    let dir = marker_dir(root, array);
    let mut mask = vec![false; n_samples];
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(mask),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(&dir, e))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
            continue;
        };
        if let Ok(i) = stem.parse::<usize>() {
            if i < n_samples {
                mask[i] = true;
            }
        }
    }
    Ok(mask)
}

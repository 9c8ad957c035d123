//! Small filesystem helpers of the store: atomic file writes (tmp + fsync + rename), directory
//! fsync, unique temporary names, JSON reading with file-naming errors.
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::StoreError;
use crate::{Error, Result};

/// A name unique across processes and threads: `.<stem>.tmp.<pid>.<counter>.<nanos>`.
pub(crate) fn unique_tmp_name(stem: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(".{stem}.tmp.{}.{n}.{nanos}", std::process::id())
}

/// fsync a directory so that entries created or renamed in it are durable. An empty path (the
/// parent of a bare relative name such as `st`) is the current directory.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let f = fs::File::open(dir).map_err(|e| Error::io(dir, e))?;
    f.sync_all().map_err(|e| Error::io(dir, e))
}

/// fsync a file (opened read-only: enough for `fsync` on Linux).
pub(crate) fn fsync_file(path: &Path) -> Result<()> {
    let f = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))
}

/// fsync every path (files or folders) from several threads at once. The file system folds
/// concurrent syncs into few journal commits, so syncing n small files this way costs about one
/// sync instead of n (measured: 48 chunk files 273 ms serially, 22-49 ms concurrently on ext4).
pub(crate) fn fsync_all(paths: &[PathBuf]) -> Result<()> {
    const THREADS: usize = 8;
    if paths.len() <= 1 {
        return paths.iter().try_for_each(|p| fsync_file(p));
    }
    let per = paths.len().div_ceil(THREADS);
    std::thread::scope(|s| {
        let handles: Vec<_> = paths
            .chunks(per)
            .map(|c| s.spawn(move || c.iter().try_for_each(|p| fsync_file(p))))
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .map_err(|_| Error::Msg("fsync thread panicked".into()))?
        })
    })
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, fsync, rename over
/// `path`, fsync of the folder. Readers see either the old file or the complete new one.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let stem = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    write_atomic_via(path, &unique_tmp_name(&stem), bytes)
}

/// [`write_atomic`] through the temporary file `tmp_name` (same folder). A fixed name per target
/// suits files only one writer ever writes (markers): a leftover of a killed writer is then
/// overwritten and renamed away by the rerun.
pub(crate) fn write_atomic_via(path: &Path, tmp_name: &str, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::Msg(format!("{} has no parent folder", path.display())))?;
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    fsync_dir(dir)
}

/// Whether a directory entry name is one of the store's temporary names (`.<stem>.tmp...`).
pub(crate) fn is_tmp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp")
}

/// Reads and parses a JSON file; errors name the file.
pub(crate) fn read_json(path: &Path) -> Result<serde_json::Value> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|source| {
        StoreError::Json {
            path: path.to_path_buf(),
            source,
        }
        .into()
    })
}

/// `serde_json::to_vec_pretty` for values that cannot fail to serialise.
pub(crate) fn to_json_bytes(v: &serde_json::Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(v).expect("a serde_json::Value always serialises");
    bytes.push(b'\n');
    bytes
}

/// Renames a fully prepared temporary directory to `dst`. Returns `Ok(false)` when `dst` already
/// exists (another writer won the race); the temporary directory is then removed.
pub(crate) fn rename_dir_if_absent(tmp: &Path, dst: &Path) -> Result<bool> {
    // `rename` replaces an *empty* destination directory: refuse one that exists at all.
    if dst.exists() {
        let _ = fs::remove_dir_all(tmp);
        return Ok(false);
    }
    match fs::rename(tmp, dst) {
        Ok(()) => {
            if let Some(parent) = dst.parent() {
                fsync_dir(parent)?;
            }
            Ok(true)
        }
        Err(_) if dst.exists() => {
            // ENOTEMPTY / EEXIST: a concurrent writer created it first.
            let _ = fs::remove_dir_all(tmp);
            Ok(false)
        }
        Err(e) => {
            let _ = fs::remove_dir_all(tmp);
            Err(Error::io(dst, e))
        }
    }
}

/// The chunk file of sample `index`: `<array_dir>/c<sep><index><sep>0<sep>0...` (one `0` per sample
/// dimension), as the zarr v3 `default` chunk key encoding names it.
pub(crate) fn chunk_path(array_dir: &Path, sep: char, index: usize, sample_ndim: usize) -> PathBuf {
    let mut key = format!("c{sep}{index}");
    for _ in 0..sample_ndim {
        key.push(sep);
        key.push('0');
    }
    array_dir.join(key)
}

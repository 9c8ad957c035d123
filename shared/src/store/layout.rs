//! Reading the zarr v3 metadata of the store without `zarrs`: the group attributes, the arrays of
//! the hierarchy, and the checks that an array has the mappable layout (regular grid of one sample
//! per chunk, a single little-endian `bytes` codec, no compression, no storage transformer).
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::fsutil::read_json;
use super::{validate_name, ArraySpec, StoreDtype, StoreError, FORMAT_VERSION, STORE_ATTR};
use crate::{Error, Result};

/// The group's `zarr.json`, split into the user's attributes and the store's own entry.
#[derive(Debug, Clone)]
pub(crate) struct GroupMeta {
    /// User attributes (the reserved `weld_cache_store` entry removed).
    pub attrs: Map<String, Value>,
    /// `Some` for a weld-cache store, `None` for a foreign zarr group.
    pub format_version: Option<u64>,
    pub n_samples: Option<usize>,
}

/// One array of the hierarchy with what the mapped reader needs.
#[derive(Debug, Clone)]
pub(crate) struct ArrayLayout {
    pub spec: ArraySpec,
    /// Folder of the array (holds its `zarr.json` and `c/`).
    pub dir: PathBuf,
    /// Chunk key separator (`/` by default).
    pub sep: char,
    /// Length of the first (sample) axis.
    pub n_rows: usize,
}

impl ArrayLayout {
    pub fn chunk_path(&self, index: usize) -> PathBuf {
        super::fsutil::chunk_path(&self.dir, self.sep, index, self.spec.sample_shape.len())
    }
}

fn not_store(path: &Path, reason: impl Into<String>) -> Error {
    StoreError::NotAStore {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
    .into()
}

fn unsupported(path: &Path, reason: impl Into<String>) -> Error {
    StoreError::Unsupported {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
    .into()
}

/// The node type of the folder `dir` (`"group"` / `"array"`), `None` if it has no `zarr.json`.
pub(crate) fn node_type(dir: &Path) -> Result<Option<String>> {
    let path = dir.join("zarr.json");
    if !path.is_file() {
        return Ok(None);
    }
    let v = read_json(&path)?;
    Ok(v.get("node_type")
        .and_then(Value::as_str)
        .map(str::to_string))
}

/// Reads the root group's `zarr.json`.
pub(crate) fn read_group(root: &Path) -> Result<GroupMeta> {
    let path = root.join("zarr.json");
    if !path.is_file() {
        return Err(not_store(root, "no zarr.json"));
    }
    let v = read_json(&path)?;
    if v.get("zarr_format").and_then(Value::as_u64) != Some(3) {
        return Err(not_store(&path, "zarr_format is not 3"));
    }
    if v.get("node_type").and_then(Value::as_str) != Some("group") {
        return Err(not_store(&path, "node_type is not group"));
    }
    let mut attrs = v
        .get("attributes")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let (format_version, n_samples) = match attrs.remove(STORE_ATTR) {
        None => (None, None),
        Some(own) => {
            let version = own.get("format_version").and_then(Value::as_u64);
            let n = own.get("n_samples").and_then(Value::as_u64);
            match (version, n) {
                (Some(v), Some(n)) if v == FORMAT_VERSION => (Some(v), Some(n as usize)),
                (Some(v), Some(_)) if v < FORMAT_VERSION => {
                    return Err(StoreError::OldFormat {
                        path: root.to_path_buf(),
                        found: v,
                        current: FORMAT_VERSION,
                    }
                    .into())
                }
                (Some(v), Some(_)) => {
                    return Err(not_store(
                        &path,
                        format!(
                            "format version {v} is newer than this build's {FORMAT_VERSION}: \
                             use a newer weld-cache"
                        ),
                    ))
                }
                _ => {
                    return Err(not_store(
                        &path,
                        format!("malformed {STORE_ATTR:?} attribute: {own}"),
                    ))
                }
            }
        }
    };
    Ok(GroupMeta {
        attrs,
        format_version,
        n_samples,
    })
}

/// Parses the array `name` of the store at `root` and checks that it has the mappable layout.
pub(crate) fn read_array(root: &Path, name: &str) -> Result<ArrayLayout> {
    let dir = root.join(name);
    let path = dir.join("zarr.json");
    let v = read_json(&path)?;
    let get = |k: &str| {
        v.get(k)
            .ok_or_else(|| unsupported(&path, format!("no {k:?}")))
    };
    if get("zarr_format")?.as_u64() != Some(3) || get("node_type")?.as_str() != Some("array") {
        return Err(unsupported(&path, "not a zarr v3 array"));
    }
    let dt = get("data_type")?;
    let dtype = dt
        .as_str()
        .and_then(StoreDtype::from_zarr_name)
        .ok_or_else(|| {
            unsupported(
                &path,
                format!("data_type {dt} (need float16/bfloat16/float32)"),
            )
        })?;
    let shape: Vec<usize> = get("shape")?
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_u64().map(|x| x as usize))
                .collect()
        })
        .unwrap_or_default();
    if shape.is_empty() {
        return Err(unsupported(&path, "array has no sample axis"));
    }
    let grid = get("chunk_grid")?;
    if grid.get("name").and_then(Value::as_str) != Some("regular") {
        return Err(unsupported(&path, format!("chunk grid {grid}")));
    }
    let chunk: Vec<usize> = grid
        .pointer("/configuration/chunk_shape")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_u64().map(|x| x as usize))
                .collect()
        })
        .unwrap_or_default();
    let mut expected = shape.clone();
    expected[0] = 1;
    if chunk != expected {
        return Err(unsupported(
            &path,
            format!("chunk shape {chunk:?}: need one sample per chunk {expected:?}"),
        ));
    }
    let sep = match v.get("chunk_key_encoding") {
        None => '/',
        Some(enc) => {
            if enc.get("name").and_then(Value::as_str) != Some("default") {
                return Err(unsupported(&path, format!("chunk key encoding {enc}")));
            }
            match enc
                .pointer("/configuration/separator")
                .and_then(Value::as_str)
            {
                None | Some("/") => '/',
                Some(".") => '.',
                Some(s) => return Err(unsupported(&path, format!("chunk key separator {s:?}"))),
            }
        }
    };
    let codecs = get("codecs")?.as_array().cloned().unwrap_or_default();
    let little_bytes = codecs.len() == 1
        && codecs[0].get("name").and_then(Value::as_str) == Some("bytes")
        && codecs[0]
            .pointer("/configuration/endian")
            .and_then(Value::as_str)
            == Some("little");
    if !little_bytes {
        return Err(unsupported(
            &path,
            format!(
                "codecs {}: need exactly one bytes codec with endian little (no compression)",
                Value::Array(codecs)
            ),
        ));
    }
    if let Some(t) = v.get("storage_transformers").and_then(Value::as_array) {
        if !t.is_empty() {
            return Err(unsupported(&path, "storage transformers"));
        }
    }
    let spec = ArraySpec {
        name: name.to_string(),
        sample_shape: shape[1..].to_vec(),
        dtype,
    };
    if spec.sample_shape.contains(&0) {
        return Err(unsupported(
            &path,
            format!("zero-sized sample shape {shape:?}"),
        ));
    }
    Ok(ArrayLayout {
        spec,
        dir,
        sep,
        n_rows: shape[0],
    })
}

/// The `dimension_names` of an array's metadata (`None` when absent or any is unnamed).
pub(crate) fn dimension_names(meta: &Value) -> Option<Vec<String>> {
    meta.get("dimension_names")?
        .as_array()?
        .iter()
        .map(|d| d.as_str().map(str::to_string))
        .collect()
}

/// Whether the array metadata `meta` is a per-sample feature array. Not: the store-level arrays
/// (their first dimension is not `sample`, e.g. `text/embed` `[feature]`) and the 1-D
/// coordinate arrays of the sample axis (`sample`, `class_code`, `split`: dimension `sample`,
/// not a float type). Arrays without dimension names (a foreign group) are feature arrays.
pub(crate) fn is_feature_array(meta: &Value) -> bool {
    match dimension_names(meta) {
        None => true,
        Some(d) if d.first().map(String::as_str) != Some("sample") => false,
        Some(d) => {
            let float = meta
                .get("data_type")
                .and_then(Value::as_str)
                .and_then(StoreDtype::from_zarr_name)
                .is_some();
            d.len() > 1 || float
        }
    }
}

/// Every array of the hierarchy under `root`, sorted by name. Folders that are not zarr nodes
/// (`_markers`, temporary folders, side files) and names the store would refuse are skipped.
pub(crate) fn list_arrays(root: &Path) -> Result<Vec<ArrayLayout>> {
    let mut out = Vec::new();
    walk(root, root, &mut out)?;
    out.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<ArrayLayout>) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let name = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if validate_name(&name).is_err() {
            continue;
        }
        match node_type(&path)?.as_deref() {
            Some("group") => walk(root, &path, out)?,
            Some("array") if is_feature_array(&read_json(&path.join("zarr.json"))?) => {
                out.push(read_array(root, &name)?)
            }
            _ => {}
        }
    }
    Ok(())
}

/// Temporary entries left by killed writers (`.<name>.tmp...` files or folders) in the store's
/// groups and the arrays' marker folders (`<array>/_markers`); array chunk folders are not walked
/// (chunks are written in place, never through temporary files).
pub(crate) fn list_leftovers(root: &Path) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if super::fsutil::is_tmp_name(&name) {
                out.push(path);
            } else if path.is_dir() {
                if node_type(&path)?.as_deref() != Some("array") {
                    walk(&path, out)?;
                } else if path.join(super::markers::MARKER_DIR).is_dir() {
                    walk(&path.join(super::markers::MARKER_DIR), out)?;
                }
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, &mut out)?;
    out.sort();
    Ok(out)
}

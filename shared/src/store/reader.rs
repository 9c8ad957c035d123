//! [`StoreReader`]: the read-only side used by training. Parses the zarr metadata once (no zarrs
//! on the hot path), maps single chunks with `memmap2` on demand (each map lives only as long as
//! the returned [`MappedChunk`], so a dataset never holds one mapping per chunk), and assembles
//! `[B, ...sample_shape]` f32 batches without per-sample allocation: on the CPU straight into the
//! output tensor, for a GPU through one reused staging buffer of raw chunks.
//!
//! A weld-cache store counts a sample as complete when its marker exists. A foreign zarr group
//! (written by Python `zarr` with the same layout, no `weld_cache_store` attribute) has no
//! markers: there a sample is complete when its chunk file exists with the exact size. A
//! missing chunk is an error, never the fill value.
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use half::{bf16, f16};
use memmap2::Mmap;
use rayon::prelude::*;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::convert::decode_into;
use super::layout::{list_arrays, read_group, ArrayLayout};
use super::markers;
use super::{ArraySpec, StoreDtype, StoreError};
use crate::{Error, Result};

/// Read-only handle on a store (or on a foreign zarr group with the same layout).
pub struct StoreReader {
    root: PathBuf,
    n_samples: usize,
    attrs: Map<String, Value>,
    format_version: Option<u64>,
    arrays: Vec<ArrayLayout>,
}

impl StoreReader {
    /// Opens the store at `path` and reads the metadata of every array.
    pub fn open(path: &Path) -> Result<Self> {
        let group = read_group(path)?;
        let arrays = list_arrays(path)?;
        let n_samples = match group.n_samples {
            Some(n) => n,
            None => arrays.first().map_or(0, |a| a.n_rows),
        };
        for a in &arrays {
            if a.n_rows != n_samples {
                return Err(StoreError::SpecMismatch {
                    path: path.to_path_buf(),
                    array: a.spec.name.clone(),
                    existing: format!("{} samples", a.n_rows),
                    requested: format!("{n_samples} samples (the store's)"),
                }
                .into());
            }
        }
        Ok(StoreReader {
            root: path.to_path_buf(),
            n_samples,
            attrs: group.attrs,
            format_version: group.format_version,
            arrays,
        })
    }

    /// Folder of the store.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The user's group attributes (without the store's own entry).
    pub fn attrs(&self) -> &Map<String, Value> {
        &self.attrs
    }

    /// Samples per array.
    pub fn n_samples(&self) -> usize {
        self.n_samples
    }

    /// Whether this is a weld-cache store (with markers) rather than a foreign zarr group.
    pub fn has_markers(&self) -> bool {
        self.format_version.is_some()
    }

    /// Specs of every array, sorted by name.
    pub fn specs(&self) -> Vec<ArraySpec> {
        self.arrays.iter().map(|a| a.spec.clone()).collect()
    }

    /// Opens the array `name` for reading; takes a snapshot of its completion mask.
    pub fn array(&self, name: &str) -> Result<ArrayReader> {
        let layout = self
            .arrays
            .iter()
            .find(|a| a.spec.name == name)
            .cloned()
            .ok_or_else(|| StoreError::NoSuchArray {
                path: self.root.clone(),
                array: name.to_string(),
            })?;
        let done = if self.has_markers() {
            markers::completion_mask(&self.root, name, self.n_samples)?
        } else {
            (0..self.n_samples)
                .map(|i| {
                    std::fs::metadata(layout.chunk_path(i))
                        .is_ok_and(|m| m.len() == layout.spec.chunk_nbytes() as u64)
                })
                .collect()
        };
        Ok(ArrayReader {
            root: self.root.clone(),
            layout,
            markers: self.has_markers(),
            done: RwLock::new(done),
            staging: Mutex::new(Vec::new()),
        })
    }

    /// Stable hash (SHA-256, hex) of the format version, `n_samples`, the attributes and the
    /// array specs; independent of JSON key order. Checkpoints record it.
    pub fn fingerprint(&self) -> String {
        let arrays: Vec<Value> = self
            .arrays
            .iter()
            .map(|a| {
                json!({"name": a.spec.name, "dtype": a.spec.dtype, "sample_shape": a.spec.sample_shape})
            })
            .collect();
        let v = json!({
            "format_version": self.format_version,
            "n_samples": self.n_samples,
            "attrs": Value::Object(self.attrs.clone()),
            "arrays": arrays,
        });
        let mut text = String::new();
        canonical_json(&v, &mut text);
        hex::encode(Sha256::digest(text.as_bytes()))
    }
}

/// A store-level f32 vector (e.g. `text/embed`), read whole.
#[derive(Debug, Clone)]
pub struct StoreVector {
    /// `[len]` values.
    pub values: Vec<f32>,
    /// The array's zarr attributes.
    pub attrs: Map<String, Value>,
    /// The chunk file's bytes (little-endian f32), e.g. for a fingerprint.
    pub bytes: Vec<u8>,
    /// The array's folder.
    pub path: PathBuf,
}

impl StoreReader {
    /// Reads the store-level f32 vector `name` written by
    /// [`FeatureStore::write_vector`](super::FeatureStore::write_vector): shape `[d]` in one
    /// chunk, little-endian bytes, no compression. Errors name the array's files; the values must
    /// be finite.
    pub fn vector(&self, name: &str) -> Result<StoreVector> {
        super::validate_name(name)?;
        let dir = self.root.join(name);
        let meta_path = dir.join("zarr.json");
        if !meta_path.is_file() {
            return Err(StoreError::NoSuchArray {
                path: self.root.clone(),
                array: name.to_string(),
            }
            .into());
        }
        let v = super::fsutil::read_json(&meta_path)?;
        let bad = |reason: String| -> Error {
            StoreError::Unsupported {
                path: meta_path.clone(),
                reason,
            }
            .into()
        };
        let shape: Vec<u64> = v["shape"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        let chunk: Vec<u64> = v
            .pointer("/chunk_grid/configuration/chunk_shape")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        if v["data_type"] != json!("float32") || shape.len() != 1 || chunk != shape {
            return Err(bad(format!(
                "need a float32 vector in one chunk, found data_type {} shape {shape:?} chunks \
                 {chunk:?}",
                v["data_type"]
            )));
        }
        let codecs = v["codecs"].as_array().cloned().unwrap_or_default();
        if codecs.len() != 1
            || codecs[0]["name"] != json!("bytes")
            || codecs[0].pointer("/configuration/endian") != Some(&json!("little"))
        {
            return Err(bad(format!(
                "codecs {}: need one little-endian bytes codec",
                Value::Array(codecs)
            )));
        }
        let sep = match v.pointer("/chunk_key_encoding/configuration/separator") {
            Some(Value::String(s)) if s == "." => '.',
            _ => '/',
        };
        let chunk_path = super::fsutil::chunk_path(&dir, sep, 0, 0);
        let bytes = std::fs::read(&chunk_path).map_err(|e| Error::io(&chunk_path, e))?;
        if bytes.len() as u64 != shape[0] * 4 {
            return Err(StoreError::ChunkSize {
                path: chunk_path,
                array: name.to_string(),
                index: 0,
                expected: shape[0] * 4,
                got: bytes.len() as u64,
            }
            .into());
        }
        let values: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if let Some(i) = values.iter().position(|x| !x.is_finite()) {
            return Err(StoreError::NonFinite {
                path: chunk_path,
                array: name.to_string(),
                index: 0,
                element: i,
                value: values[i],
            }
            .into());
        }
        Ok(StoreVector {
            values,
            attrs: v["attributes"].as_object().cloned().unwrap_or_default(),
            bytes,
            path: dir,
        })
    }

    /// The attributes of the zarr group `group` (e.g. `image` holds the image stage's
    /// provenance); `None` when there is no such group.
    pub fn group_attrs(&self, group: &str) -> Result<Option<Map<String, Value>>> {
        super::validate_name(group)?;
        super::side::read_group_attrs(&self.root, group)
    }
}

impl StoreReader {
    /// Like [`fingerprint`](Self::fingerprint) but over only the group attributes `attr_keys`
    /// (e.g. `samples`) and the arrays `arrays` (name, dtype, sample shape), plus the format
    /// version and `n_samples`: adding an array a head does not read (another DINOv3 token
    /// layer) leaves it unchanged. A missing array is an error; a missing attribute hashes as
    /// `null`.
    pub fn fingerprint_of(&self, attr_keys: &[&str], arrays: &[&str]) -> Result<String> {
        let mut names: Vec<&str> = arrays.to_vec();
        names.sort_unstable();
        names.dedup();
        let mut specs = Vec::with_capacity(names.len());
        for name in names {
            let a = self
                .arrays
                .iter()
                .find(|a| a.spec.name == name)
                .ok_or_else(|| StoreError::NoSuchArray {
                    path: self.root.clone(),
                    array: name.to_string(),
                })?;
            specs.push(
                json!({"name": a.spec.name, "dtype": a.spec.dtype, "sample_shape": a.spec.sample_shape}),
            );
        }
        let attrs: Map<String, Value> = attr_keys
            .iter()
            .map(|k| {
                (
                    k.to_string(),
                    self.attrs.get(*k).cloned().unwrap_or(Value::Null),
                )
            })
            .collect();
        let v = json!({
            "format_version": self.format_version,
            "n_samples": self.n_samples,
            "attrs": Value::Object(attrs),
            "arrays": specs,
        });
        let mut text = String::new();
        canonical_json(&v, &mut text);
        Ok(hex::encode(Sha256::digest(text.as_bytes())))
    }
}

/// JSON text with object keys sorted at every level.
fn canonical_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (k, key) in keys.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*key).clone()).to_string());
                out.push(':');
                canonical_json(&m[key.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (k, x) in a.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                canonical_json(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// One array of a [`StoreReader`].
pub struct ArrayReader {
    root: PathBuf,
    layout: ArrayLayout,
    markers: bool,
    /// Completion snapshot; a `false` entry is re-checked on disk before it is reported.
    done: RwLock<Vec<bool>>,
    /// Raw bytes of the last batch, reused (grows only).
    staging: Mutex<Vec<u8>>,
}

/// A memory-mapped chunk: the raw little-endian sample, `[...sample_shape]`, not copied. The
/// mapping is released when this value is dropped.
pub struct MappedChunk {
    map: Mmap,
    path: PathBuf,
    dtype: StoreDtype,
}

impl MappedChunk {
    /// The raw bytes (points into the mapping).
    pub fn as_bytes(&self) -> &[u8] {
        &self.map
    }
    /// The chunk file.
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn dtype(&self) -> StoreDtype {
        self.dtype
    }
    /// The elements of an f16 chunk, in place (`None` for another dtype).
    pub fn as_f16(&self) -> Option<&[f16]> {
        (self.dtype == StoreDtype::F16).then(|| bytemuck::cast_slice(&self.map[..]))
    }
    /// The elements of a bf16 chunk, in place (`None` for another dtype).
    pub fn as_bf16(&self) -> Option<&[bf16]> {
        (self.dtype == StoreDtype::Bf16).then(|| bytemuck::cast_slice(&self.map[..]))
    }
    /// The elements of an f32 chunk, in place (`None` for another dtype).
    pub fn as_f32(&self) -> Option<&[f32]> {
        (self.dtype == StoreDtype::F32).then(|| bytemuck::cast_slice(&self.map[..]))
    }
}

impl std::ops::Deref for MappedChunk {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.map
    }
}

impl ArrayReader {
    pub fn spec(&self) -> &ArraySpec {
        &self.layout.spec
    }

    /// Samples of the array (first axis).
    pub fn n_samples(&self) -> usize {
        self.layout.n_rows
    }

    /// The chunk file of sample `index`.
    pub fn chunk_path(&self, index: usize) -> PathBuf {
        self.layout.chunk_path(index)
    }

    /// Whether sample `index` is complete (marker, or for a foreign group a full-size chunk).
    pub fn is_done(&self, index: usize) -> bool {
        if index >= self.layout.n_rows {
            return false;
        }
        if self.done.read().unwrap()[index] {
            return true;
        }
        let now = if self.markers {
            markers::marker_path(&self.root, &self.layout.spec.name, index).is_file()
        } else {
            std::fs::metadata(self.chunk_path(index))
                .is_ok_and(|m| m.len() == self.layout.spec.chunk_nbytes() as u64)
        };
        if now {
            self.done.write().unwrap()[index] = true;
        }
        now
    }

    /// The fault marker of sample `index` (what `extract run` recorded when its input could not
    /// be extracted: stage, file, reason), if any.
    pub fn fault(&self, index: usize) -> Option<serde_json::Value> {
        let p = markers::fault_path(&self.root, &self.layout.spec.name, index);
        let bytes = std::fs::read(p).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn check_done(&self, index: usize) -> Result<()> {
        if index >= self.layout.n_rows {
            return Err(StoreError::IndexOutOfRange {
                path: self.root.clone(),
                array: self.layout.spec.name.clone(),
                index,
                n_samples: self.layout.n_rows,
            }
            .into());
        }
        if !self.is_done(index) {
            return Err(StoreError::Incomplete {
                path: self.root.clone(),
                array: self.layout.spec.name.clone(),
                index,
            }
            .into());
        }
        Ok(())
    }

    /// Opens the chunk of a complete sample and checks its size.
    fn open_chunk(&self, index: usize) -> Result<(File, PathBuf)> {
        self.check_done(index)?;
        let path = self.chunk_path(index);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::MissingChunk {
                    path,
                    array: self.layout.spec.name.clone(),
                    index,
                }
                .into())
            }
            Err(e) => return Err(Error::io(path, e)),
        };
        let got = file.metadata().map_err(|e| Error::io(&path, e))?.len();
        let expected = self.layout.spec.chunk_nbytes() as u64;
        if got != expected {
            return Err(StoreError::ChunkSize {
                path,
                array: self.layout.spec.name.clone(),
                index,
                expected,
                got,
            }
            .into());
        }
        Ok((file, path))
    }

    /// Zero-copy view of the raw chunk of sample `index` (`[...sample_shape]`, little endian).
    /// Error if the sample is incomplete or its chunk is missing or has the wrong size.
    pub fn sample_bytes(&self, index: usize) -> Result<MappedChunk> {
        let (file, path) = self.open_chunk(index)?;
        // SAFETY: complete chunks are never rewritten while readers run (writers only touch
        // samples that have no marker); the map is read-only.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
        Ok(MappedChunk {
            map,
            path,
            dtype: self.layout.spec.dtype,
        })
    }

    /// Reads sample `index` into `out` (`[...sample_shape]` flattened), converting f16/bf16.
    pub fn read_f32(&self, index: usize, out: &mut [f32]) -> Result<()> {
        let spec = &self.layout.spec;
        if out.len() != spec.sample_len() {
            return Err(StoreError::WrongLength {
                path: self.root.clone(),
                array: spec.name.clone(),
                index,
                expected: spec.sample_len(),
                got: out.len(),
            }
            .into());
        }
        let chunk = self.sample_bytes(index)?;
        decode_into(spec.dtype, &chunk, out);
        Ok(())
    }

    /// `[B, ...sample_shape]` f32 tensor on `device` for the samples `indices` (B =
    /// `indices.len()`, repeats allowed); any incomplete sample is an error naming it. No
    /// per-sample allocation: on the CPU each mapped chunk is converted straight into the output
    /// tensor's memory (in parallel); on another device the raw chunks are read (`pread`) into
    /// one staging buffer reused across calls, moved as the stored dtype (half the transfer for
    /// f16) and converted to f32 on the device.
    pub fn batch_tensor(&self, indices: &[usize], device: tch::Device) -> Result<tch::Tensor> {
        for &i in indices {
            self.check_done(i)?;
        }
        let spec = &self.layout.spec;
        let mut shape = vec![indices.len() as i64];
        shape.extend(spec.sample_shape.iter().map(|&d| d as i64));
        if indices.is_empty() {
            return Ok(tch::Tensor::f_zeros(&shape, (tch::Kind::Float, device))?);
        }
        if device == tch::Device::Cpu {
            self.batch_cpu(indices, &shape)
        } else {
            let raw = self.batch_tensor_raw(indices)?;
            Ok(raw.f_to_device(device)?.f_to_kind(tch::Kind::Float)?)
        }
    }

    fn batch_cpu(&self, indices: &[usize], shape: &[i64]) -> Result<tch::Tensor> {
        let spec = &self.layout.spec;
        let len = spec.sample_len();
        let out = tch::Tensor::f_empty(shape, (tch::Kind::Float, tch::Device::Cpu))?;
        debug_assert!(out.is_contiguous());
        // SAFETY: `out` is a fresh contiguous f32 CPU tensor of exactly B * len elements, owned
        // here and not shared until returned; each sample writes a disjoint slice of it.
        let dst = unsafe {
            std::slice::from_raw_parts_mut(out.data_ptr() as *mut f32, indices.len() * len)
        };
        dst.par_chunks_mut(len)
            .zip(indices.par_iter())
            .try_for_each(|(d, &i)| -> Result<()> {
                let chunk = self.sample_bytes(i)?;
                decode_into(spec.dtype, &chunk, d);
                Ok(())
            })?;
        Ok(out)
    }

    /// `[B, ...sample_shape]` CPU tensor of the stored dtype (f16/bf16/f32), read (`pread`, in
    /// parallel) through the reused staging buffer. What `batch_tensor` moves to a device.
    pub fn batch_tensor_raw(&self, indices: &[usize]) -> Result<tch::Tensor> {
        for &i in indices {
            self.check_done(i)?;
        }
        let spec = &self.layout.spec;
        let mut shape = vec![indices.len() as i64];
        shape.extend(spec.sample_shape.iter().map(|&d| d as i64));
        let nb = spec.chunk_nbytes();
        let total = nb * indices.len();
        let mut staging = self.staging.lock().unwrap();
        if staging.len() < total {
            staging.resize(total, 0);
        }
        staging[..total]
            .par_chunks_mut(nb)
            .zip(indices.par_iter())
            .try_for_each(|(dst, &i)| -> Result<()> {
                let (file, path) = self.open_chunk(i)?;
                file.read_exact_at(dst, 0).map_err(|e| Error::io(path, e))
            })?;
        Ok(tch::Tensor::f_from_data_size(
            &staging[..total],
            &shape,
            spec.dtype.kind(),
        )?)
    }
}

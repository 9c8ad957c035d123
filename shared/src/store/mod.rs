//! The Zarr v3 feature store: one group, one array per feature, first axis = sample.
//!
//! Layout (DESIGN.md "The store"): every array has shape `[n_samples, ...sample_shape]`, one sample
//! per chunk (chunk shape `[1, ...sample_shape]`), no compression and a `bytes` codec with explicit
//! little endian, so chunk `<array>/c/<i>/0/...` is the raw little-endian sample and is memory
//! mapped by [`StoreReader`] without copying. Chunks are written by `zarrs` with
//! `store_empty_chunks = true` (an all-zero sample still has its file).
//!
//! Completion: a sample of an array is done when its marker `STORE/<array>/_markers/<i>.json`
//! (holding the sample's absolute maximum) exists; the marker is written by tmp + rename after the
//! chunk is written and fsync'ed. A sample whose input was broken has a fault marker
//! `<i>.fault.json` instead. Several processes may fill disjoint samples of the same store at
//! once; they must never share a chunk. Root group attributes are written once, at creation.
//!
//! The store folder is a clean zarr v3 hierarchy (format version 2): markers live inside the
//! array folders, where zarr never looks; store-level values are zarr arrays (the text embedding
//! `text/embed`, the sample coordinates `sample`, `class_code`, `split`); provenance and run
//! reports are zarr group attributes (`<stage>` groups, `reports/<run>`), rewritten by tmp +
//! rename. Every array carries `dimension_names` ([`dims`]), so `xarray.open_zarr(STORE,
//! consolidated=False)` gives the sample coordinates and `xarray.open_datatree(STORE,
//! engine="zarr", consolidated=False)` every array with labelled dimensions. A format-1 store is
//! refused with [`StoreError::OldFormat`] (convert it with `extract migrate`).
//!
//! Names may contain '/' (`image/tokens_L20`): the parts before the last are zarr groups.
//! Python `zarr` 3 reads f16 and f32 arrays of a store; it cannot read bf16 (and one bf16 array
//! breaks listing the group), so f16 is the default and **bf16 stores are Rust-only**.
//!
//! The store knows nothing of backbones or heads: it stores named per-sample arrays.
//!
//! ```text
//! writer (extract, one handle shared by writer threads; one handle per shard process):
//!   let s = FeatureStore::open_or_create(path, n_samples, attrs)?;   // attrs must agree on resume
//!   s.ensure_array(&ArraySpec::new("video/tokens", &[4096, 1024], StoreDtype::F16))?;
//!   if !s.is_done("video/tokens", i) { s.write_sample("video/tokens", i, &feat)?;
//!                                      s.mark_done("video/tokens", i)?; }
//! reader (train-head):
//!   let r = StoreReader::open(path)?;  let fp = r.fingerprint();
//!   let x = r.array("video/tokens")?.batch_tensor(&idx, device)?;   // [B, 4096, 1024] f32
//! check:  verify(path)? -> VerifyReport (sound() = no problem and every sample complete)
//! ```
//!
//! `StoreReader` also reads a foreign zarr v3 group with this layout (e.g. written by Python):
//! it has no markers, so there a sample is complete when its chunk file has the exact size.

mod convert;
pub mod dims;
mod error;
mod fsutil;
mod layout;
mod markers;
mod migrate;
mod reader;
mod side;
mod text;
mod verify;
mod writer;

pub use error::StoreError;
pub use markers::Marker;
pub use migrate::{migrate, MigrateReport};
pub use reader::{ArrayReader, MappedChunk, StoreReader, StoreVector};
pub use side::RunLock;
pub use text::{read_text_embed, text_embed_exists, write_text_embed, TEXT_EMBED};
pub use verify::{
    verify, verify_with, ArrayVerify, Problem, ProblemKind, SampleFault, VerifyReport,
};
pub use writer::{FeatureStore, SampleWrite};

use serde::{Deserialize, Serialize};

/// Version of the store layout written into the group attributes. 2: markers inside the arrays,
/// dimension names, coordinate arrays, `text/embed`, provenance and reports as zarr attributes
/// (1: `_markers/`, `text_embed.json`, `provenance/*.json` and report files in the group).
pub const FORMAT_VERSION: u64 = 2;
/// Group attribute reserved for the store itself: `{"format_version": 1, "n_samples": N}`.
pub const STORE_ATTR: &str = "weld_cache_store";
/// Largest finite f16 magnitude; larger values are refused for f16 arrays.
pub const F16_MAX: f32 = 65504.0;

#[cfg(target_endian = "big")]
compile_error!("the store maps little-endian chunks directly: big-endian hosts are not supported");

/// Element type of a stored array. Serialised lowercase: `"f16" | "bf16" | "f32"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StoreDtype {
    /// IEEE half precision; the default (readable by Python zarr 3).
    #[default]
    F16,
    /// bfloat16; Rust-only (Python zarr 3 cannot read it).
    Bf16,
    F32,
}

impl StoreDtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            StoreDtype::F16 | StoreDtype::Bf16 => 2,
            StoreDtype::F32 => 4,
        }
    }

    /// Short name: `f16`, `bf16`, `f32`.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreDtype::F16 => "f16",
            StoreDtype::Bf16 => "bf16",
            StoreDtype::F32 => "f32",
        }
    }

    /// The zarr v3 `data_type` name.
    pub fn zarr_name(self) -> &'static str {
        match self {
            StoreDtype::F16 => "float16",
            StoreDtype::Bf16 => "bfloat16",
            StoreDtype::F32 => "float32",
        }
    }

    /// From a zarr v3 `data_type` name.
    pub fn from_zarr_name(name: &str) -> Option<Self> {
        match name {
            "float16" => Some(StoreDtype::F16),
            "bfloat16" => Some(StoreDtype::Bf16),
            "float32" => Some(StoreDtype::F32),
            _ => None,
        }
    }

    /// The matching libtorch kind.
    pub fn kind(self) -> tch::Kind {
        match self {
            StoreDtype::F16 => tch::Kind::Half,
            StoreDtype::Bf16 => tch::Kind::BFloat16,
            StoreDtype::F32 => tch::Kind::Float,
        }
    }
}

impl std::fmt::Display for StoreDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for StoreDtype {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f16" | "float16" | "half" => Ok(StoreDtype::F16),
            "bf16" | "bfloat16" => Ok(StoreDtype::Bf16),
            "f32" | "float32" | "float" => Ok(StoreDtype::F32),
            _ => Err(StoreError::BadDtype(s.to_string())),
        }
    }
}

/// Values of a 1-D coordinate array of the sample axis.
#[derive(Debug, Clone, PartialEq)]
pub enum CoordValues {
    /// UTF-8 strings (zarr `string`, `vlen-utf8` codec), e.g. the sample key or the split.
    Str(Vec<String>),
    /// 16-bit integers (fill value -1: none), e.g. the class code (-1 = unlabelled).
    I16(Vec<i16>),
}

impl CoordValues {
    pub fn len(&self) -> usize {
        match self {
            CoordValues::Str(v) => v.len(),
            CoordValues::I16(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A coordinate array of the sample axis (dimension `sample`), written at store creation.
#[derive(Debug, Clone, PartialEq)]
pub struct Coord {
    pub name: String,
    pub values: CoordValues,
}

/// A named per-sample array: stored shape `[n_samples, ...sample_shape]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArraySpec {
    /// Array path inside the group, parts separated by '/' (e.g. `image/tokens_L20`).
    pub name: String,
    /// Shape of one sample (every dimension >= 1; may be empty for a scalar per sample).
    pub sample_shape: Vec<usize>,
    pub dtype: StoreDtype,
}

impl ArraySpec {
    /// Convenience constructor.
    pub fn new(name: impl Into<String>, sample_shape: &[usize], dtype: StoreDtype) -> Self {
        ArraySpec {
            name: name.into(),
            sample_shape: sample_shape.to_vec(),
            dtype,
        }
    }

    /// Elements per sample (product of `sample_shape`).
    pub fn sample_len(&self) -> usize {
        self.sample_shape.iter().product()
    }

    /// Bytes of one chunk (one sample) on disk.
    pub fn chunk_nbytes(&self) -> usize {
        self.sample_len() * self.dtype.size()
    }

    /// Checks the name and the shape.
    pub fn validate(&self) -> Result<(), StoreError> {
        validate_name(&self.name)?;
        if self.sample_shape.contains(&0) {
            return Err(StoreError::BadSpec {
                array: self.name.clone(),
                reason: format!("zero-sized dimension in {:?}", self.sample_shape),
            });
        }
        Ok(())
    }
}

impl std::fmt::Display for ArraySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {:?}", self.name, self.dtype, self.sample_shape)
    }
}

/// A store-relative name: '/'-separated parts of `[A-Za-z0-9_.-]`, each starting with a letter or
/// digit (so `_markers`, hidden and temporary entries can never collide with a feature), none
/// equal to `c` (the chunk folder of an array) or `zarr.json`.
pub(crate) fn validate_name(name: &str) -> Result<(), StoreError> {
    let bad = |reason: &str| StoreError::BadName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    for part in name.split('/') {
        let first = part.chars().next().ok_or_else(|| bad("empty path part"))?;
        if !first.is_ascii_alphanumeric() {
            return Err(bad("each part must start with a letter or a digit"));
        }
        if !part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(bad("allowed characters: A-Z a-z 0-9 _ . -"));
        }
        if part == "c" || part == "zarr.json" {
            return Err(bad("'c' and 'zarr.json' are reserved by zarr"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_parse_and_serde() {
        assert_eq!("f16".parse::<StoreDtype>().unwrap(), StoreDtype::F16);
        assert_eq!("BF16".parse::<StoreDtype>().unwrap(), StoreDtype::Bf16);
        assert_eq!("f32".parse::<StoreDtype>().unwrap(), StoreDtype::F32);
        assert!("f64".parse::<StoreDtype>().is_err());
        assert_eq!(
            serde_json::to_string(&StoreDtype::Bf16).unwrap(),
            "\"bf16\""
        );
        let d: StoreDtype = serde_json::from_str("\"f32\"").unwrap();
        assert_eq!(d, StoreDtype::F32);
    }

    #[test]
    fn names() {
        for ok in ["video/tokens", "image/tokens_L20", "a", "x1.y-z"] {
            validate_name(ok).unwrap();
        }
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "_markers/x",
            ".tmp",
            "a/c",
            "a b",
            "../x",
            "a/..",
        ] {
            assert!(validate_name(bad).is_err(), "{bad} accepted");
        }
    }
}

//! Typed faults of the feature store. Each names the store (or the file) and, where there is one,
//! the array and the sample, so a caller can report it without more context.
use std::path::PathBuf;

/// Faults of the Zarr feature store. Wrapped by [`crate::Error::Store`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path} already exists")]
    AlreadyExists { path: PathBuf },
    #[error("{path} is not a weld-cache store: {reason}")]
    NotAStore { path: PathBuf, reason: String },
    #[error(
        "store {path} has format version {found}; this build reads version {current} (markers \
         inside the arrays, text embedding and sample coordinates as arrays, provenance and \
         reports in zarr attributes). Convert it in place with `extract migrate --store {path}`, \
         or extract it again into a new store"
    )]
    OldFormat {
        path: PathBuf,
        found: u64,
        current: u64,
    },
    #[error(
        "store {path} is in use by another `extract run` ({what}); wait for it to finish, or \
         fill disjoint parts of the store with one `--shard i/n` per process"
    )]
    Locked { path: PathBuf, what: String },
    #[error("store {path}: attribute {key:?} differs: store has {existing}, run asks for {given}")]
    AttrMismatch {
        path: PathBuf,
        key: String,
        existing: String,
        given: String,
    },
    #[error("store attribute {key:?} is reserved for the store itself")]
    ReservedAttr { key: String },
    #[error("invalid store name {name:?}: {reason}")]
    BadName { name: String, reason: String },
    #[error("invalid spec for array {array:?}: {reason}")]
    BadSpec { array: String, reason: String },
    #[error("store {path}: array {array:?} exists as {existing}, asked for {requested}")]
    SpecMismatch {
        path: PathBuf,
        array: String,
        existing: String,
        requested: String,
    },
    #[error("store {path}: no array {array:?}")]
    NoSuchArray { path: PathBuf, array: String },
    #[error("store {path}: array {array:?}: sample {index} out of range (n_samples {n_samples})")]
    IndexOutOfRange {
        path: PathBuf,
        array: String,
        index: usize,
        n_samples: usize,
    },
    #[error("store {path}: array {array:?} sample {index}: got {got} values, expected {expected}")]
    WrongLength {
        path: PathBuf,
        array: String,
        index: usize,
        expected: usize,
        got: usize,
    },
    #[error(
        "store {path}: array {array:?} sample {index}: non-finite value {value} at element \
         {element}; nothing written"
    )]
    NonFinite {
        path: PathBuf,
        array: String,
        index: usize,
        element: usize,
        value: f32,
    },
    #[error(
        "store {path}: array {array:?} sample {index}: |{value}| at element {element} exceeds the \
         {dtype} range (f16: 65504); nothing written (store this array as f32)"
    )]
    Overflow {
        path: PathBuf,
        array: String,
        index: usize,
        element: usize,
        value: f32,
        dtype: super::StoreDtype,
    },
    #[error("store {path}: array {array:?} sample {index} is not complete (no marker)")]
    Incomplete {
        path: PathBuf,
        array: String,
        index: usize,
    },
    #[error("chunk {path} (array {array:?} sample {index}) is missing")]
    MissingChunk {
        path: PathBuf,
        array: String,
        index: usize,
    },
    #[error("chunk {path} (array {array:?} sample {index}) has {got} bytes, expected {expected}")]
    ChunkSize {
        path: PathBuf,
        array: String,
        index: usize,
        expected: u64,
        got: u64,
    },
    #[error("{path}: unsupported zarr layout: {reason}")]
    Unsupported { path: PathBuf, reason: String },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("zarrs on {path}: {message}")]
    Zarrs { path: PathBuf, message: String },
    #[error("unknown store dtype {0:?} (expected f16, bf16 or f32)")]
    BadDtype(String),
}

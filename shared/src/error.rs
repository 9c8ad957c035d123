//! Typed errors of the library. Binaries wrap them with `anyhow` context.
use std::path::PathBuf;

/// Errors of the weld-cache library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("io error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("torch: {0}")]
    Torch(#[from] tch::TchError),
    #[error("{0}")]
    Msg(String),
    /// Invalid input or options for a preprocessing function.
    #[error("preprocess: {0}")]
    Preprocess(String),
    /// A waveform shorter than one analysis window (torchaudio's fbank refuses it too).
    #[error("audio too short: {samples} samples, one fbank frame needs {needed}")]
    AudioTooShort { samples: usize, needed: usize },
    /// Loading or running a `tokenizer.json`.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A config document (file or override) that does not parse or validate.
    #[error("config {source_name}: {msg}")]
    Config { source_name: String, msg: String },
    /// Tensors handed to a head with the wrong shape or kind.
    #[error("bad input to {what}: {msg}")]
    BadInput { what: String, msg: String },
    /// A checkpoint trained on another store than the one given.
    #[error("{path}: trained on store `{trained}`, refusing store `{given}`")]
    StoreMismatch {
        path: PathBuf,
        trained: String,
        given: String,
    },
    /// One sample's input is missing or unreadable (names sample, modality and file).
    #[error(transparent)]
    Sample(#[from] crate::data::SampleError),
    /// A manifest row is invalid (duplicate key, unknown category, CATEGORY/CC mismatch...).
    #[error("manifest {path}, row {row}: {message}")]
    Manifest {
        path: PathBuf,
        /// 1-based line number in the file (the header is line 1).
        row: usize,
        message: String,
    },
    /// A fault of the Zarr feature store (see `store::StoreError`).
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl Error {
    /// An I/O error that names the file it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

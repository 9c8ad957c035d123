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

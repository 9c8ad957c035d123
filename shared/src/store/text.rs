//! The text embedding of the store: the store-level f32 array `text/embed` (`[feature]`, one
//! chunk, attributes `prompt` and `dim`), written once by `extract run` (complete in a temporary
//! folder, then renamed into place) and read by the heads.
use std::path::Path;

use serde_json::{json, Map};

use super::{FeatureStore, StoreReader, StoreVector};
use crate::{Error, Result};

/// Array name of the text embedding.
pub const TEXT_EMBED: &str = "text/embed";

/// Whether the store at `store` has its text embedding.
pub fn text_embed_exists(store: &Path) -> bool {
    store.join(TEXT_EMBED).join("zarr.json").is_file()
}

/// Writes the embedding of `prompt` (`[dim]`, finite) unless present; true when written.
pub fn write_text_embed(store: &FeatureStore, prompt: &str, embedding: &[f32]) -> Result<bool> {
    let mut attrs = Map::new();
    attrs.insert("prompt".into(), json!(prompt));
    attrs.insert("dim".into(), json!(embedding.len()));
    store.write_vector(TEXT_EMBED, "feature", embedding, attrs)
}

/// Reads the text embedding (`values` `[dim]`); an error names the array and the fix when it is
/// missing.
pub fn read_text_embed(reader: &StoreReader) -> Result<StoreVector> {
    if !text_embed_exists(reader.path()) {
        return Err(Error::Msg(format!(
            "{}: no text embedding `{TEXT_EMBED}` (run `extract run --only text` on the store)",
            reader.path().display()
        )));
    }
    let v = reader.vector(TEXT_EMBED)?;
    if let Some(dim) = v.attrs.get("dim").and_then(|d| d.as_u64()) {
        if dim as usize != v.values.len() {
            return Err(Error::Msg(format!(
                "{}: attribute `dim` is {dim}, the array holds {} values",
                v.path.display(),
                v.values.len()
            )));
        }
    }
    Ok(v)
}

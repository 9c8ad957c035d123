//! Per-stage provenance (attribute `provenance` of the stage's zarr group, e.g. `STORE/image`):
//! the backbone's config, the SHA-256 of its weight files, the preprocessing parameters and the
//! compute dtype. Written by the
//! first process that runs a stage; every later run (resume, another shard, an added layer) must
//! present the same values, so a store never mixes features of two checkpoints or settings.
use crate::backbones::loader::{sha256_file, weight_files};
use crate::store::{read_text_embed, text_embed_exists, FeatureStore, StoreReader};
use crate::{Error, Result};
use serde_json::{json, Value};
use std::path::Path;

/// Provenance of a backbone folder: model type, config and weight hashes.
pub fn model_provenance(dir: &Path) -> Result<Value> {
    let cfg_path = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::io(&cfg_path, e))?;
    let config: Value = serde_json::from_str(&text)
        .map_err(|e| Error::Msg(format!("{}: invalid JSON: {e}", cfg_path.display())))?;
    let mut weights = Vec::new();
    for f in weight_files(dir)? {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        weights.push(json!({ "file": name, "sha256": sha256_file(&f)? }));
    }
    // absolute, so `extract run --like` finds the folder from anywhere (volatile: not compared)
    let abs = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    Ok(json!({
        "model_dir": abs.display().to_string(),
        "model_type": config.get("model_type").cloned().unwrap_or(Value::Null),
        "config": config,
        "weights": weights,
    }))
}

use crate::schema::strip_volatile;
pub use crate::schema::{provenance_group, PROVENANCE_ATTR};

/// Records `value` as the provenance of `stage` (attribute `provenance` of the zarr group
/// `<stage>`), or checks it against the recorded one.
pub fn record_or_check(
    store: &FeatureStore,
    store_path: &Path,
    stage: &str,
    value: &Value,
) -> Result<()> {
    let mut attrs = store.group_attrs(stage)?.unwrap_or_default();
    if let Some(old) = attrs.get(PROVENANCE_ATTR) {
        if strip_volatile(old) != strip_volatile(value) {
            return Err(Error::Msg(format!(
                "{}: the store's {stage} features were extracted with other settings or weights \
                 than this run's; use a new store (or the recorded settings). Recorded: {}",
                store_path.join(stage).join("zarr.json").display(),
                serde_json::to_string(&strip_volatile(old)).unwrap_or_default()
            )));
        }
        return Ok(());
    }
    attrs.insert(PROVENANCE_ATTR.into(), value.clone());
    store.write_group_attrs(stage, attrs)
}

/// Stages whose provenance lists no weight files (no backbone).
const NO_WEIGHTS: [&str; 2] = ["sensor", "spectrogram"];

/// Provenance problems of an extracted store: every stage with arrays must have its provenance
/// (weights' SHA-256, config, preprocessing) in the attributes of its group, and the text
/// embedding must be present, finite and recorded. Returns one line per problem.
pub fn check_store_provenance(reader: &StoreReader, array_names: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut stages: Vec<&str> = array_names.iter().map(|n| provenance_group(n)).collect();
    stages.sort();
    stages.dedup();
    let root = reader.path();
    let read = |stage: &str| -> std::result::Result<Value, String> {
        let at = root.join(stage).join("zarr.json");
        match reader.group_attrs(stage) {
            Err(e) => Err(e.to_string()),
            Ok(None) => Err(format!("{}: no zarr group", at.display())),
            Ok(Some(a)) => a
                .get(PROVENANCE_ATTR)
                .cloned()
                .ok_or_else(|| format!("{}: no `{PROVENANCE_ATTR}` attribute", at.display())),
        }
    };
    for stage in stages {
        match read(stage) {
            Err(e) => problems.push(format!("{stage}: no provenance ({e})")),
            Ok(v)
                if !NO_WEIGHTS.contains(&stage)
                    && v["weights"].as_array().is_none_or(|w| w.is_empty()) =>
            {
                problems.push(format!("{stage}: provenance lists no weight files"))
            }
            Ok(_) => {}
        }
    }
    let text_recorded = reader
        .group_attrs("text")
        .ok()
        .flatten()
        .is_some_and(|a| a.contains_key(PROVENANCE_ATTR));
    if text_recorded || text_embed_exists(root) {
        if let Err(e) = read_text_embed(reader) {
            problems.push(format!("text: {e}"));
        }
        if let Err(e) = read("text") {
            problems.push(format!("text: no provenance ({e})"));
        }
    }
    problems
}

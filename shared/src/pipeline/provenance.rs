//! Per-stage provenance side files (`provenance/<stage>.json`): the backbone's config, the
//! SHA-256 of its weight files, the preprocessing parameters and the compute dtype. Written by the
//! first process that runs a stage; every later run (resume, another shard, an added layer) must
//! present the same values, so a store never mixes features of two checkpoints or settings.
use crate::backbones::loader::{sha256_file, weight_files};
use crate::store::FeatureStore;
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
    Ok(json!({
        "model_dir": dir.display().to_string(),
        "model_type": config.get("model_type").cloned().unwrap_or(Value::Null),
        "config": config,
        "weights": weights,
    }))
}

/// Fields that may differ between runs of the same stage (where the folder is, which tool
/// version ran); everything else must be equal.
const VOLATILE: [&str; 3] = ["model_dir", "tool_version", "device"];

fn strip_volatile(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !VOLATILE.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), strip_volatile(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Records `value` as the provenance of `stage`, or checks it against the recorded one.
pub fn record_or_check(
    store: &FeatureStore,
    store_path: &Path,
    stage: &str,
    value: &Value,
) -> Result<()> {
    let name = format!("provenance/{stage}.json");
    let path = store_path.join(&name);
    if path.is_file() {
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let old: Value = serde_json::from_str(&text)
            .map_err(|e| Error::Msg(format!("{}: invalid JSON: {e}", path.display())))?;
        if strip_volatile(&old) != strip_volatile(value) {
            return Err(Error::Msg(format!(
                "{}: the store's {stage} features were extracted with other settings or weights \
                 than this run's; use a new store (or the recorded settings). Recorded: {}",
                path.display(),
                serde_json::to_string(&strip_volatile(&old)).unwrap_or_default()
            )));
        }
        return Ok(());
    }
    store.write_json(&name, value)
}

/// Provenance problems of an extracted store: every stage with arrays must have its
/// `provenance/<stage>.json` (weights' SHA-256, config, preprocessing), and the text embedding
/// must be present, finite and recorded. Returns one line per problem.
pub fn check_store_provenance(store_path: &Path, array_names: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut stages: Vec<&str> = array_names
        .iter()
        .filter_map(|n| n.split('/').next())
        .collect();
    stages.sort();
    stages.dedup();
    let read = |name: &str| -> std::result::Result<Value, String> {
        let p = store_path.join(name);
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: invalid JSON: {e}", p.display()))
    };
    for stage in stages {
        match read(&format!("provenance/{stage}.json")) {
            Err(e) => problems.push(format!("{stage}: no provenance ({e})")),
            Ok(v) if stage != "sensor" && v["weights"].as_array().is_none_or(|w| w.is_empty()) => {
                problems.push(format!("{stage}: provenance lists no weight files"))
            }
            Ok(_) => {}
        }
    }
    if store_path.join("provenance/text.json").is_file()
        || store_path.join("text_embed.json").is_file()
    {
        match read("text_embed.json") {
            Err(e) => problems.push(format!("text: {e}")),
            Ok(v) => {
                let ok = v["embedding"].as_array().is_some_and(|a| {
                    !a.is_empty() && a.iter().all(|x| x.as_f64().is_some_and(f64::is_finite))
                });
                if !ok {
                    problems.push("text: text_embed.json has no finite `embedding`".into());
                }
            }
        }
        if let Err(e) = read("provenance/text.json") {
            problems.push(format!("text: no provenance ({e})"));
        }
    }
    problems
}

//! Loading Hugging Face model folders into a `VarStore`, strictly.
//!
//! A folder holds `config.json` and one of `model.safetensors`, a sharded
//! `model.safetensors.index.json`, or `pytorch_model.bin`. The modules of each backbone are built
//! from an `nn::Path` whose segments equal the checkpoint keys, so loading is a name-for-name
//! copy: a missing, unexpected or mis-shaped key is an error naming it. Keys that belong to parts
//! we never run (a classifier head, V-JEPA 2's predictor, CLIP's vision tower) are skipped by an
//! explicit rule given by the caller, and a task-model prefix (`vjepa2.`,
//! `audio_spectrogram_transformer.`) is stripped when present.
use crate::{Error, Result};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use tch::{nn, Tensor};

/// How a backbone's checkpoint keys map onto its `VarStore`.
pub struct KeyRules<'a> {
    /// Prefixes of task-model checkpoints; stripped from every key that carries one.
    pub strip_prefixes: &'a [&'a str],
    /// Keys (after stripping) that belong to parts we do not run: skipped, never an error.
    pub ignore: &'a dyn Fn(&str) -> bool,
}

/// The weight files of a model folder, in load order.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| Error::io(&index, e))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::Msg(format!("{}: invalid JSON: {e}", index.display())))?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| Error::Msg(format!("{}: no `weight_map` object", index.display())))?;
        let files: std::collections::BTreeSet<&str> =
            map.values().filter_map(|f| f.as_str()).collect();
        return Ok(files.into_iter().map(|f| dir.join(f)).collect());
    }
    if dir.join("pytorch_model.bin").is_file() {
        return Err(Error::Msg(format!(
            "{}: only pytorch_model.bin found; libtorch cannot read the pickled OrderedDict that \
             save_pretrained writes. Convert it once with `bash scripts/convert_bin.sh {}`",
            dir.display(),
            dir.display()
        )));
    }
    Err(Error::Msg(format!(
        "{}: no model.safetensors, model.safetensors.index.json or pytorch_model.bin",
        dir.display()
    )))
}

/// Reads every tensor of a model folder onto the CPU, in its stored dtype.
pub fn read_checkpoint(dir: &Path) -> Result<HashMap<String, Tensor>> {
    let mut out = HashMap::new();
    for file in weight_files(dir)? {
        if !file.is_file() {
            return Err(Error::Msg(format!(
                "missing weight shard {}",
                file.display()
            )));
        }
        let tensors = Tensor::read_safetensors(&file)
            .map_err(|e| Error::Msg(format!("{}: cannot read safetensors: {e}", file.display())))?;
        for (k, t) in tensors {
            if out.insert(k.clone(), t).is_some() {
                return Err(Error::Msg(format!(
                    "{}: key `{k}` appears twice",
                    file.display()
                )));
            }
        }
    }
    Ok(out)
}

/// Copies `tensors` into `vs` name for name (converting dtype), strictly: every variable of `vs`
/// must be present with the same shape, and every checkpoint key not ignored by `rules` must be
/// a variable of `vs`.
pub fn load_strict(
    vs: &mut nn::VarStore,
    tensors: HashMap<String, Tensor>,
    rules: &KeyRules,
    source: &Path,
) -> Result<()> {
    let mut by_name: BTreeMap<String, Tensor> = BTreeMap::new();
    for (k, t) in tensors {
        let key = rules
            .strip_prefixes
            .iter()
            .find_map(|p| k.strip_prefix(p))
            .unwrap_or(&k)
            .to_string();
        if (rules.ignore)(&key) {
            continue;
        }
        by_name.insert(key, t);
    }
    let vars = vs.variables();
    let mut missing = Vec::new();
    let mut shapes = Vec::new();
    tch::no_grad(|| {
        for (name, mut var) in vars.iter().map(|(n, v)| (n.clone(), v.shallow_clone())) {
            match by_name.remove(&name) {
                None => missing.push(name),
                Some(t) if t.size() != var.size() => shapes.push(format!(
                    "{name}: checkpoint {:?}, model {:?}",
                    t.size(),
                    var.size()
                )),
                Some(t) => {
                    var.copy_(&t.to_device(var.device()).to_kind(var.kind()));
                }
            }
        }
    });
    let unexpected: Vec<String> = by_name.into_keys().collect();
    if missing.is_empty() && shapes.is_empty() && unexpected.is_empty() {
        return Ok(());
    }
    let mut msg = format!("{}: checkpoint does not match the model", source.display());
    for (what, list) in [
        ("missing", &missing),
        ("mis-shaped", &shapes),
        ("unexpected", &unexpected),
    ] {
        if !list.is_empty() {
            let shown: Vec<&str> = list.iter().take(8).map(String::as_str).collect();
            msg.push_str(&format!(
                "; {} {what} key(s): {}",
                list.len(),
                shown.join(", ")
            ));
            if list.len() > 8 {
                msg.push_str(", ...");
            }
        }
    }
    Err(Error::Msg(msg))
}

/// SHA-256 (hex) of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Reads and parses a folder's `config.json` into `T`.
pub fn read_config<T: serde::de::DeserializeOwned>(dir: &Path) -> Result<T> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Msg(format!("{}: {e}", path.display())))
}

/// What `extract inspect` shows about one weight file, read from the safetensors header only.
#[derive(Debug, Clone)]
pub struct WeightFileInfo {
    pub path: PathBuf,
    pub sha256: String,
    pub tensors: usize,
    /// Number of scalar values stored.
    pub numel: u64,
    /// Stored dtypes (`F32`, `BF16`, ...), with their value counts.
    pub dtypes: BTreeMap<String, u64>,
}

/// Reads a safetensors header and hashes the file.
pub fn weight_file_info(path: &Path) -> Result<WeightFileInfo> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(|e| Error::io(path, e))?;
    let n = u64::from_le_bytes(len);
    if n > 100_000_000 {
        return Err(Error::Msg(format!(
            "{}: safetensors header of {n} bytes is not plausible",
            path.display()
        )));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header).map_err(|e| Error::io(path, e))?;
    let v: serde_json::Value = serde_json::from_slice(&header).map_err(|e| {
        Error::Msg(format!(
            "{}: invalid safetensors header: {e}",
            path.display()
        ))
    })?;
    let obj = v
        .as_object()
        .ok_or_else(|| Error::Msg(format!("{}: header is not an object", path.display())))?;
    let mut info = WeightFileInfo {
        path: path.to_path_buf(),
        sha256: sha256_file(path)?,
        tensors: 0,
        numel: 0,
        dtypes: BTreeMap::new(),
    };
    for (k, t) in obj.iter().filter(|(k, _)| k.as_str() != "__metadata__") {
        let dtype = t.get("dtype").and_then(|d| d.as_str());
        let shape = t.get("shape").and_then(|s| s.as_array());
        let (Some(dtype), Some(shape)) = (dtype, shape) else {
            return Err(Error::Msg(format!(
                "{}: tensor `{k}` has no dtype/shape",
                path.display()
            )));
        };
        let numel: u64 = shape.iter().map(|d| d.as_u64().unwrap_or(0)).product();
        info.tensors += 1;
        info.numel += numel;
        *info.dtypes.entry(dtype.to_string()).or_default() += numel;
    }
    Ok(info)
}

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
    mismatch(source, &missing, &shapes, &unexpected)
}

/// `Ok` when all three lists are empty, else one error naming (up to 8 of) each kind of key.
fn mismatch(
    source: &Path,
    missing: &[String],
    shapes: &[String],
    unexpected: &[String],
) -> Result<()> {
    if missing.is_empty() && shapes.is_empty() && unexpected.is_empty() {
        return Ok(());
    }
    let mut msg = format!("{}: checkpoint does not match the model", source.display());
    for (what, list) in [
        ("missing", missing),
        ("mis-shaped", shapes),
        ("unexpected", unexpected),
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

/// Like [`load_strict`] on [`read_checkpoint`]'s result, but streams: each weight file is
/// memory-mapped and every tensor is copied into its variable and dropped at once, so the peak
/// memory is the model plus one tensor (not the model plus the whole checkpoint).
pub fn load_dir_strict(vs: &mut nn::VarStore, dir: &Path, rules: &KeyRules) -> Result<()> {
    let mut pending: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    let mut seen = std::collections::HashSet::new();
    let (mut shapes, mut unexpected) = (Vec::new(), Vec::new());
    for file in weight_files(dir)? {
        if !file.is_file() {
            return Err(Error::Msg(format!(
                "missing weight shard {}",
                file.display()
            )));
        }
        for_each_safetensor(&file, |k, t| {
            let key = rules
                .strip_prefixes
                .iter()
                .find_map(|p| k.strip_prefix(p))
                .unwrap_or(&k)
                .to_string();
            if !seen.insert(key.clone()) {
                return Err(Error::Msg(format!(
                    "{}: key `{key}` appears twice (after prefix stripping)",
                    file.display()
                )));
            }
            if (rules.ignore)(&key) {
                return Ok(());
            }
            match pending.remove(&key) {
                None => unexpected.push(key),
                Some(var) if var.size() != t.size() => shapes.push(format!(
                    "{key}: checkpoint {:?}, model {:?}",
                    t.size(),
                    var.size()
                )),
                Some(mut var) => tch::no_grad(|| {
                    var.copy_(&t.to_device(var.device()).to_kind(var.kind()));
                }),
            }
            Ok(())
        })?;
    }
    let missing: Vec<String> = pending.into_keys().collect();
    mismatch(dir, &missing, &shapes, &unexpected)
}

/// Calls `f(key, tensor)` for every tensor of a safetensors file, memory-mapped; each tensor is a
/// CPU copy in its stored dtype, alive only during the call.
pub fn for_each_safetensor(
    path: &Path,
    mut f: impl FnMut(String, Tensor) -> Result<()>,
) -> Result<()> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: read-only map of a weight file nobody should modify while we load it.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    let bad = |what: String| Error::Msg(format!("{}: {what}", path.display()));
    if map.len() < 8 {
        return Err(bad("too short for safetensors".into()));
    }
    let n = u64::from_le_bytes(map[..8].try_into().expect("8 bytes")) as usize;
    if 8 + n > map.len() {
        return Err(bad(format!("header of {n} bytes runs past the end")));
    }
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&map[8..8 + n])
        .map_err(|e| bad(format!("invalid safetensors header: {e}")))?;
    let data = &map[8 + n..];
    for (k, v) in header {
        if k == "__metadata__" {
            continue;
        }
        let dtype = v.get("dtype").and_then(|d| d.as_str()).unwrap_or("");
        let kind = match dtype {
            "F32" => tch::Kind::Float,
            "F16" => tch::Kind::Half,
            "BF16" => tch::Kind::BFloat16,
            "F64" => tch::Kind::Double,
            "I64" => tch::Kind::Int64,
            "I32" => tch::Kind::Int,
            "U8" => tch::Kind::Uint8,
            "BOOL" => tch::Kind::Bool,
            other => return Err(bad(format!("tensor `{k}`: unsupported dtype `{other}`"))),
        };
        let shape: Vec<i64> = v
            .get("shape")
            .and_then(|s| s.as_array())
            .map(|a| a.iter().filter_map(|d| d.as_i64()).collect())
            .ok_or_else(|| bad(format!("tensor `{k}` has no shape")))?;
        let offsets: Vec<usize> = v
            .get("data_offsets")
            .and_then(|s| s.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_u64())
                    .map(|d| d as usize)
                    .collect()
            })
            .unwrap_or_default();
        let numel: i64 = shape.iter().product();
        let ok = offsets.len() == 2
            && offsets[0] <= offsets[1]
            && offsets[1] <= data.len()
            && (offsets[1] - offsets[0]) as i64 == numel * kind.elt_size_in_bytes() as i64;
        if !ok {
            return Err(bad(format!(
                "tensor `{k}`: data_offsets {offsets:?} do not fit shape {shape:?} {dtype}"
            )));
        }
        let t = Tensor::f_from_data_size(&data[offsets[0]..offsets[1]], &shape, kind)?;
        f(k, t)?;
    }
    Ok(())
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

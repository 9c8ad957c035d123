//! Tiny random-weight Hugging Face model folders (`config.json` + `model.safetensors`) for the
//! demo and the tests: no download needed. The weights are written under the HF key names with
//! the `{"format": "pt"}` metadata `transformers` expects, so `AutoModel.from_pretrained` loads
//! them too.
use crate::{Error, Result};
use std::path::Path;
use tch::{nn, Kind, Tensor};

/// Seeded random values for every variable of `vs`, in sorted key order: LayerNorm weights and
/// layer scales near 1, everything else N(0, 0.05^2) (biases and tokens included, so no
/// parameter is trivially zero). Returns `(key, f32 CPU tensor)` pairs.
pub(crate) fn random_tensors(vs: &nn::VarStore, seed: u64) -> Vec<(String, Tensor)> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    tch::manual_seed(seed as i64);
    vars.into_iter()
        .map(|(name, v)| {
            let noise = Tensor::randn(v.size(), (Kind::Float, tch::Device::Cpu));
            let near_one = (name.contains("norm") && name.ends_with(".weight") && v.dim() == 1)
                || name.ends_with("lambda1");
            let t = if near_one {
                noise * 0.1 + 1.0
            } else {
                noise * 0.05
            };
            (name, t.contiguous())
        })
        .collect()
}

/// Random tensors for extra keys that our model does not build (a predictor, a classifier head).
pub(crate) fn random_extra(shapes: &[(String, Vec<i64>)], seed: u64) -> Vec<(String, Tensor)> {
    tch::manual_seed(seed as i64);
    shapes
        .iter()
        .map(|(k, s)| {
            let t = Tensor::randn(s.as_slice(), (Kind::Float, tch::Device::Cpu)) * 0.05;
            (k.clone(), t)
        })
        .collect()
}

/// `config` serialised, plus the fields `transformers` needs to pick the class.
pub(crate) fn config_json<C: serde::Serialize>(
    config: &C,
    model_type: &str,
    architecture: &str,
) -> Result<serde_json::Value> {
    let mut v = serde_json::to_value(config).map_err(|e| Error::Msg(e.to_string()))?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| Error::Msg("config did not serialise to an object".into()))?;
    obj.insert("model_type".into(), model_type.into());
    obj.insert("architectures".into(), serde_json::json!([architecture]));
    // the key's place in config.json (serde_json keeps insertion order); `save_folder` sets it
    obj.insert("torch_dtype".into(), "float32".into());
    obj.insert("transformers_version".into(), "4.57.1".into());
    Ok(v)
}

/// Writes `dir/config.json` (with `torch_dtype` of `kind`) and `dir/model.safetensors`, the
/// floating-point weights stored in `kind`.
pub(crate) fn save_folder(
    dir: &Path,
    mut config: serde_json::Value,
    tensors: &[(String, Tensor)],
    kind: Kind,
) -> Result<()> {
    config["torch_dtype"] = match kind {
        Kind::Float => "float32",
        Kind::BFloat16 => "bfloat16",
        Kind::Half => "float16",
        k => return Err(Error::Msg(format!("cannot store weights as {k:?}"))),
    }
    .into();
    // `to_kind` to the tensor's own kind is a no-op view
    let tensors: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(k, t)| {
            let t = if t.is_floating_point() {
                t.to_kind(kind)
            } else {
                t.shallow_clone()
            };
            (k.clone(), t)
        })
        .collect();
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let cfg = dir.join("config.json");
    let text = serde_json::to_string_pretty(&config).map_err(|e| Error::Msg(e.to_string()))?;
    std::fs::write(&cfg, text + "\n").map_err(|e| Error::io(&cfg, e))?;
    write_safetensors(&dir.join("model.safetensors"), &tensors)
}

/// Writes tensors as safetensors with `{"format": "pt"}` metadata (what `save_pretrained`
/// writes; transformers refuses files without a known format).
pub fn write_safetensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    let mut sorted: Vec<&(String, Tensor)> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!({ "format": "pt" }));
    let mut data: Vec<u8> = Vec::new();
    for (name, t) in sorted {
        let t = t.to_device(tch::Device::Cpu).contiguous();
        let (dtype, size) = match t.kind() {
            Kind::Float => ("F32", 4),
            Kind::BFloat16 => ("BF16", 2),
            Kind::Half => ("F16", 2),
            Kind::Int64 => ("I64", 8),
            k => return Err(Error::Msg(format!("{name}: cannot write dtype {k:?}"))),
        };
        let n = t.numel();
        let mut bytes = vec![0u8; n * size];
        t.f_copy_data_u8(&mut bytes, n)?;
        let start = data.len();
        data.extend_from_slice(&bytes);
        header.insert(
            name.clone(),
            serde_json::json!({
                "dtype": dtype,
                "shape": t.size(),
                "data_offsets": [start, data.len()],
            }),
        );
    }
    let mut h = serde_json::to_vec(&serde_json::Value::Object(header))
        .map_err(|e| Error::Msg(e.to_string()))?;
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + h.len() + data.len());
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(&data);
    std::fs::write(path, out).map_err(|e| Error::io(path, e))
}

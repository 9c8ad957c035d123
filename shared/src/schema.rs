//! The feature store's schema, shared by the writer (`extract run`, the synthetic stores) and
//! every reader (the feeder, heads, scoring): array names, the sample table of the group
//! attributes, the one [`Split`] enum, and the CLIP text embedding.
//!
//! Sample table (group attribute `samples`, one row per sample in store order):
//! `{key, id, class_code, class_name, split, session}`; `class_code`/`class_name` are `null` for
//! an unlabelled sample (split `UNLABELLED`).
use crate::store::StoreReader;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use tch::Tensor;

/// `[W, Na, Da]` AST last hidden state per window.
pub const AUDIO_TOKENS: &str = "audio/tokens";
/// `[W]` window start times (s).
pub const AUDIO_STARTS: &str = "audio/window_start_s";
/// `[Tv, Dv]` V-JEPA 2 last hidden state.
pub const VIDEO_TOKENS: &str = "video/tokens";
/// `[N, Di]` DINOv3 features of N video frames (sampled uniformly over the clip like the V-JEPA 2
/// frames), hidden-state index `frame_dino.layer`, mean over all tokens of each frame.
pub const VIDEO_FRAME_DINO: &str = "video/frame_dino";
/// `[T, F]` log-mel spectrogram of the whole clip (fixed length `spectrogram.clip_seconds`:
/// T = 1 + clip_samples / hop frames, F = n_mels), `ln(mel power + log_offset)`.
pub const AUDIO_SPECTROGRAM: &str = "audio/spectrogram";
/// `[2]` f32 per sample: (the clip's duration in seconds before it was cropped or padded to
/// `spectrogram.clip_seconds`, the number of `audio/spectrogram` frames centred in real audio;
/// frames from there on are padding of silence).
pub const AUDIO_SPECTROGRAM_CLIP: &str = "audio/spectrogram_clip";
/// `[L+1, V, 2 (mean, max), Di]` DINOv3 every hidden state pooled over all tokens per view.
pub const IMAGE_POOLED: &str = "image/pooled";
/// `[L, C]` sensors resampled to L steps.
pub const SENSOR_RAW: &str = "sensor/raw";
/// The store-level array with the CLIP text embedding of the prompt (`[feature]`, f32).
pub const TEXT_FILE: &str = crate::store::TEXT_EMBED;
/// Group attribute holding the sample table.
pub const SAMPLES_ATTR: &str = "samples";

/// The group attribute holding a stage's provenance (on the stage's zarr group, e.g. `image`):
/// backbone config, weights' SHA-256, preprocessing, layers, dtype.
pub const PROVENANCE_ATTR: &str = "provenance";

/// Provenance fields that may differ between two extractions with the same settings (where the
/// model folder is, which tool version ran, which device); everything else must be equal.
pub const PROVENANCE_VOLATILE: [&str; 3] = ["model_dir", "tool_version", "device"];

/// `v` without the [`PROVENANCE_VOLATILE`] fields, at any depth of objects.
pub fn strip_volatile(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !PROVENANCE_VOLATILE.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), strip_volatile(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The zarr group holding the provenance of the stage that writes `array`: the stage's name,
/// which is the array's group for the original stages (`video/tokens` -> `video`) and its own
/// group for the stages that write into another stage's group (`video/frame_dino` ->
/// `frame_dino`, `audio/spectrogram*` -> `spectrogram`), so two stages never share (and race on)
/// one group's attributes.
pub fn provenance_group(array: &str) -> &str {
    match array {
        VIDEO_FRAME_DINO => "frame_dino",
        AUDIO_SPECTROGRAM | AUDIO_SPECTROGRAM_CLIP => "spectrogram",
        other => other.split('/').next().unwrap_or(other),
    }
}

/// The first key path where `a` and `b` differ, with both values.
pub fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| {
                let p = format!("{path}.{k}");
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => first_difference(u, v, &p),
                    (u, v) => Some(format!("{p}: {} vs {}", show(u), show(v))),
                }
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (u, v))| first_difference(u, v, &format!("{path}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!("{path}: {} vs {}", show(Some(a)), show(Some(b)))),
    }
}

fn show(v: Option<&Value>) -> String {
    match v {
        None => "(absent)".into(),
        Some(v) => {
            let s = v.to_string();
            if s.len() > 80 {
                format!("{}...", &s[..80])
            } else {
                s
            }
        }
    }
}

/// Name of the token array of DINOv3 hidden-state index `layer`: `[V, Ntok, Di]`.
pub fn image_tokens_name(layer: i64) -> String {
    format!("image/tokens_L{layer}")
}

/// The hidden-state index of an `image/tokens_L{i}` array name.
pub fn image_tokens_layer(name: &str) -> Option<i64> {
    name.strip_prefix("image/tokens_L")?.parse().ok()
}

/// Dataset split of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Split {
    Train,
    Val,
    Test,
    /// New recordings without labels (scoring).
    Unlabelled,
}

impl Split {
    /// The three labelled splits of the manifest, in order.
    pub const LABELLED: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    /// `"TRAIN" | "VAL" | "TEST" | "UNLABELLED"` (the manifest and store spelling).
    pub fn as_str(&self) -> &'static str {
        match self {
            Split::Train => "TRAIN",
            Split::Val => "VAL",
            Split::Test => "TEST",
            Split::Unlabelled => "UNLABELLED",
        }
    }

    /// Position of the split in [`Split::LABELLED`] order (UNLABELLED = 3).
    pub fn slot(&self) -> usize {
        match self {
            Split::Train => 0,
            Split::Val => 1,
            Split::Test => 2,
            Split::Unlabelled => 3,
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Split {
    type Err = Error;
    /// Case-insensitive `TRAIN`, `VAL` (or `VALID`, `VALIDATION`), `TEST`, `UNLABELLED`
    /// (or `UNLABELED`).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "TRAIN" => Ok(Split::Train),
            "VAL" | "VALID" | "VALIDATION" => Ok(Split::Val),
            "TEST" => Ok(Split::Test),
            "UNLABELLED" | "UNLABELED" => Ok(Split::Unlabelled),
            other => Err(Error::Msg(format!(
                "unknown split {other:?} (expected TRAIN, VAL, TEST or UNLABELLED)"
            ))),
        }
    }
}

impl Serialize for Split {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Split {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One row of the store's sample table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleRow {
    /// unique key: the sample folder relative to the data root (`SUBDIRS`)
    pub key: String,
    /// sample id `MM-DD-YY-NNNN-CC` (not unique)
    pub id: String,
    /// class code 0..=11 (0 = good); `None` when unlabelled
    pub class_code: Option<u8>,
    /// class name; `None` when unlabelled
    pub class_name: Option<String>,
    pub split: Split,
    /// recording session (`DIRECTORY`)
    pub session: Option<String>,
}

impl SampleRow {
    /// Checks the row on its own: a labelled split needs a class code and name, UNLABELLED has
    /// neither.
    fn check(&self, i: usize, path: &Path) -> Result<()> {
        let bad = |m: String| {
            Err(Error::Msg(format!(
                "{}: sample {i} (`{}`) of the `{SAMPLES_ATTR}` table: {m}",
                path.display(),
                self.key
            )))
        };
        match (self.split, self.class_code, &self.class_name) {
            (Split::Unlabelled, None, None) => Ok(()),
            (Split::Unlabelled, _, _) => bad("an UNLABELLED sample has no class".into()),
            (_, Some(_), Some(_)) => Ok(()),
            (s, _, _) => bad(format!("a {s} sample needs class_code and class_name")),
        }
    }
}

/// Reads and checks the sample table the writer recorded in the store's attributes (one row
/// per sample; keys unique; a class code always carries the same name).
pub fn sample_table(reader: &StoreReader) -> Result<Vec<SampleRow>> {
    let path = reader.path();
    let v = reader.attrs().get(SAMPLES_ATTR).ok_or_else(|| {
        Error::Msg(format!(
            "{}: no `{SAMPLES_ATTR}` table in the store attributes",
            path.display()
        ))
    })?;
    let rows: Vec<SampleRow> = serde_json::from_value(v.clone()).map_err(|e| {
        Error::Msg(format!(
            "{}: bad `{SAMPLES_ATTR}` table: {e}",
            path.display()
        ))
    })?;
    if rows.len() != reader.n_samples() {
        return Err(Error::Msg(format!(
            "{}: sample table has {} rows for {} samples",
            path.display(),
            rows.len(),
            reader.n_samples()
        )));
    }
    let mut keys = std::collections::HashSet::new();
    let mut names: std::collections::HashMap<u8, &str> = Default::default();
    for (i, r) in rows.iter().enumerate() {
        r.check(i, path)?;
        if !keys.insert(r.key.as_str()) {
            return Err(Error::Msg(format!(
                "{}: sample key `{}` appears twice in the `{SAMPLES_ATTR}` table",
                path.display(),
                r.key
            )));
        }
        if let (Some(c), Some(n)) = (r.class_code, r.class_name.as_deref()) {
            let first = *names.entry(c).or_insert(n);
            if first != n {
                return Err(Error::Msg(format!(
                    "{}: sample {i} (`{}`): class code {c} is named `{n}`, earlier `{first}`",
                    path.display(),
                    r.key
                )));
            }
        }
    }
    Ok(rows)
}

/// The prompt embedding of the store array `text/embed` ([dim] f32 on the CPU) and its chunk
/// bytes (read by [`crate::store::read_text_embed`]).
pub fn text_embedding(store: &Path) -> Result<(Tensor, Vec<u8>)> {
    let v = crate::store::read_text_embed(&StoreReader::open(store)?)?;
    Ok((Tensor::from_slice(&v.values), v.bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_spellings() {
        for s in ["TRAIN", "VAL", "TEST", "UNLABELLED"] {
            assert_eq!(s.parse::<Split>().unwrap().as_str(), s);
        }
        assert_eq!("valid".parse::<Split>().unwrap(), Split::Val);
        assert_eq!("Validation".parse::<Split>().unwrap(), Split::Val);
        assert_eq!("unlabeled".parse::<Split>().unwrap(), Split::Unlabelled);
        assert!("DEV".parse::<Split>().is_err());
        let row: SampleRow = serde_json::from_str(
            r#"{"key":"a/b","id":"b","class_code":null,"class_name":null,"split":"UNLABELLED","session":null}"#,
        )
        .unwrap();
        assert_eq!(row.split, Split::Unlabelled);
        assert!(row.check(0, Path::new("s")).is_ok());
    }
}

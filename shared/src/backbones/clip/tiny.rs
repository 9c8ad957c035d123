//! A tiny random CLIP text model folder in the Hugging Face layout (`config.json` of a
//! `CLIPTextModelWithProjection`, `model.safetensors` with HF key names, and a valid CLIP-style
//! byte-level BPE tokenizer: `tokenizer.json`, `vocab.json`, `merges.txt`, `tokenizer_config.json`,
//! `special_tokens_map.json`), so demos and tests run with no download. transformers loads it with
//! `CLIPTextModelWithProjection.from_pretrained` and `CLIPTokenizerFast.from_pretrained`.
//!
//! The vocabulary is CLIP's layout: 256 byte symbols, the same 256 with `</w>`, then one token per
//! merge (merges spell out a small list of weld-related words), then `<|startoftext|>` and
//! `<|endoftext|>`.
use super::{ClipText, ClipTextConfig};
use crate::{Error, Result};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use tch::{nn, Kind, Tensor};

/// Words the tiny tokenizer's merges spell out (anything else falls back to smaller pieces).
const WORDS: &[&str] = &[
    "a",
    "an",
    "the",
    "of",
    "photo",
    "normal",
    "weld",
    "welding",
    "welded",
    "defect",
    "defective",
    "good",
    "bad",
    "seam",
    "bead",
    "crack",
    "porosity",
    "spatter",
    "burn",
    "through",
    "undercut",
    "lack",
    "fusion",
    "penetration",
    "excessive",
    "arc",
    "metal",
    "steel",
    "joint",
    "clean",
    "smooth",
    "rough",
    "hole",
    "with",
    "and",
    "no",
    "is",
    "anomaly",
];

/// GPT-2 / CLIP `bytes_to_unicode`: the printable symbol standing for each byte.
fn bytes_to_unicode() -> Vec<(u8, char)> {
    let mut bs: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    bs.into_iter()
        .zip(cs)
        .map(|(b, c)| (b as u8, char::from_u32(c).expect("valid code point")))
        .collect()
}

/// The tiny vocabulary (token -> id, in id order) and its merges.
fn tiny_vocab() -> (Vec<String>, Vec<(String, String)>) {
    let symbols: Vec<String> = bytes_to_unicode()
        .into_iter()
        .map(|(_, c)| c.to_string())
        .collect();
    let mut vocab: Vec<String> = symbols.clone();
    vocab.extend(symbols.iter().map(|s| format!("{s}</w>")));
    let mut seen: HashSet<String> = vocab.iter().cloned().collect();
    let mut merges = Vec::new();
    for word in WORDS {
        let chars: Vec<String> = word.chars().map(|c| c.to_string()).collect();
        if chars.len() < 2 {
            continue;
        }
        // chain merges left to right: ((w e) l) d</w>
        let mut acc = chars[0].clone();
        for (i, c) in chars.iter().enumerate().skip(1) {
            let right = if i + 1 == chars.len() {
                format!("{c}</w>")
            } else {
                c.clone()
            };
            let merged = format!("{acc}{right}");
            if seen.insert(merged.clone()) {
                merges.push((acc.clone(), right));
                vocab.push(merged.clone());
            }
            acc = merged;
        }
    }
    vocab.push("<|startoftext|>".into());
    vocab.push("<|endoftext|>".into());
    (vocab, merges)
}

/// The tiny tokenizer's `tokenizer.json` (CLIP's normalizer, pre-tokenizer, post-processor and
/// decoder, as transformers' `CLIPConverter` writes them) and its vocabulary size.
pub fn tiny_tokenizer_json() -> (serde_json::Value, usize) {
    let (vocab, merges) = tiny_vocab();
    let n = vocab.len();
    let (bos, eos) = (n - 2, n - 1);
    let vocab_map: serde_json::Map<String, serde_json::Value> = vocab
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect();
    let merges: Vec<serde_json::Value> = merges.iter().map(|(a, b)| json!([a, b])).collect();
    let special = |id: usize, content: &str| {
        json!({"id": id, "content": content, "single_word": false, "lstrip": false,
               "rstrip": false, "normalized": true, "special": true})
    };
    let tok = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [special(bos, "<|startoftext|>"), special(eos, "<|endoftext|>")],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFC"},
            {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "},
            {"type": "Lowercase"}
        ]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split",
             "pattern": {"Regex": "'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+"},
             "behavior": "Removed", "invert": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
        ]},
        "post_processor": {"type": "RobertaProcessing", "sep": ["<|endoftext|>", eos],
            "cls": ["<|startoftext|>", bos], "trim_offsets": false, "add_prefix_space": false},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true,
            "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": "<|endoftext|>",
            "continuing_subword_prefix": "", "end_of_word_suffix": "</w>", "fuse_unk": false,
            "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab_map, "merges": merges}
    });
    (tok, n)
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

fn write_json(path: &Path, v: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(v)
        .map_err(|e| Error::Msg(format!("{}: {e}", path.display())))?;
    write(path, &text)
}

/// Writes a tiny random `CLIPTextModelWithProjection` folder to `dir` (created if needed):
/// 2 layers, hidden 32, 4 heads, MLP 64, projection 16, 77 positions, weights drawn from a
/// ChaCha8 generator seeded with `seed` (same seed, same bytes).
pub fn write_tiny(dir: &Path, seed: u64) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let (tok, vocab_size) = tiny_tokenizer_json();
    let cfg = ClipTextConfig {
        vocab_size: vocab_size as i64,
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        max_position_embeddings: 77,
        hidden_act: "quick_gelu".into(),
        layer_norm_eps: 1e-5,
        projection_dim: 16,
        bos_token_id: vocab_size as i64 - 2,
        eos_token_id: vocab_size as i64 - 1,
        pad_token_id: 1,
    };

    // weights: build the modules with their HF names, fill them deterministically
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let _ = ClipText::build(&vs.root(), &cfg);
    let vars: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let normal = Normal::new(0.0f32, 1.0).expect("valid normal");
    let mut named = Vec::with_capacity(vars.len());
    for (name, var) in &vars {
        let shape = var.size();
        let numel: i64 = shape.iter().product();
        let z: Vec<f32> = (0..numel).map(|_| normal.sample(&mut rng)).collect();
        let z = Tensor::from_slice(&z).view(shape.as_slice());
        let is_norm = name.contains("layer_norm");
        let t = if is_norm && name.ends_with(".weight") {
            z * 0.1 + 1.0
        } else if name.contains("embedding") {
            z * 0.5
        } else if name.ends_with(".bias") {
            z * 0.05
        } else {
            // linear weights: variance-preserving scale
            let fan_in = *shape.last().unwrap_or(&1) as f64;
            z * fan_in.powf(-0.5)
        };
        named.push((name.clone(), t.to_kind(Kind::Float)));
    }
    let st = dir.join("model.safetensors");
    Tensor::write_safetensors(&named, &st)
        .map_err(|e| Error::Msg(format!("{}: cannot write safetensors: {e}", st.display())))?;

    let mut config = serde_json::to_value(&cfg).expect("config serialises");
    let obj = config.as_object_mut().expect("object");
    obj.insert(
        "architectures".into(),
        json!(["CLIPTextModelWithProjection"]),
    );
    obj.insert("model_type".into(), json!("clip_text_model"));
    obj.insert("torch_dtype".into(), json!("float32"));
    obj.insert("transformers_version".into(), json!("4.57.1"));
    write_json(&dir.join("config.json"), &config)?;

    // tokenizer files
    write_json(&dir.join("tokenizer.json"), &tok)?;
    write_json(&dir.join("vocab.json"), &tok["model"]["vocab"])?;
    let (_, merges) = tiny_vocab();
    let mut m = String::from("#version: 0.2\n");
    for (a, b) in &merges {
        m.push_str(&format!("{a} {b}\n"));
    }
    write(&dir.join("merges.txt"), &m)?;
    let special = |c: &str| {
        json!({"content": c, "lstrip": false, "normalized": true, "rstrip": false,
               "single_word": false})
    };
    write_json(
        &dir.join("special_tokens_map.json"),
        &json!({"bos_token": special("<|startoftext|>"), "eos_token": special("<|endoftext|>"),
                "pad_token": "<|endoftext|>", "unk_token": special("<|endoftext|>")}),
    )?;
    write_json(
        &dir.join("tokenizer_config.json"),
        &json!({"tokenizer_class": "CLIPTokenizer", "bos_token": "<|startoftext|>",
                "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>", "model_max_length": 77, "errors": "replace",
                "clean_up_tokenization_spaces": false}),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_is_a_bijection() {
        let t = bytes_to_unicode();
        assert_eq!(t.len(), 256);
        let chars: HashSet<char> = t.iter().map(|(_, c)| *c).collect();
        assert_eq!(chars.len(), 256);
        assert_eq!(t[0], (b'!', '!'));
        // byte 0 is the first non-printable one: U+0100
        assert!(t.contains(&(0u8, '\u{100}')));
        assert!(t.contains(&(b' ', '\u{120}')));
    }

    #[test]
    fn tiny_vocab_layout() {
        let (vocab, merges) = tiny_vocab();
        assert_eq!(vocab.len(), 512 + merges.len() + 2);
        assert_eq!(vocab[256], "!</w>");
        assert!(vocab.contains(&"weld</w>".to_string()));
        assert_eq!(vocab.last().unwrap(), "<|endoftext|>");
    }
}

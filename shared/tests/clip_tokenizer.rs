//! The CLIP tokenizer (`backbones::clip::ClipTokenizer`) on the real CLIP vocabulary, built by
//! `tests/oracle/clip_vocab.sh` from the merges file shipped in the open_clip_torch wheel (cached
//! under `.venv/cache/`; the first run downloads the wheel with pip), compared with
//! `CLIPTokenizerFast` and the slow `CLIPTokenizer` of transformers 4.57.1.
#![cfg(feature = "extract")]

use std::path::{Path, PathBuf};
use std::process::Command;
use weld_cache::backbones::clip::ClipTokenizer;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> PathBuf {
    std::env::var("WELD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join(".venv/bin/python"))
}

/// Runs clip_vocab.sh (idempotent) and returns the tokenizer folder it prints.
fn clip_tokenizer_dir() -> PathBuf {
    let out = Command::new("bash")
        .arg(root().join("tests/oracle/clip_vocab.sh"))
        .env("WELD_PYTHON", python())
        .output()
        .expect("cannot run bash");
    assert!(
        out.status.success(),
        "clip_vocab.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    PathBuf::from(
        stdout
            .lines()
            .last()
            .expect("clip_vocab.sh printed nothing")
            .trim(),
    )
}

#[test]
fn real_clip_vocabulary_matches_transformers() {
    let dir = clip_tokenizer_dir();
    let tok = ClipTokenizer::from_file(&dir.join("tokenizer.json")).unwrap();
    assert_eq!(
        tok.encode("a normal weld").unwrap(),
        [49406, 320, 5967, 39776, 49407]
    );

    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("ids.json");
    let status = Command::new(python())
        .arg(root().join("tests/oracle/clip_tokenize.py"))
        .arg(&dir)
        .arg(&json)
        .status()
        .unwrap();
    assert!(status.success(), "clip_tokenize.py failed");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let texts = v["texts"].as_array().unwrap();
    assert!(texts.len() >= 30);
    let mut same_as_slow = 0;
    for (i, text) in texts.iter().enumerate() {
        let text = text.as_str().unwrap();
        let ours = tok.encode(text).unwrap();
        let fast: Vec<i64> = serde_json::from_value(v["fast"][i].clone()).unwrap();
        let slow: Vec<i64> = serde_json::from_value(v["slow"][i].clone()).unwrap();
        assert_eq!(ours, fast, "{text:?}: ours vs CLIPTokenizerFast");
        assert_eq!(*ours.first().unwrap(), 49406);
        assert_eq!(*ours.last().unwrap(), 49407);
        if ours == slow {
            same_as_slow += 1;
        } else {
            println!("differs from the slow tokenizer (ftfy-less BasicTokenizer): {text:?}");
        }
    }
    println!(
        "{} strings equal CLIPTokenizerFast; {same_as_slow} also equal the slow CLIPTokenizer",
        texts.len()
    );
    // the slow tokenizer is an independent BPE implementation: the plain ASCII strings must agree
    assert!(same_as_slow >= texts.len() - 8);
}

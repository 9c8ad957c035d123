//! Store parity with Python `zarr` 3 (oracle: tests/oracle/store_roundtrip.py, venv Python).
//! Rust -> Python: a store written here (f16 and f32 arrays, nested names, an all-zero sample,
//! rounding ties, subnormals, the f16 extremes) is read by zarr bit-exactly, and numpy's f16 cast
//! of the same inputs gives the same bits. Python -> Rust: a group zarr writes with the same
//! layout is read by `StoreReader` bit-exactly; a sample zarr never wrote is an error, not zeros.
use std::path::{Path, PathBuf};
use std::process::Command;

use half::f16;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use weld_cache::store::{ArraySpec, FeatureStore, StoreDtype, StoreError, StoreReader};
use weld_cache::Error;

fn python() -> PathBuf {
    std::env::var_os("WELD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"))
}

fn oracle(mode: &str, store: &Path, out: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/oracle/store_roundtrip.py");
    let o = Command::new(python())
        .arg(&script)
        .arg(mode)
        .arg(store)
        .arg(out)
        .output()
        .expect("spawn the venv python (WELD_PYTHON)");
    assert!(
        o.status.success(),
        "oracle {mode} failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// Sample values with edge cases for the f16 cast.
fn sample_values(rng: &mut rand_chacha::ChaCha8Rng, len: usize, k: usize) -> Vec<f32> {
    let special = [
        1.0 + 2f32.powi(-11),       // tie: rounds to even (1.0)
        1.0 + 3.0 * 2f32.powi(-11), // tie: rounds up
        65504.0,
        -65504.0,
        6.0e-8, // f16 subnormal
        1.0e-9, // underflows to 0
        -0.0,
        0.1,
    ];
    (0..len)
        .map(|j| {
            if (j + k).is_multiple_of(5) {
                special[(j + k) % special.len()]
            } else {
                let scale = [1e-5f32, 1e-2, 1.0, 300.0, 2e4][j % 5];
                let x: f32 = rng.random_range(-1.0..1.0);
                x * scale
            }
        })
        .collect()
}

#[test]
fn rust_store_reads_in_python_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("feat.zarr");
    let out = dir.path().join("out");
    std::fs::create_dir_all(out.join("inputs")).unwrap();
    let n = 4;
    let mut attrs = Map::new();
    attrs.insert("samples".into(), json!([{"id": "a"}, {"id": "b"}]));
    attrs.insert(
        "provenance".into(),
        json!({"tool": "test", "sha256": "00ff"}),
    );
    let store = FeatureStore::create(&store_path, n, attrs.clone()).unwrap();
    let specs = [
        ArraySpec::new("video/tokens", &[6, 8], StoreDtype::F16),
        ArraySpec::new("image/tokens_L20", &[2, 3, 5], StoreDtype::F16),
        ArraySpec::new("sensor", &[6, 16], StoreDtype::F32),
        ArraySpec::new("text_embeds", &[12], StoreDtype::F32),
    ];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    for spec in &specs {
        store.ensure_array(spec).unwrap();
        let len = spec.sample_len();
        let mut all = Vec::with_capacity(n * len);
        for i in 0..n {
            let data = if i == 2 {
                vec![0.0; len] // all-zero sample: the chunk file must exist anyway
            } else {
                sample_values(&mut rng, len, i)
            };
            store.write_sample(&spec.name, i, &data).unwrap();
            store.mark_done(&spec.name, i).unwrap();
            all.extend_from_slice(&data);
        }
        let flat = spec.name.replace('/', "__");
        std::fs::write(
            out.join("inputs").join(format!("{flat}.f32")),
            bytemuck::cast_slice::<f32, u8>(&all),
        )
        .unwrap();
        // Expected stored bytes, from the inputs, independently of the store.
        let expected: Vec<u8> = match spec.dtype {
            StoreDtype::F16 => all
                .iter()
                .flat_map(|&x| f16::from_f32(x).to_le_bytes())
                .collect(),
            _ => all.iter().flat_map(|&x| x.to_le_bytes()).collect(),
        };
        std::fs::write(out.join(format!("{flat}.expected")), &expected).unwrap();
    }
    let zero_chunk = store_path.join("sensor/c/2/0/0");
    assert_eq!(std::fs::metadata(&zero_chunk).unwrap().len(), 6 * 16 * 4);

    oracle("read", &store_path, &out);
    let got = read_json(&out.join("read.json"));
    assert_eq!(got["warnings"], json!([]), "python zarr warned");
    assert_eq!(got["attrs"]["samples"], attrs["samples"]);
    assert_eq!(got["attrs"]["provenance"], attrs["provenance"]);
    let arrays = got["arrays"].as_object().unwrap();
    assert_eq!(arrays.len(), specs.len(), "python lists {arrays:?}");
    for spec in &specs {
        let info = &arrays[&spec.name];
        let flat = spec.name.replace('/', "__");
        let mut shape = vec![n];
        shape.extend(&spec.sample_shape);
        assert_eq!(info["shape"], json!(shape), "{}", spec.name);
        assert_eq!(info["compressors"], json!([]), "{}", spec.name);
        let py = std::fs::read(out.join(format!("{flat}.bin"))).unwrap();
        let expected = std::fs::read(out.join(format!("{flat}.expected"))).unwrap();
        assert!(
            py == expected,
            "{}: python bytes differ from the f16/f32 inputs",
            spec.name
        );
        assert_eq!(info["numpy_cast_bit_exact"], json!(true), "{}", spec.name);
        let diff = info["max_abs_diff_vs_input"].as_f64().unwrap();
        eprintln!(
            "{}: python read exact; max |stored - input| = {diff:e}",
            spec.name
        );
        if spec.dtype == StoreDtype::F32 {
            assert_eq!(diff, 0.0);
        }
    }

    // Our reader sees the same bytes.
    let reader = StoreReader::open(&store_path).unwrap();
    assert!(reader.has_markers());
    for spec in &specs {
        let a = reader.array(&spec.name).unwrap();
        let expected =
            std::fs::read(out.join(format!("{}.expected", spec.name.replace('/', "__")))).unwrap();
        let nb = spec.chunk_nbytes();
        for i in 0..n {
            let chunk = a.sample_bytes(i).unwrap();
            assert_eq!(&chunk[..], &expected[i * nb..(i + 1) * nb]);
        }
    }
}

/// A store as `extract run` writes it (the synthetic store mimics it: sample table and
/// coordinates, markers, `text/embed`), plus provenance and a report in group attributes and a
/// fault marker: Python `zarr` lists and reads every array with no warning, and xarray opens it
/// with named dimensions and the sample coordinates.
#[test]
fn extract_layout_opens_cleanly_in_zarr_and_xarray() {
    use weld_cache::features::synth_store::{write_synth_store, SynthStoreSpec};
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("synth.zarr");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let spec = SynthStoreSpec {
        n_train: 3,
        n_val: 2,
        n_test: 2,
        ..Default::default()
    };
    write_synth_store(&store_path, &spec).unwrap();
    let s = FeatureStore::open(&store_path).unwrap();
    let mut prov = Map::new();
    prov.insert(
        "provenance".into(),
        json!({"weights": [{"file": "m", "sha256": "00"}]}),
    );
    s.write_group_attrs("video", prov).unwrap();
    let mut rep = Map::new();
    rep.insert("report".into(), json!({"faults": [], "samples": 7}));
    s.write_group_attrs("reports/extract", rep).unwrap();
    s.ensure_array(&ArraySpec::new("extra/late", &[3], StoreDtype::F32))
        .unwrap();
    s.mark_faulted("extra/late", 1, &json!({"sample": "x", "error": "broken"}))
        .unwrap();
    assert!(store_path
        .join("extra/late/_markers/1.fault.json")
        .is_file());

    oracle("read", &store_path, &out);
    let got = read_json(&out.join("read.json"));
    assert_eq!(
        got["warnings"],
        json!([]),
        "python zarr warned: {}",
        got["warnings"]
    );
    let arrays = got["arrays"].as_object().unwrap();
    let mut names: Vec<&str> = arrays.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "audio/spectrogram",
            "audio/tokens",
            "audio/window_start_s",
            "class_code",
            "extra/late",
            "image/pooled",
            "image/tokens_L1",
            "image/tokens_L2",
            "sample",
            "sensor/raw",
            "split",
            "text/embed",
            "video/frame_dino",
            "video/tokens"
        ]
    );
    let keys: Vec<String> = got["attrs"]["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(arrays["sample"]["values"], json!(keys));
    assert_eq!(arrays["split"]["values"][0], json!("TRAIN"));
    assert_eq!(arrays["class_code"]["dimension_names"], json!(["sample"]));
    assert_eq!(
        arrays["image/pooled"]["dimension_names"],
        json!(["sample", "layer", "view", "stat", "feature"])
    );
    assert_eq!(arrays["text/embed"]["dimension_names"], json!(["feature"]));
    assert_eq!(
        got["groups"]["video"]["provenance"]["weights"][0]["sha256"],
        json!("00")
    );
    assert_eq!(
        got["groups"]["reports/extract"]["report"]["samples"],
        json!(7)
    );
    // The text embedding Python reads is the one the heads read.
    let (emb, _) = weld_cache::schema::text_embedding(&store_path).unwrap();
    let py = std::fs::read(out.join("text__embed.bin")).unwrap();
    let e: Vec<f32> = Vec::try_from(emb).unwrap();
    assert_eq!(py, bytemuck::cast_slice::<f32, u8>(&e));

    oracle("xarray", &store_path, &out);
    let x = read_json(&out.join("xarray.json"));
    eprintln!("xarray {}: {}", x["xarray"], x["tree"]["/video"]);
    assert_eq!(x["warnings"], json!([]), "xarray warned: {}", x["warnings"]);
    let root = &x["root"];
    assert_eq!(root["dims"], json!({"sample": 7}));
    for c in ["sample", "class_code", "split"] {
        assert_eq!(root["coords"][c]["dims"], json!(["sample"]), "{c}: {root}");
    }
    assert_eq!(root["coords"]["sample"]["values"], json!(keys));
    let node = |p: &str| &x["tree"][p];
    assert_eq!(
        node("/video")["vars"]["tokens"]["dims"],
        json!(["sample", "token", "feature"])
    );
    assert_eq!(
        node("/audio")["vars"]["tokens"]["dims"],
        json!(["sample", "window", "token", "feature"])
    );
    assert_eq!(
        node("/image")["vars"]["tokens_L2"]["dims"],
        json!(["sample", "view", "token", "feature"])
    );
    assert_eq!(
        node("/sensor")["vars"]["raw"]["dims"],
        json!(["sample", "step", "channel"])
    );
    assert_eq!(node("/text")["vars"]["embed"]["dims"], json!(["feature"]));
    // Children inherit the root's sample index (the keys); xarray inherits indexed
    // coordinates only, so `split` and `class_code` are read from the root.
    assert_eq!(node("/video")["coords"]["sample"]["values"], json!(keys));
    assert_eq!(root["coords"]["split"]["values"][6], json!("TEST"));
    assert_eq!(root["coords"]["class_code"]["values"][0], json!("0"));
}

#[test]
fn python_store_reads_in_rust_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("py.zarr");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    oracle("write", &store_path, &out);
    let written = read_json(&out.join("written.json"));
    eprintln!("python zarr {}", written["zarr"]);

    let reader = StoreReader::open(&store_path).unwrap();
    assert!(!reader.has_markers(), "a python group has no markers");
    assert_eq!(reader.n_samples(), 5);
    assert_eq!(reader.attrs()["origin"], json!("python"));
    let names: Vec<String> = reader.specs().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["a16", "dots16", "nested/deeper/b32"]);
    let mut checked = 0;
    for (name, info) in written["arrays"].as_object().unwrap() {
        let a = reader.array(name).unwrap();
        let spec = a.spec().clone();
        let dtype = match info["dtype"].as_str().unwrap() {
            "float16" => StoreDtype::F16,
            _ => StoreDtype::F32,
        };
        assert_eq!(spec.dtype, dtype);
        let shape: Vec<usize> = serde_json::from_value(info["shape"].clone()).unwrap();
        assert_eq!(spec.sample_shape, shape[1..]);
        let expected = std::fs::read(out.join(format!("{}.bin", name.replace('/', "__")))).unwrap();
        let missing: Vec<usize> = serde_json::from_value(info["missing"].clone()).unwrap();
        let nb = spec.chunk_nbytes();
        let mut present = Vec::new();
        for i in 0..5 {
            if missing.contains(&i) {
                assert!(!a.is_done(i));
                let e = a
                    .sample_bytes(i)
                    .err()
                    .expect("missing chunk must be an error");
                assert!(
                    matches!(e, Error::Store(StoreError::Incomplete { index, .. }) if index == i),
                    "{e}"
                );
                let mut buf = vec![0f32; spec.sample_len()];
                assert!(a.read_f32(i, &mut buf).is_err());
                assert!(a.batch_tensor(&[0, i], tch::Device::Cpu).is_err());
                continue;
            }
            present.push(i);
            let want = &expected[i * nb..(i + 1) * nb];
            let chunk = a.sample_bytes(i).unwrap();
            assert_eq!(&chunk[..], want, "{name} sample {i}");
            let mut vals = vec![0f32; spec.sample_len()];
            a.read_f32(i, &mut vals).unwrap();
            let want_vals: Vec<f32> = match dtype {
                StoreDtype::F16 => want
                    .chunks_exact(2)
                    .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect(),
                _ => want
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            };
            assert_eq!(vals, want_vals, "{name} sample {i}");
            if i == 1 {
                assert!(vals.iter().all(|&x| x == 0.0));
            }
            checked += 1;
        }
        // A batch over the present samples equals the per-sample reads.
        let t = a.batch_tensor(&present, tch::Device::Cpu).unwrap();
        let mut tshape = vec![present.len() as i64];
        tshape.extend(spec.sample_shape.iter().map(|&d| d as i64));
        assert_eq!(t.size(), tshape);
        assert_eq!(t.kind(), tch::Kind::Float);
        let flat: Vec<f32> = Vec::try_from(t.flatten(0, -1)).unwrap();
        for (k, &i) in present.iter().enumerate() {
            let mut vals = vec![0f32; spec.sample_len()];
            a.read_f32(i, &mut vals).unwrap();
            let len = spec.sample_len();
            assert_eq!(&flat[k * len..(k + 1) * len], &vals[..]);
        }
    }
    assert_eq!(checked, 14);
    // Verify of a foreign group: readable, but not a weld-cache store.
    let report = weld_cache::store::verify(&store_path).unwrap();
    assert!(!report.sound());
}

/// A format-1 store (side files inside the group) is refused by the readers with the way out,
/// and `migrate` converts it in place: same chunks and markers, coordinates, `text/embed`,
/// provenance and reports in attributes, and Python `zarr` then lists it with no warning.
#[test]
fn format_1_store_is_refused_then_migrated() {
    use weld_cache::features::synth_store::{write_synth_store, SynthStoreSpec};
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("old.zarr");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let spec = SynthStoreSpec {
        n_train: 2,
        n_val: 2,
        n_test: 2,
        ..Default::default()
    };
    write_synth_store(&p, &spec).unwrap();
    let (emb, _) = weld_cache::schema::text_embedding(&p).unwrap();
    let emb: Vec<f32> = Vec::try_from(emb).unwrap();
    let before = StoreReader::open(&p).unwrap();
    let names: Vec<String> = before.specs().into_iter().map(|s| s.name).collect();
    let chunk = std::fs::read(p.join("video/tokens/c/3/0/0")).unwrap();
    // Rewrite it into the format-1 layout.
    std::fs::create_dir_all(p.join("_markers/image")).unwrap();
    for n in &names {
        std::fs::create_dir_all(p.join("_markers").join(n).parent().unwrap()).unwrap();
        std::fs::rename(p.join(n).join("_markers"), p.join("_markers").join(n)).unwrap();
        let mp = p.join(n).join("zarr.json");
        let mut m = read_json(&mp);
        m.as_object_mut().unwrap().remove("dimension_names");
        std::fs::write(&mp, serde_json::to_vec(&m).unwrap()).unwrap();
    }
    for c in ["sample", "class_code", "split", "text"] {
        std::fs::remove_dir_all(p.join(c)).unwrap();
    }
    std::fs::write(
        p.join("text_embed.json"),
        serde_json::to_vec(&json!({"prompt": "a normal weld", "dim": emb.len(), "embedding": emb}))
            .unwrap(),
    )
    .unwrap();
    std::fs::create_dir_all(p.join("provenance")).unwrap();
    std::fs::write(
        p.join("provenance/video.json"),
        br#"{"weights": [{"file": "w"}]}"#,
    )
    .unwrap();
    std::fs::write(p.join("extract_report.json"), br#"{"faults": []}"#).unwrap();
    let mut root = read_json(&p.join("zarr.json"));
    root["attributes"]["weld_cache_store"]["format_version"] = json!(1);
    root["attributes"]
        .as_object_mut()
        .unwrap()
        .remove("coordinates");
    std::fs::write(p.join("zarr.json"), serde_json::to_vec(&root).unwrap()).unwrap();

    let e = StoreReader::open(&p)
        .err()
        .expect("a format-1 store must be refused");
    assert!(
        matches!(e, Error::Store(StoreError::OldFormat { found: 1, .. })),
        "{e}"
    );
    assert!(e.to_string().contains("extract migrate --store"), "{e}");

    let r = weld_cache::store::migrate(&p).unwrap();
    assert_eq!(r.from_version, 1);
    assert_eq!(r.arrays, names.len());
    assert_eq!(r.markers_moved, names.len() * 6);
    assert_eq!(r.coordinates_written, ["sample", "class_code", "split"]);
    assert_eq!(r.provenance, ["video"]);
    assert!(r.text_embed);
    assert_eq!(r.reports, ["reports/extract"]);
    let after = StoreReader::open(&p).unwrap();
    assert_eq!(
        after.fingerprint(),
        before.fingerprint(),
        "same arrays and attributes"
    );
    assert!(after.array("video/tokens").unwrap().is_done(5));
    assert_eq!(
        std::fs::read(p.join("video/tokens/c/3/0/0")).unwrap(),
        chunk
    );
    assert_eq!(read_text_embed_values(&p), emb);
    assert_eq!(
        after.group_attrs("video").unwrap().unwrap()["provenance"]["weights"][0]["file"],
        json!("w")
    );
    assert!(weld_cache::store::verify(&p).unwrap().sound());
    for gone in [
        "_markers",
        "provenance",
        "text_embed.json",
        "extract_report.json",
    ] {
        assert!(!p.join(gone).exists(), "{gone} left behind");
    }
    // A second run changes nothing.
    let again = weld_cache::store::migrate(&p).unwrap();
    assert_eq!((again.markers_moved, again.text_embed), (0, false));
    oracle("read", &p, &out);
    let got = read_json(&out.join("read.json"));
    assert_eq!(
        got["warnings"],
        json!([]),
        "python zarr warned: {}",
        got["warnings"]
    );
}

fn read_text_embed_values(p: &Path) -> Vec<f32> {
    weld_cache::store::read_text_embed(&StoreReader::open(p).unwrap())
        .unwrap()
        .values
}

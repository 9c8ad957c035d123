//! Store behaviour in one process: zero-copy mapping, refusals, completion markers, creation
//! rules, batches (f16/bf16/f32, CPU and CUDA when present), fingerprints, side files, verify.
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};
use weld_cache::store::{
    verify, verify_with, ArraySpec, FeatureStore, ProblemKind, SampleWrite, StoreDtype, StoreError,
    StoreReader,
};
use weld_cache::Error;

fn attrs(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn values(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|j| (((j * 7919 + seed * 104729) % 2003) as f32 - 1001.0) / 37.0)
        .collect()
}

/// A store with `n` samples and one f16 array `feat` [3, 5], samples 0..n written and marked.
fn small_store(dir: &Path, n: usize) -> (PathBuf, FeatureStore) {
    let path = dir.join("s.zarr");
    let store = FeatureStore::create(&path, n, attrs(&[("k", json!(1))])).unwrap();
    store
        .ensure_array(&ArraySpec::new("feat", &[3, 5], StoreDtype::F16))
        .unwrap();
    for i in 0..n {
        store.write_sample("feat", i, &values(15, i)).unwrap();
        store.mark_done("feat", i).unwrap();
    }
    (path, store)
}

fn store_err(e: Error) -> StoreError {
    match e {
        Error::Store(s) => s,
        other => panic!("expected a store error, got {other}"),
    }
}

/// The `/proc/self/maps` line whose range holds `addr`, if any.
fn mapping_of(addr: usize) -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .find(|l| {
            let range = l.split_whitespace().next().unwrap();
            let (a, b) = range.split_once('-').unwrap();
            let (a, b) = (
                usize::from_str_radix(a, 16).unwrap(),
                usize::from_str_radix(b, 16).unwrap(),
            );
            a <= addr && addr < b
        })
        .map(str::to_string)
}

#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<FeatureStore>();
    check::<StoreReader>();
    check::<weld_cache::store::ArrayReader>();
    check::<weld_cache::store::MappedChunk>();
}

#[test]
fn layout_and_zero_copy_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _store) = small_store(dir.path(), 3);
    let meta: Value =
        serde_json::from_slice(&std::fs::read(path.join("feat/zarr.json")).unwrap()).unwrap();
    assert_eq!(meta["shape"], json!([3, 3, 5]));
    assert_eq!(meta["data_type"], json!("float16"));
    assert_eq!(
        meta["chunk_grid"]["configuration"]["chunk_shape"],
        json!([1, 3, 5])
    );
    assert_eq!(
        meta["codecs"],
        json!([{"name": "bytes", "configuration": {"endian": "little"}}])
    );
    let reader = StoreReader::open(&path).unwrap();
    let a = reader.array("feat").unwrap();
    let chunk_file = path.join("feat/c/1/0/0");
    assert_eq!(a.chunk_path(1), chunk_file);
    let on_disk = std::fs::read(&chunk_file).unwrap();
    let addr;
    {
        let chunk = a.sample_bytes(1).unwrap();
        assert_eq!(&chunk[..], &on_disk[..]);
        addr = chunk.as_bytes().as_ptr() as usize;
        let line = mapping_of(addr).expect("the slice lies in a mapping");
        let canon = std::fs::canonicalize(&chunk_file).unwrap();
        assert!(
            line.ends_with(canon.to_str().unwrap()),
            "slice at {addr:#x} is not inside the chunk's file mapping: {line}"
        );
        let typed = chunk.as_f16().unwrap();
        assert_eq!(
            typed.as_ptr() as usize,
            addr,
            "typed view is the same memory"
        );
        assert_eq!(
            typed[4].to_f32(),
            half::f16::from_f32(values(15, 1)[4]).to_f32()
        );
        assert!(chunk.as_f32().is_none());
    }
    // Dropped: the mapping is gone (no live map per chunk).
    let line = mapping_of(addr);
    assert!(
        line.as_ref().is_none_or(|l| !l.contains("c/1/0/0")),
        "mapping survived the drop: {line:?}"
    );
}

#[test]
fn refusals_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (path, store) = small_store(dir.path(), 3);
    store
        .ensure_array(&ArraySpec::new("wide", &[4], StoreDtype::F32))
        .unwrap();
    let marker_before = std::fs::read(path.join("feat/_markers/0.json")).unwrap();
    let chunk_before = std::fs::read(path.join("feat/c/0/0/0")).unwrap();
    let mut bad = values(15, 9);
    bad[6] = f32::NAN;
    let e = store_err(store.write_sample("feat", 0, &bad).unwrap_err());
    assert!(
        matches!(
            e,
            StoreError::NonFinite {
                index: 0,
                element: 6,
                ..
            }
        ),
        "{e}"
    );
    bad[6] = f32::NEG_INFINITY;
    assert!(matches!(
        store_err(store.write_sample("feat", 0, &bad).unwrap_err()),
        StoreError::NonFinite { element: 6, .. }
    ));
    bad[6] = 65520.0;
    let e = store_err(store.write_sample("feat", 0, &bad).unwrap_err());
    assert!(
        matches!(
            e,
            StoreError::Overflow {
                index: 0,
                element: 6,
                dtype: StoreDtype::F16,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("feat") && e.to_string().contains("sample 0"));
    // The done sample is untouched by the refused rewrites.
    assert_eq!(
        std::fs::read(path.join("feat/_markers/0.json")).unwrap(),
        marker_before
    );
    assert_eq!(
        std::fs::read(path.join("feat/c/0/0/0")).unwrap(),
        chunk_before
    );
    // A fresh sample refused: no chunk, no marker.
    let fresh = FeatureStore::create(&dir.path().join("t.zarr"), 2, Map::new()).unwrap();
    fresh
        .ensure_array(&ArraySpec::new("feat", &[2], StoreDtype::F16))
        .unwrap();
    assert!(fresh.write_sample("feat", 1, &[1.0, 1e5]).is_err());
    assert!(fresh
        .write_sample("feat", 1, &[f32::INFINITY, 0.0])
        .is_err());
    assert!(!dir.path().join("t.zarr/feat/c/1/0").exists());
    assert!(!fresh.is_done("feat", 1));
    assert!(matches!(
        store_err(fresh.mark_done("feat", 1).unwrap_err()),
        StoreError::MissingChunk { index: 1, .. }
    ));
    // f32 holds what f16 cannot, but not inf.
    store
        .write_sample("wide", 2, &[1e5, -7e4, 0.0, 3.0])
        .unwrap();
    assert!(store
        .write_sample("wide", 1, &[f32::INFINITY, 0.0, 0.0, 0.0])
        .is_err());
    // Wrong length, out of range, unknown array.
    assert!(matches!(
        store_err(store.write_sample("wide", 0, &[1.0]).unwrap_err()),
        StoreError::WrongLength {
            expected: 4,
            got: 1,
            ..
        }
    ));
    assert!(matches!(
        store_err(store.write_sample("wide", 3, &[0.0; 4]).unwrap_err()),
        StoreError::IndexOutOfRange { index: 3, .. }
    ));
    assert!(matches!(
        store_err(store.write_sample("nope", 0, &[0.0]).unwrap_err()),
        StoreError::NoSuchArray { .. }
    ));
}

/// Batched writes (one sync round per batch) store exactly what per-sample writes store, and
/// refuse as a whole: a bad item leaves every chunk and marker as it was.
#[test]
fn batched_writes_equal_single_writes() {
    let dir = tempfile::tempdir().unwrap();
    let specs = [
        ArraySpec::new("g/a", &[3, 5], StoreDtype::F16),
        ArraySpec::new("b", &[4], StoreDtype::F32),
    ];
    let open = |name: &str| {
        let s = FeatureStore::create(&dir.path().join(name), 4, Map::new()).unwrap();
        for spec in &specs {
            s.ensure_array(spec).unwrap();
        }
        s
    };
    let (single, batched) = (open("single.zarr"), open("batched.zarr"));
    let data: Vec<(&str, usize, Vec<f32>)> = (0..4)
        .flat_map(|i| [("g/a", i, values(15, i)), ("b", i, values(4, 10 + i))])
        .collect();
    for (a, i, d) in &data {
        single.write_sample(a, *i, d).unwrap();
        single.mark_done(a, *i).unwrap();
    }
    let items: Vec<SampleWrite> = data
        .iter()
        .map(|(array, index, d)| SampleWrite {
            array,
            index: *index,
            data: d,
        })
        .collect();
    batched.write_samples(&items).unwrap();
    assert!(!batched.is_done("g/a", 0), "written is not done");
    let pairs: Vec<(&str, usize)> = data.iter().map(|(a, i, _)| (*a, *i)).collect();
    batched.mark_done_many(&pairs).unwrap();
    for (a, i, _) in &data {
        let rel = format!("{a}/c/{i}/0{}", if *a == "b" { "" } else { "/0" });
        let one = std::fs::read(single.path().join(&rel)).unwrap();
        let many = std::fs::read(batched.path().join(&rel)).unwrap();
        assert_eq!(one, many, "{rel}");
        assert_eq!(
            single.marker(a, *i).unwrap(),
            batched.marker(a, *i).unwrap()
        );
        assert!(batched.marker(a, *i).unwrap().is_some());
    }

    // One non-finite item: nothing of the batch is written, done samples stay done.
    let chunk = batched.path().join("g/a/c/0/0/0");
    let before = std::fs::read(&chunk).unwrap();
    let mut bad = values(4, 99);
    bad[2] = f32::NAN;
    let fresh = values(15, 50);
    let e = batched
        .write_samples(&[
            SampleWrite {
                array: "g/a",
                index: 0,
                data: &fresh,
            },
            SampleWrite {
                array: "b",
                index: 1,
                data: &bad,
            },
        ])
        .unwrap_err();
    assert!(matches!(
        store_err(e),
        StoreError::NonFinite { index: 1, .. }
    ));
    assert_eq!(std::fs::read(&chunk).unwrap(), before);
    assert!(batched.is_done("g/a", 0) && batched.is_done("b", 1));

    // Marking refuses as a whole too: a missing chunk leaves the other pair unmarked.
    let c = ArraySpec::new("extra", &[2], StoreDtype::F32);
    batched.ensure_array(&c).unwrap();
    batched.write_sample("extra", 0, &[1.0, 2.0]).unwrap();
    let e = batched
        .mark_done_many(&[("extra", 0), ("extra", 3)])
        .unwrap_err();
    assert!(matches!(
        store_err(e),
        StoreError::MissingChunk { index: 3, .. }
    ));
    assert!(!batched.is_done("extra", 0));
    batched.mark_done_many(&[("extra", 0)]).unwrap();
    assert!(batched.is_done("extra", 0));
}

#[test]
fn written_but_unmarked_is_not_done() {
    let dir = tempfile::tempdir().unwrap();
    let (path, store) = small_store(dir.path(), 4);
    store
        .ensure_array(&ArraySpec::new("late", &[5], StoreDtype::F16))
        .unwrap();
    let data = [0.5, -3.25, 2.0, 0.0, 1.0];
    store.write_sample("late", 2, &data).unwrap();
    assert!(path.join("late/c/2/0").exists());
    assert!(!store.is_done("late", 2));
    assert_eq!(store.completion("late").unwrap(), vec![false; 4]);
    let reader = StoreReader::open(&path).unwrap();
    let a = reader.array("late").unwrap();
    assert!(!a.is_done(2));
    assert!(matches!(
        store_err(a.sample_bytes(2).err().unwrap()),
        StoreError::Incomplete { index: 2, .. }
    ));
    assert!(a.batch_tensor(&[2], tch::Device::Cpu).is_err());
    let report = verify(&path).unwrap();
    assert!(report.consistent() && !report.sound(), "{report}");
    let late = report.arrays.iter().find(|x| x.name == "late").unwrap();
    assert_eq!((late.complete, late.pending), (0, 4));
    assert_eq!(late.pending_indices, [0, 1, 2, 3]);

    // Marked by a second handle (no pending abs max there): same marker as the writing handle.
    store.write_sample("late", 1, &data).unwrap();
    store.mark_done("late", 1).unwrap();
    let other = FeatureStore::open(&path).unwrap();
    other.mark_done("late", 2).unwrap();
    assert_eq!(
        std::fs::read(path.join("late/_markers/1.json")).unwrap(),
        std::fs::read(path.join("late/_markers/2.json")).unwrap()
    );
    assert_eq!(store.marker("late", 2).unwrap().unwrap().abs_max, 3.25);
    assert_eq!(
        store.completion("late").unwrap(),
        [false, true, true, false]
    );
    // The reader's snapshot is refreshed on a miss.
    assert!(a.is_done(2));
    let t = a.batch_tensor(&[2, 1, 2], tch::Device::Cpu).unwrap();
    assert_eq!(t.size(), [3, 5]);
    assert_eq!(Vec::<f32>::try_from(t.get(0)).unwrap(), data);
    // Rewriting a done sample removes its marker until it is marked again.
    store.write_sample("late", 1, &data).unwrap();
    assert!(!store.is_done("late", 1));
}

#[test]
fn creation_rules() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.zarr");
    let a = attrs(&[("backbone", json!({"sha": "ab"})), ("dtype", json!("f16"))]);
    let s = FeatureStore::create(&p, 6, a.clone()).unwrap();
    assert_eq!(s.attrs(), &a);
    assert_eq!(s.n_samples(), 6);
    assert!(matches!(
        store_err(FeatureStore::create(&p, 6, a.clone()).err().unwrap()),
        StoreError::AlreadyExists { .. }
    ));
    let reserved = attrs(&[("weld_cache_store", json!(1))]);
    assert!(matches!(
        store_err(
            FeatureStore::create(&dir.path().join("r.zarr"), 1, reserved)
                .err()
                .unwrap()
        ),
        StoreError::ReservedAttr { .. }
    ));
    // open_or_create: same keys agree; a subset is fine; a differing key is named.
    FeatureStore::open_or_create(&p, 6, a.clone()).unwrap();
    FeatureStore::open_or_create(&p, 6, attrs(&[("dtype", json!("f16"))])).unwrap();
    let e = store_err(
        FeatureStore::open_or_create(&p, 6, attrs(&[("dtype", json!("bf16"))]))
            .err()
            .unwrap(),
    );
    assert!(
        matches!(&e, StoreError::AttrMismatch { key, .. } if key == "dtype"),
        "{e}"
    );
    let e = store_err(
        FeatureStore::open_or_create(&p, 7, a.clone())
            .err()
            .unwrap(),
    );
    assert!(matches!(&e, StoreError::AttrMismatch { key, .. } if key == "n_samples"));
    let fresh = dir.path().join("sub/new.zarr");
    FeatureStore::open_or_create(&fresh, 2, a).unwrap();
    assert!(fresh.join("zarr.json").is_file());
    // A plain folder is not a store.
    std::fs::create_dir(dir.path().join("plain")).unwrap();
    assert!(FeatureStore::open(&dir.path().join("plain")).is_err());

    // ensure_array: idempotent, refuses another spec, nested names, no array inside an array.
    let spec = ArraySpec::new("image/tokens_L20", &[5, 201, 4], StoreDtype::F16);
    s.ensure_array(&spec).unwrap();
    s.ensure_array(&spec).unwrap();
    FeatureStore::open(&p).unwrap().ensure_array(&spec).unwrap();
    let other = ArraySpec::new("image/tokens_L20", &[5, 201, 4], StoreDtype::F32);
    assert!(matches!(
        store_err(
            FeatureStore::open(&p)
                .unwrap()
                .ensure_array(&other)
                .unwrap_err()
        ),
        StoreError::SpecMismatch { .. }
    ));
    assert!(matches!(
        store_err(s.ensure_array(&other).unwrap_err()),
        StoreError::SpecMismatch { .. }
    ));
    let group: Value =
        serde_json::from_slice(&std::fs::read(p.join("image/zarr.json")).unwrap()).unwrap();
    assert_eq!(group["node_type"], json!("group"));
    let inside = ArraySpec::new("image/tokens_L20/x", &[1], StoreDtype::F16);
    assert!(matches!(
        store_err(s.ensure_array(&inside).unwrap_err()),
        StoreError::BadName { .. }
    ));
    for bad in ["_markers/x", "a/../b", "x/c"] {
        assert!(s
            .ensure_array(&ArraySpec::new(bad, &[1], StoreDtype::F16))
            .is_err());
    }
    assert!(s
        .ensure_array(&ArraySpec::new("z", &[0], StoreDtype::F16))
        .is_err());
    assert_eq!(s.arrays().unwrap(), vec![spec]);
    // Group attributes (where extract keeps provenance and reports) and store-level vectors.
    s.write_group_attrs(
        "reports/extract",
        json!({"report": {"faults": []}})
            .as_object()
            .unwrap()
            .clone(),
    )
    .unwrap();
    let back = s.group_attrs("reports/extract").unwrap().unwrap();
    assert_eq!(back["report"], json!({"faults": []}));
    assert_eq!(s.group_attrs("reports/shard-9-of-10").unwrap(), None);
    assert!(s.write_group_attrs("image/tokens_L20", Map::new()).is_err());
    assert!(s.write_group_attrs("../x", Map::new()).is_err());
    assert!(s
        .write_vector("text/embed", "feature", &[1.0, 2.0], Map::new())
        .unwrap());
    assert!(!s
        .write_vector("text/embed", "feature", &[3.0], Map::new())
        .unwrap());
    assert!(s
        .write_vector("bad", "feature", &[f32::NAN], Map::new())
        .is_err());
    let v = StoreReader::open(&p).unwrap().vector("text/embed").unwrap();
    assert_eq!(v.values, [1.0, 2.0]);
    assert_eq!(
        s.arrays().unwrap().len(),
        1,
        "groups and vectors are not per-sample arrays"
    );
}

#[test]
fn batches_and_dtypes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("b.zarr");
    let s = FeatureStore::create(&p, 5, Map::new()).unwrap();
    let shape = [4usize, 6];
    for dtype in [StoreDtype::F16, StoreDtype::Bf16, StoreDtype::F32] {
        let name = format!("x_{dtype}");
        s.ensure_array(&ArraySpec::new(&name, &shape, dtype))
            .unwrap();
        for i in 0..5 {
            s.write_sample(&name, i, &values(24, i + 10)).unwrap();
            s.mark_done(&name, i).unwrap();
        }
    }
    let r = StoreReader::open(&p).unwrap();
    let idx = [4usize, 0, 4, 2];
    let inputs: Vec<f32> = idx.iter().flat_map(|&i| values(24, i + 10)).collect();
    let x = tch::Tensor::from_slice(&inputs).view([4, 4, 6]);
    for dtype in [StoreDtype::F16, StoreDtype::Bf16, StoreDtype::F32] {
        let a = r.array(&format!("x_{dtype}")).unwrap();
        let t = a.batch_tensor(&idx, tch::Device::Cpu).unwrap();
        assert_eq!(t.size(), [4, 4, 6]);
        assert_eq!(t.kind(), tch::Kind::Float);
        // libtorch's own rounding of the inputs is the reference for every dtype.
        let want = x.to_kind(dtype.kind()).to_kind(tch::Kind::Float);
        assert!(t.equal(&want), "{dtype}: batch differs from torch's cast");
        let mut one = vec![0f32; 24];
        a.read_f32(2, &mut one).unwrap();
        assert_eq!(Vec::<f32>::try_from(t.get(3).flatten(0, -1)).unwrap(), one);
        assert!(a.read_f32(2, &mut [0f32; 3]).is_err());
        if tch::Cuda::is_available() {
            let g = a.batch_tensor(&idx, tch::Device::Cuda(0)).unwrap();
            assert_eq!(g.device(), tch::Device::Cuda(0));
            assert!(
                g.to_device(tch::Device::Cpu).equal(&t),
                "{dtype}: cuda batch differs"
            );
            eprintln!("{dtype}: cuda batch equal to cpu batch");
        }
        // The staged raw path (what goes to a GPU) holds the stored values.
        let raw = a.batch_tensor_raw(&idx).unwrap();
        assert_eq!(raw.kind(), dtype.kind());
        assert!(
            raw.to_kind(tch::Kind::Float).equal(&t),
            "{dtype}: raw batch differs"
        );
        // A smaller batch after a larger one (reused staging) has only its own sample.
        let raw1 = a.batch_tensor_raw(&[1]).unwrap();
        assert_eq!(raw1.size(), [1, 4, 6]);
        let one_cpu = a.batch_tensor(&[1], tch::Device::Cpu).unwrap();
        assert!(raw1.to_kind(tch::Kind::Float).equal(&one_cpu));
        let empty = a.batch_tensor(&[], tch::Device::Cpu).unwrap();
        assert_eq!(empty.size(), [0, 4, 6]);
    }
}

#[test]
fn fingerprint_is_stable() {
    let dir = tempfile::tempdir().unwrap();
    let one = attrs(&[("a", json!({"x": 1, "y": [1, 2]})), ("b", json!("v"))]);
    let two = attrs(&[("b", json!("v")), ("a", json!({"y": [1, 2], "x": 1}))]);
    let p1 = dir.path().join("1.zarr");
    let p2 = dir.path().join("2.zarr");
    let s1 = FeatureStore::create(&p1, 3, one).unwrap();
    let s2 = FeatureStore::create(&p2, 3, two).unwrap();
    let spec = ArraySpec::new("v/t", &[2], StoreDtype::F16);
    s1.ensure_array(&spec).unwrap();
    s2.ensure_array(&spec).unwrap();
    let f1 = StoreReader::open(&p1).unwrap().fingerprint();
    assert_eq!(f1.len(), 64);
    assert_eq!(f1, StoreReader::open(&p1).unwrap().fingerprint());
    assert_eq!(
        f1,
        StoreReader::open(&p2).unwrap().fingerprint(),
        "key order matters"
    );
    // Data does not change it; a new array does.
    s1.write_sample("v/t", 0, &[1.0, 2.0]).unwrap();
    s1.mark_done("v/t", 0).unwrap();
    assert_eq!(f1, StoreReader::open(&p1).unwrap().fingerprint());
    s1.ensure_array(&ArraySpec::new("w", &[2], StoreDtype::F32))
        .unwrap();
    assert_ne!(f1, StoreReader::open(&p1).unwrap().fingerprint());
}

#[test]
fn verify_flags_missing_truncated_nan_and_tampered() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _store) = small_store(dir.path(), 5);
    let clean = verify_with(&path, &["k"]).unwrap();
    assert!(clean.sound(), "{clean}");
    assert_eq!(clean.arrays[0].complete, 5);
    let expected_max = (0..5)
        .flat_map(|i| values(15, i))
        .map(|x| half::f16::from_f32(x).to_f32().abs())
        .fold(0f32, f32::max);
    assert_eq!(clean.arrays[0].abs_max, expected_max);
    assert!(!verify_with(&path, &["k", "provenance"]).unwrap().sound());

    let chunk = |i: usize| path.join(format!("feat/c/{i}/0/0"));
    std::fs::remove_file(chunk(1)).unwrap();
    let bytes = std::fs::read(chunk(2)).unwrap();
    std::fs::write(chunk(2), &bytes[..bytes.len() - 2]).unwrap();
    let mut nan = std::fs::read(chunk(3)).unwrap();
    nan[8..10].copy_from_slice(&half::f16::NAN.to_le_bytes());
    std::fs::write(chunk(3), &nan).unwrap();
    let mut big = std::fs::read(chunk(4)).unwrap();
    big[0..2].copy_from_slice(&half::f16::from_f32(1000.0).to_le_bytes());
    std::fs::write(chunk(4), &big).unwrap();

    let report = verify(&path).unwrap();
    let text = report.to_string();
    eprintln!("{text}");
    assert!(!report.sound() && !report.consistent());
    let kinds: Vec<(Option<usize>, ProblemKind)> = report
        .problems
        .iter()
        .map(|p| (p.index, p.kind.clone()))
        .collect();
    let mut want = vec![
        (Some(1), ProblemKind::MissingChunk),
        (Some(2), ProblemKind::ChunkSize),
        (Some(3), ProblemKind::NonFinite),
        (Some(4), ProblemKind::BadMarker),
    ];
    let mut got = kinds.clone();
    got.sort_by_key(|k| k.0);
    want.sort_by_key(|k| k.0);
    assert_eq!(got, want);
    assert!(text.contains("feat/c/2/0/0"), "{text}");
    let (ok, verdict) = report.verdict(0, false);
    assert!(
        !ok && verdict.starts_with("NOT SOUND: 4 problem(s)"),
        "{verdict}"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["problems"].as_array().unwrap().len(), 4);
    // The reader refuses the damaged chunks by name too.
    let a = StoreReader::open(&path).unwrap().array("feat").unwrap();
    assert!(matches!(
        store_err(a.sample_bytes(1).err().unwrap()),
        StoreError::MissingChunk { index: 1, .. }
    ));
    assert!(matches!(
        store_err(a.sample_bytes(2).err().unwrap()),
        StoreError::ChunkSize { index: 2, .. }
    ));
}

#[test]
fn batch_throughput() {
    // Measured, not asserted (a loaded 2-core box): 64 samples of 64 Ki f16 values (128 KiB).
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.zarr");
    let n = 64;
    let s = FeatureStore::create(&p, n, Map::new()).unwrap();
    s.ensure_array(&ArraySpec::new("tok", &[256, 256], StoreDtype::F16))
        .unwrap();
    let data = values(65536, 1);
    let t0 = std::time::Instant::now();
    for i in 0..n {
        s.write_sample("tok", i, &data).unwrap();
        s.mark_done("tok", i).unwrap();
    }
    let write_s = t0.elapsed().as_secs_f64();
    let a = StoreReader::open(&p).unwrap().array("tok").unwrap();
    let idx: Vec<usize> = (0..n).collect();
    let mut cpu_s = f64::MAX;
    let mut raw_s = f64::MAX;
    for r in 0..10 {
        let start = (r * 16) % 32;
        let t0 = std::time::Instant::now();
        let t = a
            .batch_tensor(&idx[start..start + 32], tch::Device::Cpu)
            .unwrap();
        cpu_s = cpu_s.min(t0.elapsed().as_secs_f64());
        assert_eq!(t.size(), [32, 256, 256]);
        let t0 = std::time::Instant::now();
        let raw = a.batch_tensor_raw(&idx[start..start + 32]).unwrap();
        raw_s = raw_s.min(t0.elapsed().as_secs_f64());
        assert_eq!(raw.size(), [32, 256, 256]);
    }
    let mb = 32.0 * 131072.0 / 1e6;
    eprintln!(
        "write+mark: {:.2} ms/sample (128 KiB f16, fsync'ed); per 32 samples (best of 10, page \
         cache): batch_tensor cpu {:.2} ms = {:.0} MB/s of chunks, batch_tensor_raw {:.2} ms = \
         {:.0} MB/s",
        1e3 * write_s / n as f64,
        1e3 * cpu_s,
        mb / cpu_s,
        1e3 * raw_s,
        mb / raw_s
    );
}

#[test]
fn run_locks_refuse_overlapping_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (path, store) = small_store(dir.path(), 2);
    let other = FeatureStore::open(&path).unwrap();
    {
        let _whole = store.lock_run(None).unwrap();
        let e = store_err(other.lock_run(None).err().unwrap());
        assert!(matches!(e, StoreError::Locked { .. }), "{e}");
        assert!(e.to_string().contains("--shard i/n"), "{e}");
        assert!(other.lock_run(Some("shard-0-of-2")).is_err());
    }
    let _a = store.lock_run(Some("shard-0-of-2")).unwrap();
    let _b = other.lock_run(Some("shard-1-of-2")).unwrap();
    let e = store_err(other.lock_run(Some("shard-0-of-2")).err().unwrap());
    assert!(
        e.to_string()
            .contains("another process runs shard shard-0-of-2"),
        "{e}"
    );
    assert!(other.lock_run(None).is_err());
}

#[test]
fn faulted_samples_are_not_pending() {
    let dir = tempfile::tempdir().unwrap();
    let (path, store) = small_store(dir.path(), 3);
    store
        .ensure_array(&ArraySpec::new("late", &[2], StoreDtype::F32))
        .unwrap();
    store.write_sample("late", 0, &[1.0, 2.0]).unwrap();
    store.mark_done("late", 0).unwrap();
    let fault = json!({"sample": "a/b", "file": "/d/a/b/b.flac", "error": "no audio"});
    store.mark_faulted("late", 2, &fault).unwrap();
    store.mark_faulted("late", 0, &fault).unwrap(); // done: not marked
    let report = verify(&path).unwrap();
    let late = report.arrays.iter().find(|a| a.name == "late").unwrap();
    assert_eq!((late.complete, late.pending, late.faulted), (1, 1, 1));
    assert_eq!(late.pending_indices, [1]);
    assert_eq!(report.faults.len(), 1);
    assert_eq!(
        report.faults[0].line(),
        "late sample 2 (a/b): /d/a/b/b.flac: no audio"
    );
    assert!(!report.sound());
    store.write_sample("late", 1, &[3.0, 4.0]).unwrap();
    store.mark_done("late", 1).unwrap();
    let report = verify(&path).unwrap();
    assert!(report.sound() && !report.complete(), "{report}");
    assert!(report.verdict(0, false).0);
    assert!(!report.verdict(0, true).0);
    // Written after all: the fault marker goes.
    store.write_sample("late", 2, &[5.0, 6.0]).unwrap();
    store.mark_done("late", 2).unwrap();
    assert!(!path.join("late/_markers/2.fault.json").exists());
    assert!(verify(&path).unwrap().complete());
}

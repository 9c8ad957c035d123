//! Concurrent writers: threads sharing one handle, and separate processes (this test binary
//! re-spawned) racing on `open_or_create` and `ensure_array` and writing disjoint samples, give a
//! store byte-identical (every file) to one writer's. A sample written but not marked is not done,
//! and filling again from such a state (a killed run) also gives the identical store.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use weld_cache::store::{verify, ArraySpec, FeatureStore, StoreDtype};

const N: usize = 12;
const CHILD_ENV: &str = "WELD_STORE_TEST_CHILD";

fn specs() -> Vec<ArraySpec> {
    vec![
        ArraySpec::new("video/tokens", &[16, 32], StoreDtype::F16),
        ArraySpec::new("audio", &[4, 8], StoreDtype::F32),
        ArraySpec::new("image/tokens_L9", &[5, 3, 4], StoreDtype::F16),
    ]
}

fn run_attrs() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("run".into(), json!("concurrency"));
    m.insert("samples".into(), json!((0..N).collect::<Vec<_>>()));
    m
}

fn sample(spec: &ArraySpec, i: usize) -> Vec<f32> {
    let salt = spec.name.len();
    if i == 3 {
        return vec![0.0; spec.sample_len()]; // all-zero sample
    }
    (0..spec.sample_len())
        .map(|j| (((j * 31 + i * 977 + salt * 13) % 1009) as f32 - 504.0) / 9.0)
        .collect()
}

/// Fills samples `shard, shard + n_shards, ...` of every array, skipping done ones.
fn fill(store: &FeatureStore, shard: usize, n_shards: usize) {
    for spec in specs() {
        store.ensure_array(&spec).unwrap();
    }
    for i in (shard..N).step_by(n_shards) {
        for spec in specs() {
            if !store.is_done(&spec.name, i) {
                store
                    .write_sample(&spec.name, i, &sample(&spec, i))
                    .unwrap();
                store.mark_done(&spec.name, i).unwrap();
            }
        }
    }
}

/// Every file under `root`, relative path -> bytes.
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn assert_same_tree(reference: &Path, other: &Path, what: &str) {
    let a = tree(reference);
    let b = tree(other);
    let names_a: Vec<_> = a.keys().collect();
    let names_b: Vec<_> = b.keys().collect();
    assert_eq!(names_a, names_b, "{what}: different files");
    for (k, v) in &a {
        assert!(v == &b[k], "{what}: {} differs", k.display());
    }
    // chunks of every sample of every array + markers + zarr.json files
    assert_eq!(a.len(), specs().len() * N * 2 + specs().len() + 3, "{what}");
}

/// Entry point of a child process (does nothing in a normal test run).
#[test]
fn child_writer() {
    let Ok(args) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = args.split('|').collect();
    let (path, shard, n_shards, go) = (
        Path::new(parts[0]),
        parts[1].parse().unwrap(),
        parts[2].parse().unwrap(),
        Path::new(parts[3]),
    );
    let start = Instant::now();
    while !go.exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "no go signal");
        std::thread::sleep(Duration::from_millis(2));
    }
    let store = FeatureStore::open_or_create(path, N, run_attrs()).unwrap();
    fill(&store, shard, n_shards);
}

#[test]
fn concurrent_writers_match_one_writer() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("one.zarr");
    fill(
        &FeatureStore::create(&reference, N, run_attrs()).unwrap(),
        0,
        1,
    );
    let report = verify(&reference).unwrap();
    assert!(report.sound(), "{report}");

    // Three threads, one shared handle.
    let threads = dir.path().join("threads.zarr");
    let store = FeatureStore::create(&threads, N, run_attrs()).unwrap();
    std::thread::scope(|s| {
        for shard in 0..3 {
            let store = &store;
            s.spawn(move || fill(store, shard, 3));
        }
    });
    assert_same_tree(&reference, &threads, "threads");

    // Two processes racing from a store that does not exist yet.
    let procs = dir.path().join("procs.zarr");
    let go = dir.path().join("go");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|shard| {
            let arg = format!("{}|{shard}|2|{}", procs.display(), go.display());
            Command::new(&exe)
                .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
                .env(CHILD_ENV, arg)
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&go, b"go").unwrap();
    for mut c in children {
        assert!(c.wait().unwrap().success(), "child writer failed");
    }
    assert_same_tree(&reference, &procs, "processes");
    assert!(verify(&procs).unwrap().sound());

    // A killed run: some samples written and marked, some written but not marked, some
    // overwritten with other data and left unmarked. Not-done samples are not done; a rerun
    // rewrites exactly those and the store equals the reference.
    let killed = dir.path().join("killed.zarr");
    {
        let s = FeatureStore::create(&killed, N, run_attrs()).unwrap();
        for spec in specs() {
            s.ensure_array(&spec).unwrap();
            for i in 0..N {
                let data = if i % 3 == 2 {
                    vec![1.5; spec.sample_len()]
                } else {
                    sample(&spec, i)
                };
                s.write_sample(&spec.name, i, &data).unwrap();
                if i % 3 == 0 {
                    s.mark_done(&spec.name, i).unwrap();
                }
            }
        }
        let done = s.completion("audio").unwrap();
        assert_eq!(done, (0..N).map(|i| i % 3 == 0).collect::<Vec<_>>());
        let report = verify(&killed).unwrap();
        assert!(report.consistent() && !report.sound());
    }
    let s = FeatureStore::open_or_create(&killed, N, run_attrs()).unwrap();
    fill(&s, 0, 1);
    assert_same_tree(&reference, &killed, "resumed");
}

/// Many handles racing to create the same store and arrays: all succeed, agree, leave no
/// temporary folder behind.
#[test]
fn racing_creation_leaves_one_store() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..5 {
        let path = dir.path().join(format!("race{round}.zarr"));
        let barrier = std::sync::Barrier::new(6);
        std::thread::scope(|s| {
            for _ in 0..6 {
                s.spawn(|| {
                    barrier.wait();
                    let store = FeatureStore::open_or_create(&path, N, run_attrs()).unwrap();
                    for spec in specs() {
                        store.ensure_array(&spec).unwrap();
                    }
                });
            }
        });
        let store = FeatureStore::open(&path).unwrap();
        assert_eq!(store.arrays().unwrap(), {
            let mut s = specs();
            s.sort_by(|a, b| a.name.cmp(&b.name));
            s
        });
        for d in [
            dir.path(),
            path.as_path(),
            &path.join("video"),
            &path.join("image"),
        ] {
            for e in std::fs::read_dir(d).unwrap() {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                assert!(
                    !name.contains(".tmp."),
                    "leftover {name} in {}",
                    d.display()
                );
            }
        }
    }
}

/// `kill -9` of a writing process at random moments, five times in a row on the same store:
/// after every kill the store is consistent (no marker without its full, finite chunk; torn
/// chunks are merely pending), and a final resume gives the one-writer store byte for byte.
#[test]
fn killed_writers_resume_to_the_same_store() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("one.zarr");
    let t0 = Instant::now();
    fill(
        &FeatureStore::create(&reference, N, run_attrs()).unwrap(),
        0,
        1,
    );
    let fill_ms = t0.elapsed().as_millis() as u64;
    let path = dir.path().join("killed.zarr");
    let go = dir.path().join("go");
    std::fs::write(&go, b"go").unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let exe = std::env::current_exe().unwrap();
    let mut kills = Vec::new();
    for trial in 0..5 {
        let mut child = Command::new(&exe)
            .args(["--exact", "child_writer", "--test-threads=1"])
            .env(
                CHILD_ENV,
                format!("{}|0|1|{}", path.display(), go.display()),
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the child is at work (libtorch makes start-up slow), then kill it within
        // the time one full fill takes.
        let start = Instant::now();
        while !path.join("zarr.json").exists() && start.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let ms = rng.random_range(0..fill_ms.max(10));
        std::thread::sleep(Duration::from_millis(ms));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        kills.push((ms, status.success()));
        if !path.join("zarr.json").exists() {
            continue; // killed before the store was created
        }
        let report = verify(&path).unwrap();
        assert!(
            report.consistent(),
            "trial {trial} (seed {seed}, kill after {ms} ms): {report}"
        );
    }
    let done_before: usize = verify(&path).map_or(0, |r| r.arrays.iter().map(|a| a.complete).sum());
    eprintln!(
        "one fill: {fill_ms} ms; kills (ms after start, finished first): {kills:?}; \
         {done_before} of {} samples done before resume",
        N * specs().len()
    );
    let store = FeatureStore::open_or_create(&path, N, run_attrs()).unwrap();
    fill(&store, 0, 1);
    // Marker temporaries of killed writers were reused by the resume; only a folder of a killed
    // array/group creation may remain (in the store root), listed and then removed.
    let leftovers = store.leftovers().unwrap();
    for p in &leftovers {
        assert_eq!(
            p.parent().unwrap(),
            path,
            "unexpected leftover {}",
            p.display()
        );
    }
    assert_eq!(verify(&path).unwrap().leftovers, leftovers);
    assert_eq!(store.remove_leftovers().unwrap(), leftovers);
    assert!(store.leftovers().unwrap().is_empty());
    assert_same_tree(&reference, &path, "killed and resumed");
}

//! `extract run` end to end on synthetic data with the tiny random backbones: verify passes,
//! stored features equal `extract forward` on the same inputs, kill -9 + resume and two
//! concurrent shards give byte-identical stores, planted faults are reported and skipped.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;
use tch::Tensor;
use weld_cache::store::StoreReader;

const BIN: &str = env!("CARGO_BIN_EXE_extract");

fn run(args: &[&str]) -> Output {
    let out = Command::new(BIN).args(args).output().unwrap();
    if !out.status.success() {
        eprintln!(
            "extract {args:?} failed\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

fn config() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../configs/extract_demo.toml")
        .display()
        .to_string()
}

/// One synthetic dataset (24 samples) and one set of tiny models, shared by the tests.
struct Fixture {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    models: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("synth");
        let models = tmp.path().join("models");
        let d = data.to_str().unwrap();
        let s = [
            "synth",
            "--out",
            d,
            "--samples",
            "24",
            "--seed",
            "3",
            "--seconds",
            "3",
        ];
        assert!(run(&s).status.success());
        let m = models.to_str().unwrap();
        assert!(run(&["init-models", "--out", m, "--size", "tiny"])
            .status
            .success());
        Fixture {
            _tmp: tmp,
            data,
            models,
        }
    })
}

/// `extract run` arguments for `data` -> `store`, plus `extra`.
fn run_args(data: &Path, store: &Path, extra: &[&str]) -> Vec<String> {
    let f = fixture();
    let mut a: Vec<String> = vec!["run".into(), "--config".into(), config()];
    let m = |n: &str| f.models.join(n).display().to_string();
    for (flag, v) in [
        ("--data-root", data.display().to_string()),
        (
            "--manifest",
            data.join("manifest.csv").display().to_string(),
        ),
        ("--out", store.display().to_string()),
        ("--vjepa", m("vjepa2")),
        ("--ast", m("ast")),
        ("--dinov3", m("dinov3")),
        ("--clip", m("clip")),
        ("--batch-size", "3".into()),
    ] {
        a.push(flag.into());
        a.push(v);
    }
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn extract(data: &Path, store: &Path, extra: &[&str]) -> Output {
    let args = run_args(data, store, extra);
    run(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The report of the run (`shard` = `extract` or `shard-i-of-n`): attribute `report` of the zarr
/// group `STORE/reports/<shard>`.
fn report_of(store: &Path, shard: &str) -> Value {
    let p = store.join("reports").join(shard).join("zarr.json");
    let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    v["attributes"]["report"].clone()
}

/// Every file of a store (relative path -> bytes), except the runs' reports (they hold timings)
/// and the run locks' report groups.
fn snapshot(store: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                if !rel.starts_with("reports/") {
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(store, store, &mut out);
    out
}

fn assert_same_store(a: &Path, b: &Path) {
    let (sa, sb) = (snapshot(a), snapshot(b));
    let ka: BTreeSet<&String> = sa.keys().collect();
    let kb: BTreeSet<&String> = sb.keys().collect();
    assert_eq!(ka, kb, "file sets differ");
    for (k, v) in &sa {
        assert!(
            v == &sb[k],
            "{k} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
    assert!(
        sa.keys().any(|k| k.starts_with("video/tokens/c/")),
        "no video chunks in the snapshot"
    );
}

/// A reference store of the fixture, extracted once without interruption.
fn reference_store() -> &'static Path {
    static S: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &S.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("ref.zarr");
        assert!(extract(&fixture().data, &store, &[]).status.success());
        (tmp, store)
    })
    .1
}

#[test]
fn run_then_verify_and_resume_is_a_no_op() {
    let store = reference_store();
    let v = run(&["verify", "--store", store.to_str().unwrap()]);
    assert!(v.status.success(), "verify failed on a fresh store");
    let report = report_of(store, "extract");
    assert_eq!(report["faults"].as_array().unwrap().len(), 0);
    // A rerun finds everything done and changes nothing.
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("copy.zarr");
    Command::new("cp")
        .args(["-a", store.to_str().unwrap(), copy.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(extract(&fixture().data, &copy, &[]).status.success());
    let again = report_of(&copy, "extract");
    for s in again["stages"].as_array().unwrap() {
        assert_eq!(s["written"], 0, "{s}");
    }
    assert_same_store(store, &copy);
    // Provenance is part of soundness, and the verdict (the last line) counts it.
    std::fs::write(
        copy.join("video/zarr.json"),
        r#"{"zarr_format": 3, "node_type": "group", "attributes": {}}"#,
    )
    .unwrap();
    let v = run(&["verify", "--store", copy.to_str().unwrap()]);
    assert!(!v.status.success());
    let text = String::from_utf8_lossy(&v.stdout);
    let last = text.lines().last().unwrap_or("");
    assert!(
        last.starts_with("verdict: NOT SOUND: 1 problem"),
        "verdict must come last and count the provenance problem:\n{text}"
    );
    assert!(text.contains("video: no provenance"), "{text}");
}

fn read(store: &Path, array: &str, i: usize) -> Vec<f32> {
    let r = StoreReader::open(store).unwrap();
    let a = r.array(array).unwrap();
    let mut v = vec![0f32; a.spec().sample_len()];
    a.read_f32(i, &mut v).unwrap();
    v
}

fn forward(model: &str, input_name: &str, input: &Tensor, dir: &Path) -> Vec<(String, Tensor)> {
    let inp = dir.join(format!("{model}_in.safetensors"));
    let out = dir.join(format!("{model}_out.safetensors"));
    Tensor::write_safetensors(&[(input_name, input)], &inp).unwrap();
    let m = fixture().models.join(model);
    let o = run(&[
        "forward",
        "--model-dir",
        m.to_str().unwrap(),
        "--input",
        inp.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    Tensor::read_safetensors(&out).unwrap()
}

fn max_rel_err(ours: &[f32], reference: &Tensor) -> f64 {
    let r: Vec<f32> = Vec::try_from(reference.flatten(0, -1)).unwrap();
    assert_eq!(ours.len(), r.len(), "length differs");
    let scale = r.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
    let err = ours
        .iter()
        .zip(&r)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    (err / scale) as f64
}

#[test]
fn stored_features_equal_extract_forward() {
    use weld_cache::data::{manifest::Manifest, sample::SampleFiles};
    use weld_cache::preprocess::{dinov3_pixels, vjepa2_pixels, ImageNorm};
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("f32.zarr");
    assert!(extract(&f.data, &store, &["--store-dtype", "f32"])
        .status
        .success());
    let manifest = Manifest::read(&f.data.join("manifest.csv")).unwrap();
    let i = 5;
    let rec = &manifest.samples[i];
    let files = SampleFiles::locate(&f.data, rec).unwrap();
    let norm = ImageNorm::default();

    // images -> DINOv3 hidden_states[2] (stored layer) and the pooled mean of hidden_states[4]
    let imgs = weld_cache::data::images::read_images(&files.images().unwrap(), &rec.key).unwrap();
    let px: Vec<Tensor> = imgs
        .iter()
        .map(|im| dinov3_pixels(&im.data, im.h, im.w, 224, 224, &norm).unwrap())
        .collect();
    let out = forward("dinov3", "pixel_values", &Tensor::stack(&px, 0), tmp.path());
    let get =
        |o: &[(String, Tensor)], k: &str| o.iter().find(|(n, _)| n == k).unwrap().1.shallow_clone();
    let e = max_rel_err(
        &read(&store, "image/tokens_L2", i),
        &get(&out, "hidden_states.2"),
    );
    assert!(e < 1e-5, "image tokens differ from extract forward: {e}");
    let pooled = read(&store, "image/pooled", i); // [5 layers, 5 views, 2, 64]
    let mean4 = get(&out, "hidden_states.4").mean_dim(1, false, tch::Kind::Float); // [5, 64]
    let ours: Vec<f32> = (0..5)
        .flat_map(|v| pooled[(4 * 5 + v) * 128..(4 * 5 + v) * 128 + 64].to_vec())
        .collect();
    let e = max_rel_err(&ours, &mean4);
    assert!(e < 1e-5, "pooled mean differs: {e}");

    // video -> V-JEPA 2 last_hidden_state
    let fr =
        weld_cache::data::video::read_video_frames(&files.video().unwrap(), 8, &rec.key).unwrap();
    let pv = vjepa2_pixels(&fr.data, fr.t, fr.h, fr.w, 73, 64, &norm)
        .unwrap()
        .unsqueeze(0);
    let out = forward("vjepa2", "pixel_values_videos", &pv, tmp.path());
    let e = max_rel_err(
        &read(&store, "video/tokens", i),
        &get(&out, "last_hidden_state"),
    );
    assert!(e < 1e-5, "video tokens differ from extract forward: {e}");

    // video frames -> DINOv3 hidden_states[frame_dino.layer = 3], mean over tokens per frame
    // (4 frames of the .avi through the image views' preprocessing, grey replicated to RGB)
    let fr =
        weld_cache::data::video::read_video_frames(&files.video().unwrap(), 4, &rec.key).unwrap();
    let n = fr.h * fr.w * 3;
    let px: Vec<Tensor> = (0..fr.t)
        .map(|k| dinov3_pixels(&fr.data[k * n..(k + 1) * n], fr.h, fr.w, 224, 224, &norm).unwrap())
        .collect();
    let out = forward("dinov3", "pixel_values", &Tensor::stack(&px, 0), tmp.path());
    let want = get(&out, "hidden_states.3").mean_dim(1, false, tch::Kind::Float); // [4, 64]
    let ours = read(&store, "video/frame_dino", i);
    assert_eq!(ours.len(), 4 * 64, "video/frame_dino is [frames, D]");
    let e = max_rel_err(&ours, &want);
    assert!(
        e < 1e-5,
        "video/frame_dino differs from extract forward: {e}"
    );

    // audio -> the whole clip's log-mel at the configured length (the 3 s clips are padded to
    // 4 s and say so); the transform itself is tested against torchaudio (preprocess_fbank)
    let wave = weld_cache::data::audio::read_audio_16k(&files.audio().unwrap(), &rec.key).unwrap();
    let cfg = weld_cache::pipeline::ExtractConfig::from_file(Path::new(&config())).unwrap();
    let sp = &cfg.spectrogram;
    let (x, fit) = weld_cache::preprocess::fit_clip(&wave, sp.clip_samples(), sp.hop);
    let want = weld_cache::preprocess::LogMel::new(sp.logmel())
        .unwrap()
        .compute(&x)
        .unwrap();
    assert_eq!(want.len(), (1 + 64000 / 320) * 64);
    assert_eq!(read(&store, "audio/spectrogram", i), want);
    assert!(
        wave.len() < 64000 && fit.valid_frames == 150,
        "{}",
        wave.len()
    );
    assert_eq!(
        read(&store, "audio/spectrogram_clip", i),
        vec![wave.len() as f32 / 16000.0, 150.0]
    );

    // text -> CLIP text_embeds of the prompt
    let clip = weld_cache::backbones::clip::ClipText::load(
        &f.models.join("clip"),
        tch::Device::Cpu,
        tch::Kind::Float,
    )
    .unwrap();
    let ids = Tensor::from_slice(&clip.tokenize("a normal weld").unwrap()).unsqueeze(0);
    let out = forward("clip", "input_ids", &ids, tmp.path());
    let te = weld_cache::store::read_text_embed(&StoreReader::open(&store).unwrap()).unwrap();
    assert_eq!(te.attrs["prompt"], "a normal weld");
    let emb = te.values;
    let e = max_rel_err(&emb, &get(&out, "text_embeds"));
    assert!(e < 1e-5, "text embedding differs: {e}");
}

#[test]
fn kill_9_then_resume_is_byte_identical() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("killed.zarr");
    let args = run_args(&f.data, &store, &[]);
    // Sample markers written so far (a light walk: names only).
    fn count_markers(dir: &Path) -> usize {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return 0;
        };
        rd.flatten()
            .map(|e| {
                let p = e.path();
                if p.is_dir() {
                    count_markers(&p)
                } else {
                    let in_markers = p.parent().is_some_and(|d| d.ends_with("_markers"));
                    usize::from(in_markers && p.extension().is_some_and(|x| x == "json"))
                }
            })
            .sum()
    }
    let total = count_markers(reference_store());
    // Each kill lands once the run has written a pseudo-random number of new markers (at least
    // one, never all), plus a pseudo-random 0-15 ms: anywhere inside a group (forwards, chunk
    // writes, syncs, markers), however fast extraction is on this machine. (Kill times taken
    // from one timed run missed: that run was slowed by the tests beside it, the later ones
    // were not, and finished before their kill.) Deterministic, printed so a failure replays.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut interrupted = 0;
    for trial in 0..6 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let done = count_markers(&store);
        if done + 1 >= total {
            eprintln!("trial {trial}: {done} of {total} markers, nothing left to interrupt");
            continue;
        }
        let target = done + 1 + (state >> 33) as usize % (total - done - 1);
        let extra_ms = (state >> 20) % 16;
        let mut child = Command::new(BIN)
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let t = std::time::Instant::now();
        while child.try_wait().unwrap().is_none()
            && count_markers(&store) < target
            && t.elapsed() < std::time::Duration::from_secs(300)
        {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        std::thread::sleep(std::time::Duration::from_millis(extra_ms));
        let finished = child.try_wait().unwrap().is_some();
        child.kill().ok(); // SIGKILL
        child.wait().unwrap();
        eprintln!(
            "trial {trial}: killed at {} of {total} markers (+{extra_ms} ms, target {target}, \
             had finished: {finished})",
            count_markers(&store)
        );
        interrupted += usize::from(!finished);
    }
    assert!(
        interrupted >= 3,
        "only {interrupted} of 6 runs were killed mid-way"
    );
    eprintln!(
        "after the kills: {} of {total} sample markers",
        count_markers(&store)
    );
    assert!(extract(&f.data, &store, &[]).status.success());
    assert!(run(&["verify", "--store", store.to_str().unwrap()])
        .status
        .success());
    // A kill while a uniquely named temporary (`.<stem>.tmp.<pid>.<n>.<nanos>`: array or group
    // metadata being created, a side file being replaced) existed leaves it behind: documented as
    // harmless, ignored by readers, listed by `verify`, removable with
    // `FeatureStore::remove_leftovers`. Everything else must be byte-identical.
    assert_same_store_but_leftovers(reference_store(), &store);
}

/// [`assert_same_store`] after dropping, from `b` only, the files under a uniquely named
/// temporary entry of a killed writer (a path component `.<stem>.tmp.<pid>...`).
fn assert_same_store_but_leftovers(a: &Path, b: &Path) {
    let clean = tempfile::tempdir().unwrap();
    let copy = clean.path().join("store");
    for (rel, bytes) in snapshot(b) {
        let leftover = rel
            .split('/')
            .any(|c| c.starts_with('.') && c.contains(".tmp."));
        if leftover {
            eprintln!("ignoring a killed writer's temporary: {rel}");
            continue;
        }
        let p = copy.join(&rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    assert_same_store(a, &copy);
}

#[test]
fn two_concurrent_shards_equal_one_process() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("sharded.zarr");
    let spawn = |shard: &str| {
        Command::new(BIN)
            .args(run_args(&f.data, &store, &["--shard", shard]))
            .output()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| spawn("0/2").unwrap());
        let b = s.spawn(|| spawn("1/2").unwrap());
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    assert!(report_of(&store, "shard-0-of-2")["stages"].is_array());
    assert!(report_of(&store, "shard-1-of-2")["stages"].is_array());
    assert_same_store(reference_store(), &store);
}

#[test]
fn planted_faults_are_reported_and_the_rest_is_extracted() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("damaged");
    Command::new("cp")
        .args(["-a", f.data.to_str().unwrap(), data.to_str().unwrap()])
        .status()
        .unwrap();
    let text = std::fs::read_to_string(data.join("manifest.csv")).unwrap();
    let keys: Vec<String> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(10).unwrap().to_string())
        .collect();
    let dir = |i: usize| data.join(&keys[i]);
    let id = |i: usize| keys[i].rsplit('/').next().unwrap().to_string();
    std::fs::remove_file(dir(1).join(format!("{}.flac", id(1)))).unwrap();
    std::fs::write(dir(4).join(format!("{}.avi", id(4))), b"").unwrap();
    let csv = dir(7).join(format!("{}.csv", id(7)));
    let t = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(&csv, t.replacen("Secondary Weld Voltage", "Voltage", 1)).unwrap();
    let mut imgs: Vec<_> = std::fs::read_dir(dir(10).join("images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    imgs.sort();
    std::fs::remove_file(&imgs[1]).unwrap();
    std::fs::remove_file(&imgs[3]).unwrap();
    std::fs::remove_dir_all(dir(13)).unwrap();

    // --strict stops at the first fault with a non-zero exit.
    let strict = tmp.path().join("strict.zarr");
    assert!(!extract(&data, &strict, &["--strict"]).status.success());

    let store = tmp.path().join("faulty.zarr");
    let out = extract(&data, &store, &[]);
    assert!(out.status.success(), "faults must not fail the run");
    let report = report_of(&store, "extract");
    let got: BTreeSet<(String, String)> = report["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["sample"].as_str().unwrap().to_string(),
                p["modality"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String)> = [
        (1, "audio"),
        (4, "video"),
        (7, "sensor"),
        (10, "images"),
        (13, "folder"),
    ]
    .into_iter()
    .map(|(i, m)| (keys[i].clone(), m.to_string()))
    .collect();
    assert_eq!(got, want);
    // Each faulty modality is missing for its sample only; everything else is complete and
    // equal to the undamaged reference.
    let r = StoreReader::open(&store).unwrap();
    let reference = StoreReader::open(reference_store()).unwrap();
    for (name, bad) in [
        ("audio/tokens", vec![1, 13]),
        ("video/tokens", vec![4, 13]),
        ("sensor/raw", vec![7, 13]),
        ("image/pooled", vec![10, 13]),
    ] {
        let a = r.array(name).unwrap();
        let ra = reference.array(name).unwrap();
        for i in 0..keys.len() {
            assert_eq!(a.is_done(i), !bad.contains(&i), "{name} sample {i}");
            if a.is_done(i) {
                assert_eq!(
                    &*a.sample_bytes(i).unwrap(),
                    &*ra.sample_bytes(i).unwrap(),
                    "{name} sample {i}"
                );
            }
        }
    }
    // verify tells faulted samples (broken inputs) from pending ones: every sample is complete
    // or faulted, so the store is sound, and each fault is listed with its sample and file.
    let v = run(&["verify", "--store", store.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&v.stdout).to_string();
    assert!(v.status.success(), "{text}");
    let last = text.lines().last().unwrap();
    assert!(
        last.contains("SOUND: every sample complete or faulted"),
        "{text}"
    );
    for i in [1, 4, 7, 10, 13] {
        assert!(
            text.contains(&format!("({})", keys[i])),
            "fault of {} not listed:\n{text}",
            keys[i]
        );
    }
    assert!(
        text.contains(&format!("{}.flac", id(1))),
        "the fault names the file:\n{text}"
    );
    assert!(!text.contains(" pending sample"), "{text}");
    // --require-complete makes them fatal.
    let v = run(&[
        "verify",
        "--store",
        store.to_str().unwrap(),
        "--require-complete",
    ]);
    assert!(!v.status.success());
    let text = String::from_utf8_lossy(&v.stdout);
    assert!(text
        .lines()
        .last()
        .unwrap()
        .contains("faulted sample(s) and --require-complete"));
    // A damaged sample repaired and rerun is written and its fault marker removed.
    Command::new("cp")
        .args([
            "-a",
            f.data.join(&keys[13]).to_str().unwrap(),
            dir(13).to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(extract(&data, &store, &[]).status.success());
    let r = StoreReader::open(&store).unwrap();
    assert!(r.array("video/tokens").unwrap().is_done(13));
    assert!(!store.join("video/tokens/_markers/13.fault.json").exists());
    assert!(store.join("video/tokens/_markers/4.fault.json").is_file());
}

#[test]
fn adding_a_dinov3_layer_computes_only_that_array() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("grow.zarr");
    Command::new("cp")
        .args([
            "-a",
            reference_store().to_str().unwrap(),
            store.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    let before = snapshot(&store);
    assert!(extract(
        &f.data,
        &store,
        &["--only", "image,video", "--dino-layers", "2,3,1"]
    )
    .status
    .success());
    let report = report_of(&store, "extract");
    let stages = report["stages"].as_array().unwrap();
    let written = |s: &str| stages.iter().find(|x| x["stage"] == s).unwrap()["written"].clone();
    assert_eq!(written("image"), 24, "every sample lacked the new layer");
    assert_eq!(written("video"), 0, "video was complete");
    let after = snapshot(&store);
    for (k, v) in &before {
        assert!(after[k] == *v, "{k} changed when a layer was added");
    }
    assert!(after.keys().any(|k| k.starts_with("image/tokens_L1/c/")));
    let r = StoreReader::open(&store).unwrap();
    assert!(r.array("image/tokens_L1").unwrap().is_done(23));
    assert!(run(&["verify", "--store", store.to_str().unwrap()])
        .status
        .success());
}

#[test]
fn frame_dino_and_spectrogram_are_added_to_an_existing_store() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("old.zarr");
    // a store of the original stages, then the two new ones added with --only
    let old = "video,audio,image,sensor,text";
    assert!(extract(&f.data, &store, &["--only", old]).status.success());
    let before = snapshot(&store);
    assert!(!before.keys().any(|k| k.starts_with("video/frame_dino")));
    assert!(
        extract(&f.data, &store, &["--only", "frame_dino,spectrogram"])
            .status
            .success()
    );
    let report = report_of(&store, "extract");
    let stages = report["stages"].as_array().unwrap();
    let names: Vec<&str> = stages
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["spectrogram", "frame_dino"],
        "only the new stages ran"
    );
    for s in stages {
        assert_eq!(s["written"], 24, "{s}");
    }
    let after = snapshot(&store);
    for (k, v) in &before {
        assert!(after[k] == *v, "{k} changed when the new stages were added");
    }
    for a in [
        "video/frame_dino/c/",
        "audio/spectrogram/c/",
        "audio/spectrogram_clip/c/",
    ] {
        assert!(after.keys().any(|k| k.starts_with(a)), "no {a} chunks");
    }
    // provenance of each new stage in its own group, recorded as the others are
    let attrs = |g: &str| -> Value {
        let p = store.join(g).join("zarr.json");
        serde_json::from_slice::<Value>(&std::fs::read(p).unwrap()).unwrap()["attributes"]
            ["provenance"]
            .clone()
    };
    let fd = attrs("frame_dino");
    assert_eq!(fd["layer"], 3);
    assert_eq!(fd["preprocess"]["frames"], 4);
    assert_eq!(fd["preprocess"]["gray"], "replicated to RGB");
    assert!(!fd["weights"].as_array().unwrap().is_empty());
    let sp = attrs("spectrogram");
    for (k, v) in [
        ("n_fft", 1024),
        ("hop", 320),
        ("n_mels", 64),
        ("sample_rate", 16000),
    ] {
        assert_eq!(sp[k], v, "{k}");
    }
    assert!(sp["fit"].as_str().unwrap().contains("padded"));
    // the grown store equals one extracted with every stage in one run
    assert_same_store(reference_store(), &store);
    let v = run(&["verify", "--store", store.to_str().unwrap()]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    // a changed frame_dino setting is refused on this store (provenance), nothing written
    let o = extract(
        &f.data,
        &store,
        &["--only", "frame_dino", "--frame-dino-layer", "2"],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("frame_dino"));
    assert_eq!(snapshot(&store), after);
    // a clip shorter than spectrogram.min_seconds is a named fault, never a padded spectrogram
    let strict_cfg = tmp.path().join("min4.toml");
    let text = std::fs::read_to_string(config()).unwrap();
    assert!(text.contains("min_seconds = 1.0"));
    std::fs::write(
        &strict_cfg,
        text.replace("min_seconds = 1.0", "min_seconds = 3.5"),
    )
    .unwrap();
    let short = tmp.path().join("short.zarr");
    let mut a = run_args(&f.data, &short, &["--only", "spectrogram"]);
    a[2] = strict_cfg.display().to_string();
    assert!(run(&a.iter().map(String::as_str).collect::<Vec<_>>())
        .status
        .success());
    let faults = report_of(&short, "extract")["faults"].clone();
    let faults = faults.as_array().unwrap();
    assert_eq!(faults.len(), 24);
    for x in faults {
        assert_eq!(x["modality"], "audio");
        assert!(x["file"].as_str().unwrap().ends_with(".flac"), "{x}");
        let e = x["error"].as_str().unwrap();
        assert!(
            e.contains("shorter than spectrogram.min_seconds = 3.5"),
            "{e}"
        );
    }
    assert!(!snapshot(&short)
        .keys()
        .any(|k| k.starts_with("audio/spectrogram/c/")));
}

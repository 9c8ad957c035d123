//! `supcon` against its references and the platform hook it relies on:
//! - the SupCon loss (and its gradient) on fixed embeddings and labels equals PyTorch's formula,
//!   and the k-NN vote (predicted class, defect probability) with its accuracy, macro-F1 and
//!   per-class F1 on a fixed bank and queries equals scikit-learn (`tests/oracle/supcon_torch.py`);
//! - trained through the registry on a supervised split of a synthetic store, the TRAIN bank in
//!   `best.safetensors` and `last.safetensors` (raw `model.*` and EMA `ema.*` weights) is the
//!   embedding of TRAIN by those very weights, and the shipped all-good TRAIN is refused with
//!   the command that writes a supervised split.
mod heads_common;

use heads_common::{rng_lock, run_oracle};
use std::collections::HashMap;
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};
use weld_cache::features::splits::{by_session, write_split_file};
use weld_cache::features::synth_store::{write_synth_store, SynthStoreSpec};
use weld_cache::features::StoreFeeder;
use weld_cache::heads::supcon::loss::{knn_vote, supcon_loss};
use weld_cache::heads::supcon::SupCon;
use weld_cache::heads::{registry, Head, StoreContext};
use weld_cache::metrics::class_key;
use weld_cache::metrics::classification::classification;
use weld_cache::schema::{sample_table, Split};
use weld_cache::store::StoreReader;
use weld_cache::train::trainer::load_model;
use weld_cache::train::{FitOutcome, Outcome, RunOptions, Setup, Task};

fn rows(t: &Tensor) -> Vec<Vec<f64>> {
    let s = t.size();
    let flat = Vec::<f64>::try_from(t.to_kind(Kind::Double).reshape([-1])).unwrap();
    flat.chunks(s[1] as usize).map(|c| c.to_vec()).collect()
}

fn ints(t: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(t.to_kind(Kind::Int64)).unwrap()
}

fn unit(t: Tensor) -> Tensor {
    let n = t.norm_scalaropt_dim(2.0, [1], true);
    t / n
}

#[test]
fn loss_and_knn_equal_pytorch_and_sklearn() {
    let _g = rng_lock();
    tch::manual_seed(3);
    let (b, e, n, q, k) = (24, 8, 40, 30, 5);
    // labels with a singleton class (an anchor without positives is left out)
    let labels: Vec<i64> = (0..b).map(|i| if i == 5 { 7 } else { i % 4 }).collect();
    let emb = unit(Tensor::randn([b, e], (Kind::Float, Device::Cpu)));
    // a bank of 4 classes around class centres; queries around the same centres (some far off)
    let centres = Tensor::randn([4, e], (Kind::Float, Device::Cpu));
    let bank_c: Vec<i64> = (0..n).map(|i| [0, 0, 1, 2, 3][i as usize % 5]).collect();
    let query_c: Vec<i64> = (0..q).map(|i| [0, 1, 0, 2, 3, 0][i as usize % 6]).collect();
    let around = |c: &[i64], noise: f64| {
        let idx = Tensor::from_slice(c);
        centres.index_select(0, &idx)
            + Tensor::randn([c.len() as i64, e], (Kind::Float, Device::Cpu)) * noise
    };
    let bank = around(&bank_c, 0.8);
    let query = around(&query_c, 1.6);

    let tmp = tempfile::tempdir().unwrap();
    let inp = tmp.path().join("in.json");
    let out = tmp.path().join("out.json");
    let temperature = 0.07;
    std::fs::write(
        &inp,
        serde_json::json!({
            "emb": rows(&emb), "labels": labels, "temperature": temperature,
            "bank": rows(&bank), "bank_classes": bank_c, "query": rows(&query),
            "query_classes": query_c, "k": k,
        })
        .to_string(),
    )
    .unwrap();
    run_oracle(
        "supcon_torch.py",
        &[inp.to_str().unwrap(), out.to_str().unwrap()],
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();

    // the loss in f32, as the head computes it
    let z = emb.detach().set_requires_grad(true);
    let (loss, anchors) = supcon_loss(&z, &Tensor::from_slice(&labels), temperature);
    loss.backward();
    let want = r["loss"].as_f64().unwrap();
    let got = loss.double_value(&[]);
    let rel = (got - want).abs() / want.abs();
    println!("supcon loss {got:.7} vs PyTorch {want:.7}: relative error {rel:.2e}");
    assert!(rel < 1e-5, "loss {got} vs {want}");
    assert_eq!(anchors, r["anchors"].as_i64().unwrap());
    assert_eq!(anchors, b - 1, "the singleton anchor is left out");
    let grad = rows(&z.grad());
    let want_g: Vec<Vec<f64>> = serde_json::from_value(r["grad"].clone()).unwrap();
    let scale = want_g.iter().flatten().fold(0f64, |m, v| m.max(v.abs()));
    let worst = grad
        .iter()
        .flatten()
        .zip(want_g.iter().flatten())
        .fold(0f64, |m, (a, b)| m.max((a - b).abs()));
    println!("supcon gradient: max error {worst:.2e} of max |grad| {scale:.3}");
    assert!(worst < 1e-5 * scale.max(1.0), "gradient error {worst}");
    // no anchor with a positive: zero loss that still back-propagates
    let lone = emb.narrow(0, 0, 3).detach().set_requires_grad(true);
    let (l0, a0) = supcon_loss(&lone, &Tensor::from_slice(&[0i64, 1, 2]), temperature);
    assert_eq!((l0.double_value(&[]), a0), (0.0, 0));
    l0.backward();

    // the k-NN vote in f32
    let (pred, share, p) = knn_vote(&query, &bank, &Tensor::from_slice(&bank_c), k, 4);
    let pred = ints(&pred);
    let want_pred: Vec<i64> = serde_json::from_value(r["pred"].clone()).unwrap();
    assert_eq!(pred, want_pred, "k-NN classes differ from scikit-learn's");
    let p = Vec::<f64>::try_from(p.to_kind(Kind::Double)).unwrap();
    let want_p: Vec<f64> = serde_json::from_value(r["p_defect"].clone()).unwrap();
    let worst = p
        .iter()
        .zip(&want_p)
        .fold(0f64, |m, (a, b)| m.max((a - b).abs()));
    println!("k-NN defect probability: max error {worst:.2e}");
    assert!(worst < 1e-5, "defect probability error {worst}");
    let sums = share.sum_dim_intlist(1, false, Kind::Double);
    assert!((sums - 1.0).abs().max().double_value(&[]) < 1e-6);
    // some queries are misclassified, so the metrics below are not trivially 1
    assert!(pred.iter().zip(&query_c).any(|(a, b)| a != b));
    assert!(want_p.iter().any(|&v| v > 0.0 && v < 1.0), "no mixed vote");

    let truth: Vec<u8> = query_c.iter().map(|&c| c as u8).collect();
    let pred_u: Vec<u8> = pred.iter().map(|&c| c as u8).collect();
    let m = classification(&truth, &pred_u).unwrap();
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    println!(
        "k-NN accuracy {:.4}, macro-F1 {:.4}",
        m.accuracy, m.macro_f1
    );
    assert!(close(m.accuracy, r["accuracy"].as_f64().unwrap()));
    assert!(close(m.macro_f1, r["macro_f1"].as_f64().unwrap()));
    let want_f1 = r["per_class_f1"].as_object().unwrap();
    assert_eq!(m.per_class_f1.len(), want_f1.len());
    for (c, v) in want_f1 {
        let key = class_key(c.parse().unwrap());
        assert!(
            close(m.per_class_f1[&key], v.as_f64().unwrap()),
            "F1 of {key}"
        );
    }
}

const CONFIG: &str = r#"
head = "supcon"
[supcon]
image_layer = 2
d_model = 16
fusion_tokens = 2
heads = 2
ff = 16
proj_hidden = 16
embed_dim = 8
ce_weight = 0.1
[train]
epochs = 3
batch_size = 16
eval_batch_size = 7
drop_last = false
lr = 3e-3
min_lr = 1e-5
warmup_epochs = 0
warmup_start_lr = 1e-4
weight_decay = 1e-2
betas = [0.9, 0.999]
eps = 1e-8
grad_clip = 1.0
ema = true
ema_max_decay = 0.99
patience = 20
seed = 4
"#;

fn setup<'a>(doc: &'a toml::Value, store: &'a Path) -> Setup<'a> {
    Setup {
        doc,
        store,
        device: Device::Cpu,
        resident: false,
        verbose: false,
    }
}

fn train(doc: &toml::Value, store: &Path, out: &Path) -> weld_cache::Result<Outcome> {
    let opts = RunOptions {
        out: out.to_path_buf(),
        fingerprint: String::new(),
        config_text: toml::to_string(doc).unwrap(),
        resume: false,
        max_epochs_this_run: None,
    };
    registry::run(
        &setup(doc, store),
        Task::Train {
            opts,
            on_event: &mut |_| {},
        },
    )
}

/// The TRAIN embeddings `[N, E]` by the weights `prefix.*` of checkpoint `path`, and the bank
/// saved beside them.
fn rebuilt_bank(
    doc: &toml::Value,
    store: &Path,
    split: &Path,
    path: &Path,
    prefix: &str,
) -> (Tensor, Tensor) {
    let cfg = SupCon::config(doc).unwrap();
    let mut feeder = StoreFeeder::open_with_splits(
        store,
        &SupCon::inputs(&cfg),
        SupCon::needs(&cfg),
        Device::Cpu,
        false,
        Some(split),
    )
    .unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let head = SupCon::build(&vs.root(), &cfg, &StoreContext { feeder: &feeder }).unwrap();
    let (tensors, _) = weld_cache::train::checkpoint::load(path).unwrap();
    let chosen: HashMap<String, Tensor> = tensors
        .iter()
        .filter_map(|(k, t)| {
            k.strip_prefix(&format!("{prefix}."))
                .map(|v| (format!("model.{v}"), t.shallow_clone()))
        })
        .collect();
    load_model(&vs, &chosen, path).unwrap();
    let n = feeder.rows(Split::Train).len();
    let _g = tch::no_grad_guard();
    let parts: Vec<Tensor> = (0..n)
        .collect::<Vec<_>>()
        .chunks(16)
        .map(|c| {
            head.embed(
                &head
                    .make_batch(feeder.load(Split::Train, c).unwrap())
                    .unwrap(),
            )
        })
        .collect();
    (Tensor::cat(&parts, 0), chosen["model.bank"].shallow_clone())
}

#[test]
fn bank_is_the_train_embedding_of_the_saved_weights() {
    let _g = rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let spec = SynthStoreSpec {
        n_val: 48,
        n_test: 48,
        sensor_len: 32,
        ..SynthStoreSpec::default()
    };
    write_synth_store(&store, &spec).unwrap();
    let mut doc: toml::Value = toml::from_str(CONFIG).unwrap();

    // the shipped TRAIN (good welds only) is refused, naming the fix
    let err = train(&doc, &store, &tmp.path().join("refused"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("train-head resplit --store")
            && err.contains("--supervised")
            && err.contains("--split-file"),
        "{err}"
    );

    let table = sample_table(&StoreReader::open(&store).unwrap()).unwrap();
    let split = tmp.path().join("split.csv");
    write_split_file(
        &split,
        &by_session(&table, true, [0.6, 0.2, 0.2], 0).unwrap(),
    )
    .unwrap();
    doc.as_table_mut()
        .unwrap()
        .insert("split_file".into(), split.to_str().unwrap().into());
    let out = tmp.path().join("run");
    let ev = match train(&doc, &store, &out).unwrap() {
        Outcome::Trained(FitOutcome::Finished(ev)) => ev,
        _ => panic!("3 epochs finish"),
    };
    for m in [&ev.metrics.val, &ev.metrics.test] {
        let c = m
            .classification
            .as_ref()
            .expect("supcon writes classification metrics");
        assert!(c.accuracy > 0.0 && c.macro_f1 > 0.0, "{c:?}");
    }
    let mut banks = vec![];
    for (file, prefix) in [("best", "model"), ("last", "model"), ("last", "ema")] {
        let path = out.join(format!("{file}.safetensors"));
        let (emb, bank) = rebuilt_bank(&doc, &store, &split, &path, prefix);
        let d = (&emb - &bank).abs().max().double_value(&[]);
        println!("{file} {prefix}: bank vs TRAIN embedding of its weights: max difference {d:.2e}");
        assert!(
            d < 1e-5,
            "{file}.safetensors {prefix}.bank is not its weights' TRAIN embedding ({d})"
        );
        banks.push(bank);
    }
    // raw and EMA weights differ after 3 epochs, so their banks do: the check above can fail
    let d = (&banks[1] - &banks[2]).abs().max().double_value(&[]);
    assert!(d > 1e-3, "raw and EMA banks are equal ({d})");
}

//! Training-side faults (issue 12): a score that is not finite names the sample keys; a
//! checkpoint write that fails late leaves no `.tmp` behind (nothing blocks `--resume`); a
//! truncated checkpoint says so and names the fix.
use tch::{nn, Device, Kind, Tensor};
use weld_cache::features::synth::{SynthConfig, SynthFeatures};
use weld_cache::features::Inputs;
use weld_cache::heads::{Head, StoreContext};
use weld_cache::schema::Split;
use weld_cache::train::checkpoint::{self, TrainState, FORMAT};
use weld_cache::train::score_split;

/// Scores log(x[:, 0]): NaN for every sample whose first feature is negative.
struct LogFirst;

impl Head for LogFirst {
    const NAME: &'static str = "log-first";
    type Config = ();
    type Batch = Tensor;
    fn config(_: &toml::Value) -> weld_cache::Result<()> {
        Ok(())
    }
    fn inputs(_: &()) -> Inputs {
        Inputs::default()
    }
    fn build(_: &nn::Path, _: &(), _: &StoreContext) -> weld_cache::Result<Self> {
        Ok(LogFirst)
    }
    fn make_batch(&self, fed: Vec<Tensor>) -> weld_cache::Result<Tensor> {
        Ok(fed.into_iter().next().expect("one input"))
    }
    fn score(&self, x: &Tensor) -> Tensor {
        x.select(1, 0).log()
    }
}

#[test]
fn a_nan_score_names_the_sample_keys() {
    let cfg = SynthConfig {
        dim: 4,
        rank: 2,
        n_train: 8,
        n_val: 12,
        n_test: 12,
        defect_fraction: 0.5,
        n_classes: 2,
        shift: 3.0,
        noise: 0.1,
        seed: 1,
    };
    let mut src = SynthFeatures::new(&cfg, Device::Cpu, false).unwrap();
    let err = score_split(&LogFirst, &mut src, Split::Val, 5, false)
        .expect_err("some VAL sample has a negative first feature")
        .to_string();
    assert!(err.contains("VAL sample `VAL/000"), "{err}");
    assert!(err.contains("not finite"), "{err}");
}

fn state() -> TrainState {
    TrainState {
        format: FORMAT,
        epochs_done: 1,
        adam_step: 3,
        ema_updates: 0,
        seed: 1,
        best_auroc: Some(0.5),
        best_epoch: Some(0),
        best_chosen: "raw".into(),
        bad_epochs: 0,
        stopped: false,
        history: vec![],
        fingerprint: "fp".into(),
        config: "x = 1".into(),
    }
}

#[test]
fn a_failed_checkpoint_write_leaves_no_tmp_and_a_truncated_one_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let t = vec![(
        "model.w".to_string(),
        Tensor::ones([64, 64], (Kind::Float, Device::Cpu)),
    )];
    // the rename fails (a non-empty folder sits where the checkpoint goes): the write fails
    // after the temporary file was complete, and the temporary file is gone
    let blocked = tmp.path().join("last.safetensors");
    std::fs::create_dir_all(blocked.join("x")).unwrap();
    let err = checkpoint::save(&blocked, &t, &state())
        .unwrap_err()
        .to_string();
    assert!(err.contains("last.safetensors"), "{err}");
    assert!(
        !tmp.path().join("last.safetensors.tmp").exists(),
        "a .tmp was left behind"
    );

    let good = tmp.path().join("best.safetensors");
    checkpoint::save(&good, &t, &state()).unwrap();
    assert_eq!(checkpoint::load(&good).unwrap().1, state());
    let bytes = std::fs::read(&good).unwrap();
    // cut inside the header (what `MetadataIncompleteBuffer` meant) and inside the tensor data
    for cut in [40, bytes.len() / 3] {
        std::fs::write(&good, &bytes[..cut]).unwrap();
        let err = checkpoint::load(&good).unwrap_err().to_string();
        assert!(err.contains(&format!("truncated ({cut} bytes")), "{err}");
        assert!(
            err.contains("best.safetensors") && err.contains("Delete it"),
            "{err}"
        );
    }
}

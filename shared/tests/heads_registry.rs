//! A head registered from outside the library through the same traits, in under 60 lines: a
//! fit-once head (squared distance to the TRAIN mean of one pooled DINOv3 vector) run by the
//! registry's `run_bank` on a synthetic store; it writes metrics.json, scores.csv and run.json.
use tch::{nn, Kind, Tensor};
use weld_cache::features::{Input, Inputs, PooledStat};
use weld_cache::heads::registry::Entry;
use weld_cache::heads::{BankHead, Head, StoreContext};
use weld_cache::train::driver::run_bank;

struct DistToMean {
    mean: Tensor,
}

impl Head for DistToMean {
    const NAME: &'static str = "dist-to-mean";
    type Config = ();
    type Batch = Tensor;
    fn config(_: &toml::Value) -> weld_cache::Result<()> {
        Ok(())
    }
    fn inputs(_: &()) -> Inputs {
        let per_sample = vec![Input::Pooled {
            layer: 2,
            stat: PooledStat::Mean,
        }];
        Inputs {
            per_sample,
            text: false,
        }
    }
    fn build(p: &nn::Path, _: &(), ctx: &StoreContext) -> weld_cache::Result<Self> {
        let d = ctx.feeder.input_shape(0)[1];
        Ok(DistToMean {
            mean: p.zeros_no_train("mean", &[d]),
        })
    }
    fn make_batch(&self, fed: Vec<Tensor>) -> weld_cache::Result<Tensor> {
        Ok(fed[0].mean_dim(1, false, Kind::Float)) // [B, V, D] -> [B, D]
    }
    fn score(&self, x: &Tensor) -> Tensor {
        (x - &self.mean)
            .square()
            .sum_dim_intlist(1, false, Kind::Float)
    }
}

impl BankHead for DistToMean {
    fn fit(
        &mut self,
        train: &mut dyn Iterator<Item = weld_cache::Result<Vec<Tensor>>>,
    ) -> weld_cache::Result<()> {
        let all: Vec<Tensor> = train
            .map(|f| self.make_batch(f?))
            .collect::<weld_cache::Result<_>>()?;
        self.mean
            .copy_(&Tensor::cat(&all, 0).mean_dim(0, false, Kind::Float));
        Ok(())
    }
}

#[test]
fn an_extra_fit_once_head_runs_through_the_registry_runner() {
    use weld_cache::features::synth_store::{write_synth_store, SynthStoreSpec};
    use weld_cache::train::{FitOutcome, Outcome, RunOptions, Setup, Task};
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    write_synth_store(&store, &SynthStoreSpec::default()).unwrap();
    let text =
        "head = \"dist-to-mean\"\n[train]\nepochs = 1\nbatch_size = 8\neval_batch_size = 8\n\
        drop_last = false\nlr = 1.0\nmin_lr = 0.0\nwarmup_epochs = 0\nwarmup_start_lr = 0.0\n\
        weight_decay = 0.0\nbetas = [0.9, 0.999]\neps = 1e-8\ngrad_clip = 1.0\nema = false\n\
        ema_max_decay = 0.9\npatience = 1\nseed = 1\n";
    let doc: toml::Value = toml::from_str(text).unwrap();
    let entry = Entry {
        name: DistToMean::NAME,
        run: run_bank::<DistToMean>,
        reads_store: true,
    };
    let setup = Setup {
        doc: &doc,
        store: &store,
        device: tch::Device::Cpu,
        resident: false,
        verbose: false,
    };
    let out = tmp.path().join("run");
    let opts = RunOptions {
        out: out.clone(),
        fingerprint: String::new(),
        config_text: text.into(),
        resume: false,
        max_epochs_this_run: None,
    };
    let ev = match (entry.run)(
        &setup,
        Task::Train {
            opts,
            on_event: &mut |_| {},
        },
    )
    .unwrap()
    {
        Outcome::Trained(FitOutcome::Finished(ev)) => ev,
        _ => panic!("a fit-once head finishes in one call"),
    };
    // the planted defects shift the image tokens: the TRAIN-mean distance must find them
    assert!(
        ev.metrics.test.auroc > 0.7,
        "TEST AUROC {}",
        ev.metrics.test.auroc
    );
    assert_eq!(ev.metrics.chosen, "fit");
    let csv = std::fs::read_to_string(out.join("scores.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 48 + 24 + 24);
    assert!(out.join("metrics.json").is_file() && out.join("run.json").is_file());
}

//! `supcon` (the seed's V4, DESIGN.md "The seed's other systems"): four-modality
//! cross-attention fusion trained with a supervised contrastive loss, evaluated by k-NN on a
//! TRAIN bank of its embeddings.
//!
//! Inputs ([`config::Modality`], `[supcon] modalities`, default all four, in this order):
//! `video/tokens` `[Tv, Dv]`, `audio/tokens` `[W, Na, Da]` (read as `[W * Na, Da]`),
//! `image/tokens_L{image_layer}` `[V, Ntok, Di]` (read as `[V * Ntok, Di]`), `sensor/raw`
//! `[L, C]` (standardised per channel with the TRAIN mean and ddof-0 standard deviation,
//! `sensor_mean` / `sensor_std` in the checkpoint). Token widths come from the store.
//! Network: [`model::FusionModel`] -> embedding `[B, E]` (unit rows).
//!
//! Loss: [`loss::supcon_loss`] (temperature `temperature`, default 0.07) of the embeddings of a
//! TRAIN batch with its class codes, plus `ce_weight` (default 0: no classifier is built) times
//! the cross-entropy of a linear classifier on the pooled feature over the classes present in
//! TRAIN. The labels reach the loss through [`Head::with_classes`]; scoring never reads them.
//!
//! Needs labelled defects in TRAIN ([`Needs::LabelledTrain`]); the shipped split has none, and
//! the head refuses a TRAIN of one class, naming `train-head resplit --supervised` and
//! `--split-file` (a run on such a split has that split's VAL and TEST, not the shipped ones).
//!
//! Evaluation: before every VAL scoring of the training loop (raw and EMA weights,
//! [`GradientHead::refresh_from_train`]) the head embeds all of TRAIN with the weights being
//! evaluated into its bank (`bank` `[N_train, E]` f32, `bank_classes` `[N_train]` i64,
//! non-trainable, so `best.safetensors` carries the bank of its own weights and `eval` and
//! `score` work from the checkpoint alone). Score: the defect probability of a
//! similarity-weighted vote of the `k` (default 5) TRAIN neighbours of largest cosine
//! similarity, each weighted by the inverse cosine distance (scikit-learn's
//! `KNeighborsClassifier(metric="cosine", weights="distance")`, see [`loss::knn_vote`]); a
//! plain vote fraction would give only k + 1 distinct scores. Score parts: `pred_class` (the
//! weighted majority class, whose accuracy, macro-F1 and per-class F1 are written to
//! `metrics.json` under `classification`) and `p_defect` (the score). TRAIN samples are scored
//! against a bank that holds themselves (their `scores.csv` rows are near their own label).
pub mod config;
pub mod loss;
pub mod model;

use crate::features::{Input, Inputs, Needs};
use crate::heads::{GradientHead, Head, Named, StoreContext};
use crate::metrics::class_key;
use crate::metrics::classification::PRED_CLASS_PART;
use crate::schema::{Split, AUDIO_TOKENS, SENSOR_RAW, VIDEO_TOKENS};
use crate::{Error, Result};
use config::{Modality, SupConConfig};
use model::FusionModel;
use tch::{nn, Kind, Tensor};

/// A batch: each modality's tokens `[B, N_m, D_m]` (config order, sensors standardised) and,
/// for labelled samples, their class codes `[B]` (i64).
pub struct SupConBatch {
    pub tokens: Vec<Tensor>,
    pub classes: Option<Tensor>,
}

/// The `supcon` head.
pub struct SupCon {
    cfg: SupConConfig,
    model: FusionModel,
    /// `[N_train, E]` embeddings of TRAIN and their class codes `[N_train]`
    bank: Tensor,
    bank_classes: Tensor,
    /// class code -> classifier index (`-100`, ignored, for a class absent from TRAIN) `[256]`
    code_index: Tensor,
    /// one more than the largest TRAIN class code (columns of the k-NN vote)
    n_codes: i64,
    /// position of the sensor input and its TRAIN standardisation `[C]`
    sensor: Option<(usize, Tensor, Tensor)>,
    /// token count and width per modality, for the description
    shapes: Vec<(Modality, i64, i64)>,
    train_classes: Vec<u8>,
}

impl SupCon {
    /// Embeddings `[B, E]` of a batch in eval mode.
    pub fn embed(&self, b: &SupConBatch) -> Tensor {
        self.model.forward(&b.tokens, false).embedding
    }

    fn vote(&self, b: &SupConBatch) -> (Tensor, Tensor) {
        let emb = self.embed(b);
        let (pred, _, p) = loss::knn_vote(
            &emb,
            &self.bank,
            &self.bank_classes,
            self.cfg.k,
            self.n_codes,
        );
        (pred, p)
    }
}

/// The refusal of a TRAIN without two classes, with the command that writes a supervised split.
fn single_class(store: &std::path::Path, classes: &[u8]) -> Error {
    let have: Vec<String> = classes.iter().map(|&c| class_key(c)).collect();
    Error::BadInput {
        what: format!("store {}", store.display()),
        msg: format!(
            "supcon trains on labelled defects, but TRAIN holds only class(es) [{}]. Write a \
             supervised split (sessions of every class dealt to TRAIN/VAL/TEST) and train on it:\n  \
             train-head resplit --store {} --by-session --supervised --out split.csv\n  \
             train-head train --head supcon ... --split-file split.csv\n(the run's VAL and TEST \
             are then that split's, not the shipped ones)",
            have.join(", "),
            store.display()
        ),
    }
}

impl Head for SupCon {
    const NAME: &'static str = "supcon";
    type Config = SupConConfig;
    type Batch = SupConBatch;

    fn config(doc: &toml::Value) -> Result<SupConConfig> {
        SupConConfig::from_doc(doc)
    }

    fn inputs(cfg: &SupConConfig) -> Inputs {
        let per_sample = cfg
            .modalities
            .iter()
            .map(|m| match m {
                Modality::Video => Input::Array(VIDEO_TOKENS.into()),
                Modality::Audio => Input::Array(AUDIO_TOKENS.into()),
                Modality::Image => Input::Tokens {
                    layer: cfg.image_layer.expect("checked by the config"),
                },
                Modality::Sensor => Input::Array(SENSOR_RAW.into()),
            })
            .collect();
        Inputs {
            per_sample,
            text: false,
        }
    }

    fn needs(_cfg: &SupConConfig) -> Needs {
        Needs::LabelledTrain
    }

    fn build(p: &nn::Path, cfg: &SupConConfig, ctx: &StoreContext) -> Result<Self> {
        let f = ctx.feeder;
        let mut train_classes = f.classes(Split::Train);
        let n_train = train_classes.len() as i64;
        train_classes.sort_unstable();
        train_classes.dedup();
        if train_classes.len() < 2 {
            return Err(single_class(f.root(), &train_classes));
        }
        let shapes: Vec<(Modality, i64, i64)> = cfg
            .modalities
            .iter()
            .enumerate()
            .map(|(i, &m)| {
                let s = f.input_shape(i);
                let d = *s.last().unwrap_or(&0);
                let n: i64 = s[..s.len().saturating_sub(1)].iter().product();
                (m, n, d)
            })
            .collect();
        if let Some((m, _, _)) = shapes.iter().find(|(_, n, d)| *n < 1 || *d < 1) {
            return Err(Error::Msg(format!(
                "supcon: the store's {m:?} input has no tokens"
            )));
        }
        let dims: Vec<i64> = shapes.iter().map(|s| s.2).collect();
        let model = FusionModel::new(&(p / "fusion"), cfg, &dims, train_classes.len() as i64);
        let dev = p.device();
        let sensor = match cfg.modalities.iter().position(|&m| m == Modality::Sensor) {
            None => None,
            Some(i) => {
                let all = f.whole_split(Split::Train, i)?.to_kind(Kind::Double); // [N, L, C]
                let flat = all.reshape([-1, all.size()[2]]);
                let mean = flat.mean_dim(0, false, Kind::Double);
                let std = flat.std_correction(0, 0, false).clamp_min(1e-6);
                let c = mean.size()[0];
                let mut m = p.zeros_no_train("sensor_mean", &[c]);
                let mut s = p.ones_no_train("sensor_std", &[c]);
                let _g = tch::no_grad_guard();
                m.copy_(&mean.to_kind(Kind::Float));
                s.copy_(&std.to_kind(Kind::Float));
                Some((i, m, s))
            }
        };
        let mut index = vec![-100i64; 256];
        for (j, &c) in train_classes.iter().enumerate() {
            index[c as usize] = j as i64;
        }
        Ok(SupCon {
            bank: p.add(
                "bank",
                Tensor::zeros([n_train, cfg.embed_dim], (Kind::Float, dev)),
                false,
            ),
            bank_classes: p.add(
                "bank_classes",
                Tensor::zeros([n_train], (Kind::Int64, dev)),
                false,
            ),
            code_index: Tensor::from_slice(&index).to_device(dev),
            n_codes: *train_classes.last().expect("two classes") as i64 + 1,
            cfg: cfg.clone(),
            model,
            sensor,
            shapes,
            train_classes,
        })
    }

    fn make_batch(&self, fed: Vec<Tensor>) -> Result<SupConBatch> {
        crate::heads::expect_inputs(Self::NAME, &fed, self.cfg.modalities.len())?;
        let tokens = fed
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                let s = t.size();
                let t = t.reshape([s[0], -1, s[s.len() - 1]]);
                match &self.sensor {
                    Some((j, m, sd)) if *j == i => (t - m) / sd,
                    _ => t,
                }
            })
            .collect();
        Ok(SupConBatch {
            tokens,
            classes: None,
        })
    }

    fn with_classes(&self, mut b: SupConBatch, classes: &[u8]) -> SupConBatch {
        let c: Vec<i64> = classes.iter().map(|&c| c as i64).collect();
        b.classes = Some(Tensor::from_slice(&c).to_device(self.bank.device()));
        b
    }

    /// Defect probability of the k-NN vote, `[B]`.
    fn score(&self, b: &SupConBatch) -> Tensor {
        self.vote(b).1
    }

    fn score_parts(&self, b: &SupConBatch) -> Vec<(String, Tensor)> {
        let (pred, p) = self.vote(b);
        vec![
            (PRED_CLASS_PART.into(), pred.to_kind(Kind::Float)),
            ("p_defect".into(), p),
        ]
    }

    /// `knn_acc`: accuracy of the k-NN class on a labelled batch.
    fn diagnostics(&self, b: &SupConBatch) -> Named {
        match &b.classes {
            Some(c) => {
                let acc = self
                    .vote(b)
                    .0
                    .eq_tensor(c)
                    .to_kind(Kind::Float)
                    .mean(Kind::Float)
                    .double_value(&[]);
                vec![("knn_acc".into(), acc)]
            }
            None => vec![],
        }
    }

    fn describe(&self, vs: &nn::VarStore) -> String {
        let n: i64 = vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        let mods: Vec<String> = self
            .shapes
            .iter()
            .map(|(m, k, d)| format!("{m:?} {k}x{d}"))
            .collect();
        let classes: Vec<String> = self.train_classes.iter().map(|&c| class_key(c)).collect();
        format!(
            "supcon: {} -> {} fusion tokens x {} -> embedding {}; {n} trainable parameters; \
             TRAIN bank {} x {} (classes {}); k = {}\n",
            mods.join(", "),
            self.cfg.fusion_tokens,
            self.cfg.d_model,
            self.cfg.embed_dim,
            self.bank.size()[0],
            self.cfg.embed_dim,
            classes.join(", "),
            self.cfg.k
        )
    }
}

impl GradientHead for SupCon {
    fn loss(&self, b: &SupConBatch, train: bool) -> (Tensor, Named) {
        let classes = b
            .classes
            .as_ref()
            .expect("supcon: a training batch carries its class codes (Head::with_classes)");
        let fwd = self.model.forward(&b.tokens, train);
        let (sc, anchors) = loss::supcon_loss(&fwd.embedding, classes, self.cfg.temperature);
        let mut terms = vec![
            ("supcon".to_string(), sc.double_value(&[])),
            ("anchors".to_string(), anchors as f64),
        ];
        let total = match &fwd.logits {
            Some(logits) => {
                let target = self.code_index.index_select(0, classes);
                let ce = logits.cross_entropy_loss::<Tensor>(
                    &target,
                    None,
                    tch::Reduction::Mean,
                    -100,
                    0.0,
                );
                terms.push(("ce".to_string(), ce.double_value(&[])));
                sc + ce * self.cfg.ce_weight
            }
            None => sc,
        };
        (total, terms)
    }

    /// Embeds TRAIN with the weights now loaded into the bank (see the module docs).
    fn refresh_from_train(
        &self,
        train: &mut dyn Iterator<Item = Result<(SupConBatch, Vec<u8>)>>,
    ) -> Result<()> {
        let mut embs = vec![];
        let mut codes: Vec<i64> = vec![];
        for item in train {
            let (b, c) = item?;
            embs.push(self.embed(&b));
            codes.extend(c.iter().map(|&x| x as i64));
        }
        let n = self.bank.size()[0];
        if codes.len() as i64 != n || embs.is_empty() {
            return Err(Error::Msg(format!(
                "supcon: TRAIN gave {} samples, the bank was built for {n}",
                codes.len()
            )));
        }
        let emb = Tensor::cat(&embs, 0);
        let mut bank = self.bank.shallow_clone();
        bank.copy_(&emb);
        let mut cls = self.bank_classes.shallow_clone();
        cls.copy_(&Tensor::from_slice(&codes).to_device(cls.device()));
        Ok(())
    }
}

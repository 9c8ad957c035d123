//! What Causal-FiLM reads from the store and how the fed tensors become a [`HeadBatch`]; the
//! head traits (thin delegations to [`CausalFilmHead`]).
//!
//! Inputs, in order: `video/tokens` [Tv, Dv], `audio/tokens` [W, Na, Da] (windows concatenated
//! to [W*Na, Da]), `sensor/raw` [L, C], one `image/pooled` selection [V, Di] per mean/max
//! branch, one `image/tokens_L{i}` [V, Ntok, Di] per GeM branch, and the CLIP text embedding.
//! Model dims must equal the store's: a mismatch names the config key and the store's value (no
//! "auto" filling: the resolved config a run records stays the model it built).
use super::config::{CausalFilmConfig, SensorNorm};
use super::result::{result_branch_inputs, BranchInput};
use super::{CausalFilmHead, HeadBatch};
use crate::features::{Input, Inputs};
use crate::heads::{GradientHead, Head, Named, StoreContext};
use crate::schema::{Split, AUDIO_TOKENS, SENSOR_RAW, TEXT_FILE, VIDEO_TOKENS};
use crate::{Error, Result};
use tch::{nn, Kind, Tensor};

/// Position of the first image input (after video, audio, sensor).
const IMAGE_AT: usize = 3;

fn dim_err(store: &std::path::Path, key: &str, cfg: i64, what: &str, found: String) -> Error {
    Error::BadInput {
        what: format!("store {}", store.display()),
        msg: format!("config `{key}` = {cfg}, but the store's `{what}` has {found}"),
    }
}

impl Head for CausalFilmHead {
    const NAME: &'static str = "causal-film";
    type Config = CausalFilmConfig;
    type Batch = HeadBatch;

    fn config(doc: &toml::Value) -> Result<CausalFilmConfig> {
        CausalFilmConfig::from_toml_value(doc, "resolved config")
    }

    fn inputs(cfg: &CausalFilmConfig) -> Inputs {
        let mut per_sample = vec![
            Input::Array(VIDEO_TOKENS.into()),
            Input::Array(AUDIO_TOKENS.into()),
            Input::Array(SENSOR_RAW.into()),
        ];
        let branches = result_branch_inputs(cfg);
        // pooled branches first, then GeM tokens: the order HeadBatch holds them in
        for b in &branches {
            if let BranchInput::Pooled { layer, stat } = *b {
                per_sample.push(Input::Pooled { layer, stat });
            }
        }
        for b in &branches {
            if let BranchInput::Tokens { layer } = *b {
                per_sample.push(Input::Tokens { layer });
            }
        }
        Inputs {
            per_sample,
            text: true,
        }
    }

    fn build(p: &nn::Path, cfg: &CausalFilmConfig, ctx: &StoreContext) -> Result<Self> {
        let f = ctx.feeder;
        let m = &cfg.model;
        let store = f.root();
        let fmt = |s: &[i64]| format!("sample shape {s:?}");
        let v = f.input_shape(0);
        if v.len() != 2 || v[1] != m.video_dim {
            return Err(dim_err(
                store,
                "model.video_dim",
                m.video_dim,
                VIDEO_TOKENS,
                fmt(&v),
            ));
        }
        let a = f.input_shape(1);
        if a.len() != 3 || a[2] != m.audio_dim {
            return Err(dim_err(
                store,
                "model.audio_dim",
                m.audio_dim,
                AUDIO_TOKENS,
                fmt(&a),
            ));
        }
        let s = f.input_shape(2);
        if s.len() != 2 || s[1] != m.sensor_channels {
            let key = "model.sensor_channels";
            return Err(dim_err(store, key, m.sensor_channels, SENSOR_RAW, fmt(&s)));
        }
        for (i, input) in f.inputs().iter().enumerate().skip(IMAGE_AT) {
            let sh = f.input_shape(i);
            let name = input.array_name();
            // pooled: [V, D]; tokens: [V, Ntok, D]
            let rank = if matches!(input, Input::Pooled { .. }) {
                2
            } else {
                3
            };
            if sh.len() != rank || sh[rank - 1] != m.image_dim {
                return Err(dim_err(
                    store,
                    "model.image_dim",
                    m.image_dim,
                    &name,
                    fmt(&sh),
                ));
            }
            if sh[0] != m.n_views {
                return Err(dim_err(store, "model.n_views", m.n_views, &name, fmt(&sh)));
            }
        }
        let text = f
            .text()
            .ok_or_else(|| Error::Msg("causal-film reads the text embedding".into()))?;
        if text.size()[0] != m.clip_head.text_dim {
            let key = "model.clip_head.text_dim";
            let found = format!("dim {}", text.size()[0]);
            return Err(dim_err(store, key, m.clip_head.text_dim, TEXT_FILE, found));
        }
        let mut head = CausalFilmHead::new(p, cfg, text)?;
        if m.sensor_norm == SensorNorm::Train {
            // per-channel mean and population std over every time step of every TRAIN sample
            let all = f.whole_split(Split::Train, 2)?.to_kind(Kind::Double); // [N, L, C]
            let flat = all.reshape([-1, all.size()[2]]);
            let mean = flat.mean_dim(0, false, Kind::Double);
            let std = flat.std_correction(0, 0, false);
            let dev = f.device();
            head.model.set_sensor_stats(
                &mean.to_kind(Kind::Float).to_device(dev),
                &std.to_kind(Kind::Float).to_device(dev),
            )?;
        }
        Ok(head)
    }

    fn make_batch(&self, fed: Vec<Tensor>) -> Result<HeadBatch> {
        let cfg = self.config();
        let n_pooled = cfg.n_pooled_branches();
        let want = IMAGE_AT + n_pooled + cfg.n_gem_branches();
        crate::heads::expect_inputs(Self::NAME, &fed, want)?;
        let mut it = fed.into_iter();
        let video = it.next().expect("counted");
        let audio = it.next().expect("counted"); // [B, W, Na, Da]
        let sensor = it.next().expect("counted");
        let s = audio.size();
        let audio = audio.reshape([s[0], s[1] * s[2], s[3]]);
        let pooled: Vec<Tensor> = it.by_ref().take(n_pooled).collect();
        let b = video.size()[0];
        let image_pooled = if pooled.is_empty() {
            // not read when no branch is mean/max (e.g. v5_text)
            let opts = (Kind::Float, video.device());
            Tensor::zeros([b, 0, cfg.model.n_views, 1], opts)
        } else {
            Tensor::stack(&pooled, 1)
        };
        let batch = HeadBatch {
            video,
            audio,
            sensor,
            image_pooled,
            image_tokens: it.collect(),
        };
        batch.validate(cfg)?;
        Ok(batch)
    }

    fn score(&self, b: &HeadBatch) -> Tensor {
        CausalFilmHead::score(self, b)
    }

    fn score_parts(&self, b: &HeadBatch) -> Vec<(String, Tensor)> {
        CausalFilmHead::score_parts(self, b)
    }

    fn diagnostics(&self, b: &HeadBatch) -> Named {
        CausalFilmHead::diagnostics(self, b)
    }

    fn describe(&self, vs: &nn::VarStore) -> String {
        self.param_report(vs)
    }
}

impl GradientHead for CausalFilmHead {
    fn loss(&self, b: &HeadBatch, train: bool) -> (Tensor, Named) {
        CausalFilmHead::loss(self, b, train)
    }

    /// With `model.clip_head.own_grad_clip` the trained CLIP head is clipped on its own (the
    /// original clipped the model's parameters only).
    fn own_clip_groups(&self) -> Vec<String> {
        let c = &self.config().model.clip_head;
        if c.trainable && c.own_grad_clip {
            vec![self.clip_head_prefix()]
        } else {
            vec![]
        }
    }
}

//! The feature store as a [`BatchSource`] of Causal-FiLM batches, and the head's
//! [`TrainableHead`] impl.
//!
//! Arrays read (per sample, first axis = sample in manifest order): `video/tokens` [Tv, Dv],
//! `audio/tokens` [W, Na, Da] (windows concatenated to [W*Na, Da]), `sensor/raw` [L, C],
//! `image/pooled` [L+1, V, 2 (mean, max), Di] when a mean/max branch exists, and
//! `image/tokens_L{i}` [V, Ntok, Di] per GeM branch; plus the store array `text/embed` [dim] and the group attribute `samples`
//! (`[{key, id, class_code, class_name, split, session}]`).
//!
//! Splits: a sample belongs to the split its `samples` row names; it is used only when every
//! array the head reads is complete (the others are excluded with a printed warning giving the
//! count per split). A TRAIN sample with a class other than good (0) is an error.
//!
//! Feeding: by default each batch is assembled from the memory-mapped chunks
//! ([`ArrayReader::batch_tensor`]: decoded straight into the batch tensor on the CPU). With
//! `resident`, a split is loaded once (on its first use) into device memory in the stored dtype
//! (f16 stays f16; pooled vectors only for the layers the branches read) and each batch is an
//! `index_select` on the device, converted to f32.
//!
//! Model dims must equal the store's: a mismatch is an error naming the config key and the
//! store's value (no "auto" filling: the resolved config a run records stays the model it built).
use crate::heads::causal_film::{
    result_branch_inputs, BranchInput, CausalFilmConfig, CausalFilmHead, HeadBatch, PooledStat,
};
use crate::store::{ArrayReader, StoreReader};
use crate::train::{BatchSource, Named, Split, TrainableHead};
use crate::{Error, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

pub const VIDEO_TOKENS: &str = "video/tokens";
pub const AUDIO_TOKENS: &str = "audio/tokens";
pub const IMAGE_POOLED: &str = "image/pooled";
pub const SENSOR_RAW: &str = "sensor/raw";
/// The store array with the CLIP text embedding of the prompt.
pub const TEXT_FILE: &str = crate::store::TEXT_EMBED;
/// Group attribute holding the sample table.
pub const SAMPLES_ATTR: &str = "samples";

const SPLITS: [Split; 3] = [Split::Train, Split::Val, Split::Test];

fn slot(split: Split) -> usize {
    match split {
        Split::Train => 0,
        Split::Val => 1,
        Split::Test => 2,
    }
}

/// Name of the token array of DINOv3 hidden-state index `layer`.
pub fn image_tokens_name(layer: i64) -> String {
    format!("image/tokens_L{layer}")
}

/// One row of the store's sample table.
#[derive(Debug, Clone, Deserialize)]
pub struct SampleMeta {
    pub key: String,
    pub class_code: u8,
    pub class_name: String,
    /// `TRAIN`, `VAL` or `TEST`
    pub split: String,
}

/// Reads the sample table the extractor recorded in the store's attributes (one row per sample).
pub fn sample_table(reader: &StoreReader) -> Result<Vec<SampleMeta>> {
    let path = reader.path().display();
    let v = reader.attrs().get(SAMPLES_ATTR).ok_or_else(|| {
        Error::Msg(format!(
            "{path}: no `{SAMPLES_ATTR}` table in the store attributes"
        ))
    })?;
    let t: Vec<SampleMeta> = serde_json::from_value(v.clone())
        .map_err(|e| Error::Msg(format!("{path}: bad `{SAMPLES_ATTR}` table: {e}")))?;
    if t.len() != reader.n_samples() {
        return Err(Error::Msg(format!(
            "{path}: sample table has {} rows for {} samples",
            t.len(),
            reader.n_samples()
        )));
    }
    Ok(t)
}

/// The prompt embedding of the store's `text/embed` array ([dim] f32 on the CPU) and its chunk
/// bytes (read by [`crate::store::read_text_embed`]).
pub fn text_embedding(store: &Path) -> Result<(Tensor, Vec<u8>)> {
    let v = crate::store::read_text_embed(&StoreReader::open(store)?)?;
    Ok((Tensor::from_slice(&v.values), v.bytes))
}

/// One split loaded into device memory, stored dtype.
struct Resident {
    /// [N, Tv, Dv]
    video: Tensor,
    /// [N, W*Na, Da]
    audio: Tensor,
    /// [N, L, C]
    sensor: Tensor,
    /// [N, P, V, Di] (the pooled branches' vectors only)
    pooled: Option<Tensor>,
    /// per GeM branch [N, V, Ntok, Di]
    tokens: Vec<Tensor>,
}

/// Causal-FiLM batches from a feature store.
pub struct CausalFilmSource {
    root: PathBuf,
    video: ArrayReader,
    audio: ArrayReader,
    sensor: ArrayReader,
    pooled: Option<ArrayReader>,
    tokens: Vec<ArrayReader>,
    /// (hidden-state index, 0 = mean / 1 = max) of each pooled branch, in branch order
    pooled_sel: Vec<(i64, i64)>,
    n_views: i64,
    device: Device,
    resident: bool,
    /// store row of each position, per split
    rows: [Vec<usize>; 3],
    classes: [Vec<u8>; 3],
    loaded: [Option<Resident>; 3],
    text_embed: Tensor,
    fingerprint: String,
    validated: Option<CausalFilmConfig>,
}

fn dim_err(store: &Path, key: &str, cfg: i64, array: &str, found: String) -> Error {
    Error::BadInput {
        what: format!("store {}", store.display()),
        msg: format!("config `{key}` = {cfg}, but the store's `{array}` has {found}"),
    }
}

impl CausalFilmSource {
    /// Opens the arrays `cfg` reads, checks the model dims against them, builds the split
    /// tables (printing how many incomplete samples each split excludes) and the fingerprint.
    pub fn open(
        store: &Path,
        cfg: &CausalFilmConfig,
        device: Device,
        resident: bool,
    ) -> Result<Self> {
        let reader = StoreReader::open(store)?;
        let inputs = result_branch_inputs(cfg);
        let m = &cfg.model;
        let mut pooled_sel = vec![];
        let mut token_layers = vec![];
        for b in &inputs {
            match *b {
                BranchInput::Pooled { layer, stat } => {
                    pooled_sel.push((layer, if stat == PooledStat::Mean { 0 } else { 1 }))
                }
                BranchInput::Tokens { layer } => token_layers.push(layer),
            }
        }
        let video = reader.array(VIDEO_TOKENS)?;
        let audio = reader.array(AUDIO_TOKENS)?;
        let sensor = reader.array(SENSOR_RAW)?;
        let pooled = if pooled_sel.is_empty() {
            None
        } else {
            Some(reader.array(IMAGE_POOLED)?)
        };
        let mut tokens = vec![];
        for &layer in &token_layers {
            let name = image_tokens_name(layer);
            tokens.push(reader.array(&name).map_err(|e| {
                Error::Msg(format!(
                    "{e}; a GeM branch of the config reads DINOv3 tokens of hidden state {layer}: \
                     store them with the extractor's token-layer option"
                ))
            })?);
        }

        // Model dims against the store.
        let shape = |a: &ArrayReader| a.spec().sample_shape.clone();
        let fmt = |s: &[usize]| format!("sample shape {s:?}");
        let vs = shape(&video);
        if vs.len() != 2 || vs[1] as i64 != m.video_dim {
            return Err(dim_err(
                store,
                "model.video_dim",
                m.video_dim,
                VIDEO_TOKENS,
                fmt(&vs),
            ));
        }
        let a = shape(&audio);
        if a.len() != 3 || a[2] as i64 != m.audio_dim {
            return Err(dim_err(
                store,
                "model.audio_dim",
                m.audio_dim,
                AUDIO_TOKENS,
                fmt(&a),
            ));
        }
        let s = shape(&sensor);
        if s.len() != 2 || s[1] as i64 != m.sensor_channels {
            return Err(dim_err(
                store,
                "model.sensor_channels",
                m.sensor_channels,
                SENSOR_RAW,
                fmt(&s),
            ));
        }
        if let Some(p) = &pooled {
            let ps = shape(p);
            if ps.len() != 4 || ps[2] != 2 {
                return Err(Error::BadInput {
                    what: format!("store {}", store.display()),
                    msg: format!("`{IMAGE_POOLED}` has {}, expected [L+1, V, 2, D]", fmt(&ps)),
                });
            }
            if ps[3] as i64 != m.image_dim {
                return Err(dim_err(
                    store,
                    "model.image_dim",
                    m.image_dim,
                    IMAGE_POOLED,
                    fmt(&ps),
                ));
            }
            if ps[1] as i64 != m.n_views {
                return Err(dim_err(
                    store,
                    "model.n_views",
                    m.n_views,
                    IMAGE_POOLED,
                    fmt(&ps),
                ));
            }
            for (i, &(layer, _)) in pooled_sel.iter().enumerate() {
                if layer >= ps[0] as i64 {
                    return Err(Error::BadInput {
                        what: format!("store {}", store.display()),
                        msg: format!(
                            "a pooled branch (#{i} of the mean/max branches) reads hidden state \
                             {layer}; `{IMAGE_POOLED}` holds 0..{}",
                            ps[0] - 1
                        ),
                    });
                }
            }
        }
        for t in &tokens {
            let ts = shape(t);
            let name = t.spec().name.clone();
            if ts.len() != 3 || ts[2] as i64 != m.image_dim {
                return Err(dim_err(
                    store,
                    "model.image_dim",
                    m.image_dim,
                    &name,
                    fmt(&ts),
                ));
            }
            if ts[0] as i64 != m.n_views {
                return Err(dim_err(store, "model.n_views", m.n_views, &name, fmt(&ts)));
            }
        }
        let (text_embed, text_bytes) = text_embedding(store)?;
        if text_embed.size()[0] != m.clip_head.text_dim {
            return Err(dim_err(
                store,
                "model.clip_head.text_dim",
                m.clip_head.text_dim,
                TEXT_FILE,
                format!("dim {}", text_embed.size()[0]),
            ));
        }

        // Split tables.
        let table = sample_table(&reader)?;
        let mut arrays: Vec<&ArrayReader> = vec![&video, &audio, &sensor];
        arrays.extend(pooled.iter());
        arrays.extend(tokens.iter());
        let mut rows: [Vec<usize>; 3] = Default::default();
        let mut classes: [Vec<u8>; 3] = Default::default();
        let mut excluded = [0usize; 3];
        for (i, row) in table.iter().enumerate() {
            let split: Split = row.split.parse().map_err(|_| {
                Error::Msg(format!(
                    "{}: sample {i} (`{}`) has split `{}`",
                    store.display(),
                    row.key,
                    row.split
                ))
            })?;
            let k = slot(split);
            if !arrays.iter().all(|a| a.is_done(i)) {
                excluded[k] += 1;
                continue;
            }
            if split == Split::Train && row.class_code != 0 {
                return Err(Error::BadInput {
                    what: format!("store {}", store.display()),
                    msg: format!(
                        "TRAIN sample {i} (`{}`) is class {} `{}`: TRAIN must hold good \
                         welds only",
                        row.key, row.class_code, row.class_name
                    ),
                });
            }
            rows[k].push(i);
            classes[k].push(row.class_code);
        }
        for split in SPLITS {
            let k = slot(split);
            if excluded[k] > 0 {
                eprintln!(
                    "warning: {}: {split}: {} of {} samples are incomplete in the arrays this \
                     head reads and are excluded",
                    store.display(),
                    excluded[k],
                    excluded[k] + rows[k].len()
                );
            }
            if rows[k].is_empty() {
                return Err(Error::Msg(format!(
                    "{}: no complete {split} sample for this head",
                    store.display()
                )));
            }
        }

        // Fingerprint: the sample table, the arrays read, the text embedding and which samples
        // are used (another extractor run that completes more samples changes the data).
        let names: Vec<&str> = arrays.iter().map(|a| a.spec().name.as_str()).collect();
        let base = reader.fingerprint_of(&[SAMPLES_ATTR], &names)?;
        let mut h = Sha256::new();
        h.update(base.as_bytes());
        h.update(Sha256::digest(&text_bytes));
        h.update(serde_json::to_vec(&rows).expect("rows serialise"));
        let fingerprint = hex::encode(h.finalize());

        Ok(CausalFilmSource {
            root: store.to_path_buf(),
            video,
            audio,
            sensor,
            pooled,
            tokens,
            pooled_sel,
            n_views: m.n_views,
            device,
            resident,
            rows,
            classes,
            loaded: Default::default(),
            text_embed,
            fingerprint,
            validated: Some(cfg.clone()),
        })
    }

    /// Hash of what this head reads from the store (see [`StoreReader::fingerprint_of`]).
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// The text embedding [text_dim] (f32, CPU).
    pub fn text_embed(&self) -> &Tensor {
        &self.text_embed
    }

    /// Store rows of the samples of `split`, in position order.
    pub fn rows(&self, split: Split) -> &[usize] {
        &self.rows[slot(split)]
    }

    /// Per-channel mean and population std ([C] each, f32 on the source's device) of the raw
    /// sensors over every time step of every TRAIN sample (for `sensor_norm = "train"`).
    pub fn train_sensor_stats(&self) -> Result<(Tensor, Tensor)> {
        let rows = &self.rows[0];
        let parts = rows
            .chunks(256)
            .map(|c| self.sensor.batch_tensor(c, Device::Cpu))
            .collect::<Result<Vec<_>>>()?;
        let all = Tensor::cat(&parts, 0).to_kind(Kind::Double); // [N, L, C]
        let c = all.size()[2];
        let flat = all.reshape([-1, c]);
        let mean = flat.mean_dim(0, false, Kind::Double);
        let std = flat.std_correction(0, 0, false);
        Ok((
            mean.to_kind(Kind::Float).to_device(self.device),
            std.to_kind(Kind::Float).to_device(self.device),
        ))
    }

    /// [B, L+1, V, 2, D] -> [B, P, V, D]: the pooled branches' vectors, in branch order.
    fn select_pooled(&self, all: &Tensor) -> Tensor {
        let sel: Vec<Tensor> = self
            .pooled_sel
            .iter()
            .map(|&(layer, stat)| all.select(1, layer).select(2, stat))
            .collect();
        Tensor::stack(&sel, 1)
    }

    /// Loads every sample of `split` into device memory (stored dtype), 64 samples at a time.
    fn load_resident(&self, split: Split) -> Result<Resident> {
        let rows = &self.rows[slot(split)];
        let dev = self.device;
        let whole = |a: &ArrayReader, f: &dyn Fn(Tensor) -> Tensor| -> Result<Tensor> {
            let parts = rows
                .chunks(64)
                .map(|c| Ok(f(a.batch_tensor_raw(c)?.to_device(dev))))
                .collect::<Result<Vec<_>>>()?;
            Ok(Tensor::cat(&parts, 0))
        };
        let id = |t: Tensor| t;
        let audio = whole(&self.audio, &id)?;
        let s = audio.size();
        let audio = audio.reshape([s[0], s[1] * s[2], s[3]]);
        let pooled = match &self.pooled {
            Some(p) => Some(whole(p, &|t| self.select_pooled(&t))?),
            None => None,
        };
        Ok(Resident {
            video: whole(&self.video, &id)?,
            audio,
            sensor: whole(&self.sensor, &id)?,
            pooled,
            tokens: self
                .tokens
                .iter()
                .map(|t| whole(t, &id))
                .collect::<Result<Vec<_>>>()?,
        })
    }

    fn batch_resident(&self, r: &Resident, positions: &[usize]) -> HeadBatch {
        let idx: Vec<i64> = positions.iter().map(|&p| p as i64).collect();
        let idx = Tensor::from_slice(&idx).to_device(self.device);
        let take = |t: &Tensor| t.index_select(0, &idx).to_kind(Kind::Float);
        let b = positions.len() as i64;
        HeadBatch {
            video: take(&r.video),
            audio: take(&r.audio),
            sensor: take(&r.sensor),
            image_pooled: match &r.pooled {
                Some(p) => take(p),
                None => self.empty_pooled(b),
            },
            image_tokens: r.tokens.iter().map(take).collect(),
        }
    }

    fn empty_pooled(&self, b: i64) -> Tensor {
        Tensor::zeros([b, 0, self.n_views, 1], (Kind::Float, self.device))
    }

    fn batch_mapped(&self, rows: &[usize]) -> Result<HeadBatch> {
        let dev = self.device;
        let b = rows.len() as i64;
        let audio = self.audio.batch_tensor(rows, dev)?; // [B, W, Na, Da]
        let s = audio.size();
        let image_pooled = match &self.pooled {
            Some(p) => self.select_pooled(&p.batch_tensor(rows, dev)?),
            None => self.empty_pooled(b),
        };
        Ok(HeadBatch {
            video: self.video.batch_tensor(rows, dev)?,
            audio: audio.reshape([s[0], s[1] * s[2], s[3]]),
            sensor: self.sensor.batch_tensor(rows, dev)?,
            image_pooled,
            image_tokens: self
                .tokens
                .iter()
                .map(|t| t.batch_tensor(rows, dev))
                .collect::<Result<Vec<_>>>()?,
        })
    }
}

impl BatchSource for CausalFilmSource {
    type Batch = HeadBatch;

    fn len(&self, split: Split) -> usize {
        self.rows[slot(split)].len()
    }

    fn classes(&self, split: Split) -> Vec<u8> {
        self.classes[slot(split)].clone()
    }

    /// The batch of `indices` (positions within `split`), f32 on the source's device.
    fn load(&mut self, split: Split, indices: &[usize]) -> Result<HeadBatch> {
        let k = slot(split);
        let n = self.rows[k].len();
        if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
            return Err(Error::Msg(format!(
                "{}: {split} position {bad} out of range ({n} samples)",
                self.root.display()
            )));
        }
        let batch = if self.resident {
            if self.loaded[k].is_none() {
                self.loaded[k] = Some(self.load_resident(split)?);
            }
            self.batch_resident(self.loaded[k].as_ref().expect("loaded"), indices)
        } else {
            let rows: Vec<usize> = indices.iter().map(|&i| self.rows[k][i]).collect();
            self.batch_mapped(&rows)?
        };
        if let Some(cfg) = self.validated.take() {
            batch.validate(&cfg)?;
        }
        Ok(batch)
    }
}

impl TrainableHead for CausalFilmHead {
    type Batch = HeadBatch;

    fn loss(&self, batch: &HeadBatch, train: bool) -> (Tensor, Named) {
        CausalFilmHead::loss(self, batch, train)
    }

    fn score(&self, batch: &HeadBatch) -> Tensor {
        CausalFilmHead::score(self, batch)
    }

    fn diagnostics(&self, batch: &HeadBatch) -> Named {
        CausalFilmHead::diagnostics(self, batch)
    }
}

//! The generic store feeder: opens the arrays a head asks for ([`Input`]), checks that they
//! exist (naming the `extract` command that adds a missing DINOv3 token layer), builds the
//! split tables, leaves out samples that are incomplete in those arrays (with a warning giving
//! the count per split), serves batches memory-mapped or resident, and computes the fingerprint
//! of what the head reads. Written once for every head.
//!
//! Batches: one tensor per input, in the head's input order, f32 on the feeder's device:
//! `Array(name)` -> `[B, ...sample_shape]`, `Pooled { layer, stat }` -> `[B, V, D]`
//! (`image/pooled[:, layer, :, stat]`), `Tokens { layer }` -> `[B, V, Ntok, D]`.
//! Mapped (default): each batch is decoded from the mapped chunks straight into the batch tensor
//! ([`ArrayReader::batch_tensor`]). Resident: a split is loaded once, on first use, into device
//! memory in the stored dtype (pooled inputs only for the selected layer and statistic) and a
//! batch is an `index_select` converted to f32.
use crate::schema::{self, sample_table, SampleRow, Split, IMAGE_POOLED, SAMPLES_ATTR};
use crate::store::{ArrayReader, StoreReader};
use crate::{Error, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Mean or max over all tokens of a view (axis 2 of `image/pooled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PooledStat {
    Mean,
    Max,
}

/// One per-sample input a head reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A whole array: `[B, ...sample_shape]`.
    Array(String),
    /// The DINOv3 pooled vector of hidden state `layer`: `[B, V, D]`.
    Pooled { layer: i64, stat: PooledStat },
    /// The DINOv3 tokens of hidden state `layer` (`image/tokens_L{layer}`): `[B, V, Ntok, D]`.
    Tokens { layer: i64 },
}

impl Input {
    /// The store array the input is read from.
    pub fn array_name(&self) -> String {
        match self {
            Input::Array(n) => n.clone(),
            Input::Pooled { .. } => IMAGE_POOLED.to_string(),
            Input::Tokens { layer } => schema::image_tokens_name(*layer),
        }
    }
}

/// What a head reads: per-sample inputs and whether it uses the CLIP text embedding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    pub per_sample: Vec<Input>,
    pub text: bool,
}

/// Which training samples a head may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Needs {
    /// TRAIN must hold good welds only (unsupervised anomaly detection).
    #[default]
    GoodTrain,
    /// TRAIN may hold labelled defects (supervised heads).
    LabelledTrain,
}

/// Labelled splits served for training and evaluation.
const SERVED: [Split; 3] = Split::LABELLED;

/// One split in device memory: per input `[N, ...]` in the stored dtype.
struct Resident(Vec<Tensor>);

/// Batches of the inputs a head declared, from a feature store.
pub struct StoreFeeder {
    root: PathBuf,
    inputs: Vec<Input>,
    /// the distinct arrays read
    arrays: Vec<ArrayReader>,
    /// index into `arrays` of each input
    source: Vec<usize>,
    device: Device,
    resident: bool,
    /// store row of each position, per served split
    rows: [Vec<usize>; 3],
    table: Vec<SampleRow>,
    loaded: [Option<Resident>; 3],
    text: Option<Tensor>,
    fingerprint: String,
}

fn bad(store: &Path, msg: String) -> Error {
    Error::BadInput {
        what: format!("store {}", store.display()),
        msg,
    }
}

/// The error for a missing DINOv3 token layer, with the command that adds it.
fn missing_tokens(reader: &StoreReader, layer: i64) -> Error {
    let mut have: Vec<i64> = reader
        .specs()
        .iter()
        .filter_map(|s| schema::image_tokens_layer(&s.name))
        .collect();
    have.sort();
    let mut want = have.clone();
    want.push(layer);
    want.sort();
    want.dedup();
    let list = |v: &[i64]| {
        v.iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    bad(
        reader.path(),
        format!(
            "no `{}`: the config reads DINOv3 tokens of hidden state {layer}, the store holds \
             token layers [{}]. Add it (only that array is computed) with:\n  extract run \
             --config YOUR_EXTRACT_CONFIG --out {} --only image --dino-layers {}\n(mean/max \
             branches need no tokens: they read `{IMAGE_POOLED}`, which holds every layer)",
            schema::image_tokens_name(layer),
            list(&have),
            reader.path().display(),
            list(&want)
        ),
    )
}

/// An input's view of its array's batch `[B, ...]`: the layer and statistic of a pooled input.
pub(crate) fn select_input(input: &Input, t: Tensor) -> Tensor {
    match *input {
        Input::Pooled { layer, stat } => t
            .select(1, layer)
            .select(2, if stat == PooledStat::Mean { 0 } else { 1 }),
        _ => t,
    }
}

/// The batch of store `rows` decoded from the mapped chunks: one f32 tensor per input (input
/// `i` reads `arrays[source[i]]`), each array decoded once however many inputs select from it.
pub(crate) fn mapped_batch(
    arrays: &[ArrayReader],
    source: &[usize],
    inputs: &[Input],
    rows: &[usize],
    device: Device,
) -> Result<Vec<Tensor>> {
    let mut decoded: Vec<Option<Tensor>> = (0..arrays.len()).map(|_| None).collect();
    let mut out = Vec::with_capacity(inputs.len());
    for (i, &k) in source.iter().enumerate() {
        if decoded[k].is_none() {
            decoded[k] = Some(arrays[k].batch_tensor(rows, device)?);
        }
        let t = decoded[k].as_ref().expect("decoded").shallow_clone();
        out.push(select_input(&inputs[i], t));
    }
    Ok(out)
}

impl StoreFeeder {
    /// Opens the arrays of `inputs`, checks them against the store, builds the split tables and
    /// the fingerprint.
    pub fn open(
        store: &Path,
        inputs: &Inputs,
        needs: Needs,
        device: Device,
        resident: bool,
    ) -> Result<Self> {
        Self::open_with_splits(store, inputs, needs, device, resident, None)
    }

    /// [`StoreFeeder::open`] with the splits of `split_file` (`key,split` rows, see
    /// [`crate::features::splits`]) in place of the sample table's.
    pub fn open_with_splits(
        store: &Path,
        inputs: &Inputs,
        needs: Needs,
        device: Device,
        resident: bool,
        split_file: Option<&Path>,
    ) -> Result<Self> {
        let reader = StoreReader::open(store)?;
        let mut arrays: Vec<ArrayReader> = Vec::new();
        let mut source = Vec::with_capacity(inputs.per_sample.len());
        for input in &inputs.per_sample {
            let name = input.array_name();
            let k = match arrays.iter().position(|a| a.spec().name == name) {
                Some(k) => k,
                None => {
                    arrays.push(match input {
                        Input::Tokens { layer }
                            if reader.specs().iter().all(|s| s.name != name) =>
                        {
                            return Err(missing_tokens(&reader, *layer));
                        }
                        _ => reader.array(&name)?,
                    });
                    arrays.len() - 1
                }
            };
            source.push(k);
            let a = &arrays[k];
            if let Input::Pooled { layer, .. } = input {
                let s = &a.spec().sample_shape;
                if s.len() != 4 || s[2] != 2 {
                    return Err(bad(
                        store,
                        format!("`{IMAGE_POOLED}` has sample shape {s:?}, expected [L+1, V, 2, D]"),
                    ));
                }
                if *layer < 0 || *layer >= s[0] as i64 {
                    return Err(bad(
                        store,
                        format!(
                            "a mean/max input reads hidden state {layer}; `{IMAGE_POOLED}` holds \
                             0..{}",
                            s[0] - 1
                        ),
                    ));
                }
            }
        }
        let (text, text_bytes) = if inputs.text {
            let (t, b) = schema::text_embedding(store)?;
            (Some(t), b)
        } else {
            (None, vec![])
        };

        let mut table = sample_table(&reader)?;
        if let Some(f) = split_file {
            crate::features::splits::apply(
                &mut table,
                &crate::features::splits::read_split_file(f)?,
                f,
            )?;
        }
        let mut rows: [Vec<usize>; 3] = Default::default();
        let mut excluded = [0usize; 3];
        for (i, row) in table.iter().enumerate() {
            if row.split == Split::Unlabelled {
                continue;
            }
            let k = row.split.slot();
            if !arrays.iter().all(|a| a.is_done(i)) {
                excluded[k] += 1;
                continue;
            }
            if row.split == Split::Train && needs == Needs::GoodTrain && row.class_code != Some(0) {
                return Err(bad(
                    store,
                    format!(
                        "TRAIN sample {i} (`{}`) is class {} `{}`: TRAIN must hold good welds only",
                        row.key,
                        row.class_code.map_or("?".into(), |c| c.to_string()),
                        row.class_name.as_deref().unwrap_or("?")
                    ),
                ));
            }
            rows[k].push(i);
        }
        for split in SERVED {
            let k = split.slot();
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
        let refs: Vec<&str> = arrays.iter().map(|a| a.spec().name.as_str()).collect();
        let base = reader.fingerprint_of(&[SAMPLES_ATTR], &refs)?;
        let mut h = Sha256::new();
        h.update(base.as_bytes());
        h.update(Sha256::digest(&text_bytes));
        h.update(serde_json::to_vec(&rows).expect("rows serialise"));
        let fingerprint = hex::encode(h.finalize());

        Ok(StoreFeeder {
            root: store.to_path_buf(),
            inputs: inputs.per_sample.clone(),
            arrays,
            source,
            device,
            resident,
            rows,
            table,
            loaded: Default::default(),
            text,
            fingerprint,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// Hash of what the head reads from the store (see [`StoreReader::fingerprint_of`]).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The CLIP text embedding [text_dim] (f32, CPU), when the head asked for it.
    pub fn text(&self) -> Option<&Tensor> {
        self.text.as_ref()
    }

    /// The per-sample shape of input `i` as the head receives it (without the batch axis).
    pub fn input_shape(&self, i: usize) -> Vec<i64> {
        let s: Vec<i64> = self.arrays[self.source[i]]
            .spec()
            .sample_shape
            .iter()
            .map(|&d| d as i64)
            .collect();
        match self.inputs[i] {
            Input::Pooled { .. } => vec![s[1], s[3]],
            _ => s,
        }
    }

    /// The opened arrays (one per distinct array read).
    pub fn arrays(&self) -> &[ArrayReader] {
        &self.arrays
    }

    /// The inputs, in the order of the batch tensors.
    pub fn inputs(&self) -> &[Input] {
        &self.inputs
    }

    /// Store rows of the samples of `split`, in position order.
    pub fn rows(&self, split: Split) -> &[usize] {
        match split {
            Split::Unlabelled => &[],
            s => &self.rows[s.slot()],
        }
    }

    /// The sample table row of each position of `split`.
    pub fn samples(&self, split: Split) -> Vec<&SampleRow> {
        self.rows(split).iter().map(|&r| &self.table[r]).collect()
    }

    /// Input `i` of every sample of `split`, `[N, ...]` f32 on the CPU, 256 samples at a time
    /// (e.g. TRAIN statistics for normalisation).
    pub fn whole_split(&self, split: Split, i: usize) -> Result<Tensor> {
        let parts = self
            .rows(split)
            .chunks(256)
            .map(|c| {
                let a = &self.arrays[self.source[i]];
                Ok(self.select(i, a.batch_tensor(c, Device::Cpu)?))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::cat(&parts, 0))
    }

    /// Applies the pooled selection of input `i` to its array's batch `[B, ...]`.
    fn select(&self, i: usize, t: Tensor) -> Tensor {
        select_input(&self.inputs[i], t)
    }

    /// Loads every sample of `split` into device memory (stored dtype), 64 samples at a time.
    fn load_resident(&self, split: Split) -> Result<Resident> {
        let rows = self.rows(split);
        let dev = self.device;
        let mut out = Vec::with_capacity(self.inputs.len());
        for (i, &k) in self.source.iter().enumerate() {
            let a = &self.arrays[k];
            let parts = rows
                .chunks(64)
                .map(|c| Ok(self.select(i, a.batch_tensor_raw(c)?).to_device(dev)))
                .collect::<Result<Vec<_>>>()?;
            out.push(Tensor::cat(&parts, 0));
        }
        Ok(Resident(out))
    }

    /// The batch of `positions` within `split`: one f32 tensor per input on the device.
    pub fn load(&mut self, split: Split, positions: &[usize]) -> Result<Vec<Tensor>> {
        let rows = self.rows(split);
        let n = rows.len();
        if let Some(&bad) = positions.iter().find(|&&i| i >= n) {
            return Err(Error::Msg(format!(
                "{}: {split} position {bad} out of range ({n} samples)",
                self.root.display()
            )));
        }
        if split == Split::Unlabelled {
            return Err(Error::Msg(
                "the training feeder serves no UNLABELLED split".into(),
            ));
        }
        if self.resident {
            let k = split.slot();
            if self.loaded[k].is_none() {
                self.loaded[k] = Some(self.load_resident(split)?);
            }
            let idx: Vec<i64> = positions.iter().map(|&p| p as i64).collect();
            let idx = Tensor::from_slice(&idx).to_device(self.device);
            let r = self.loaded[k].as_ref().expect("loaded");
            Ok(r.0
                .iter()
                .map(|t| t.index_select(0, &idx).to_kind(Kind::Float))
                .collect())
        } else {
            let rows: Vec<usize> = positions.iter().map(|&i| rows[i]).collect();
            mapped_batch(&self.arrays, &self.source, &self.inputs, &rows, self.device)
        }
    }

    /// Class codes of `split` (0 = good).
    pub fn classes(&self, split: Split) -> Vec<u8> {
        self.samples(split)
            .iter()
            .map(|r| r.class_code.expect("labelled splits carry a class"))
            .collect()
    }

    /// Sample keys of `split`.
    pub fn keys(&self, split: Split) -> Vec<String> {
        self.samples(split).iter().map(|r| r.key.clone()).collect()
    }
}

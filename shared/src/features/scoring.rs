//! Scoring new welds (DESIGN.md "Scoring new welds"): the arrays a trained head reads, opened
//! in another store (new recordings, split UNLABELLED or any), every sample served by store row
//! whatever its split, and the checks that make the scores mean what the run's scores meant:
//! - every array the head reads exists with the training store's sample shape;
//! - the provenance of every stage the head reads (backbone config, weight hashes,
//!   preprocessing, layers) equals the training store's, volatile fields (where the model folder
//!   is, tool version, device) left out; a difference is named by its key path;
//! - a sample whose inputs are not complete is not scored: it is reported with the reason (the
//!   fault `extract run` recorded for a broken recording, or "not extracted").
use crate::features::feeder::mapped_batch;
use crate::features::{Input, StoreFeeder};
use crate::schema::{
    first_difference, provenance_group, sample_table, strip_volatile, SampleRow, PROVENANCE_ATTR,
};
use crate::store::{ArrayReader, StoreReader};
use crate::{Error, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

/// The inputs of a trained head in a store to score.
pub struct ScoringFeeder {
    root: PathBuf,
    inputs: Vec<Input>,
    arrays: Vec<ArrayReader>,
    source: Vec<usize>,
    table: Vec<SampleRow>,
    device: Device,
}

fn provenance(reader: &StoreReader, stage: &str) -> Result<Option<Value>> {
    Ok(reader
        .group_attrs(stage)?
        .and_then(|a| a.get(PROVENANCE_ATTR).cloned())
        .map(|v| strip_volatile(&v)))
}

/// Refuses `new` when the provenance of a stage read by the head differs from `train`'s.
pub fn check_provenance(train: &StoreReader, new: &StoreReader, arrays: &[String]) -> Result<()> {
    let mut stages: Vec<&str> = arrays.iter().map(|a| provenance_group(a)).collect();
    stages.sort();
    stages.dedup();
    for stage in stages {
        let (a, b) = (provenance(train, stage)?, provenance(new, stage)?);
        let diff = match (&a, &b) {
            (None, None) => None,
            (Some(x), Some(y)) => first_difference(x, y, stage),
            (x, y) => Some(format!(
                "{stage}: provenance {} in the training store, {} in the new one",
                if x.is_some() { "recorded" } else { "absent" },
                if y.is_some() { "recorded" } else { "absent" }
            )),
        };
        if let Some(d) = diff {
            return Err(Error::Msg(format!(
                "{} was not extracted like the run's training store {} for the `{stage}` \
                 features the head reads: {d} (training store value first). Extract the new \
                 recordings with the training store's settings: extract run ... --like {}",
                new.path().display(),
                train.path().display(),
                train.path().display()
            )));
        }
    }
    Ok(())
}

impl ScoringFeeder {
    /// Opens in `store` the arrays `train` serves, checking shapes and provenance.
    pub fn open(store: &Path, train: &StoreFeeder, device: Device) -> Result<Self> {
        let reader = StoreReader::open(store)?;
        let train_reader = StoreReader::open(train.root())?;
        let names: Vec<String> = train
            .arrays()
            .iter()
            .map(|a| a.spec().name.clone())
            .collect();
        let mut arrays = Vec::with_capacity(names.len());
        for (name, t) in names.iter().zip(train.arrays()) {
            if reader.specs().iter().all(|s| &s.name != name) {
                return Err(Error::Msg(format!(
                    "{}: no `{name}`: the head reads it; extract it into the new store with the \
                     training store's settings (extract run ... --like {})",
                    store.display(),
                    train.root().display()
                )));
            }
            let a = reader.array(name)?;
            if a.spec().sample_shape != t.spec().sample_shape {
                return Err(Error::Msg(format!(
                    "{}: `{name}` has sample shape {:?}, the training store {:?}",
                    store.display(),
                    a.spec().sample_shape,
                    t.spec().sample_shape
                )));
            }
            arrays.push(a);
        }
        check_provenance(&train_reader, &reader, &names)?;
        let source = train
            .inputs()
            .iter()
            .map(|i| {
                let n = i.array_name();
                names
                    .iter()
                    .position(|m| *m == n)
                    .expect("input array opened")
            })
            .collect();
        Ok(ScoringFeeder {
            root: store.to_path_buf(),
            inputs: train.inputs().to_vec(),
            arrays,
            source,
            table: sample_table(&reader)?,
            device,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The store's sample table, in store order.
    pub fn table(&self) -> &[SampleRow] {
        &self.table
    }

    /// Why sample `i` cannot be scored (a recorded fault, or an array not extracted), if so.
    pub fn unreadable(&self, i: usize) -> Option<String> {
        for a in &self.arrays {
            if a.is_done(i) {
                continue;
            }
            let name = &a.spec().name;
            return Some(match a.fault(i) {
                Some(f) => {
                    let stage = f.get("stage").and_then(Value::as_str).unwrap_or("?");
                    let err = f
                        .get("error")
                        .or_else(|| f.get("reason"))
                        .map(|e| e.as_str().map_or(e.to_string(), str::to_string))
                        .unwrap_or_else(|| f.to_string());
                    match f.get("file").and_then(Value::as_str) {
                        Some(file) if !file.is_empty() => format!("{stage}: {file}: {err}"),
                        _ => format!("{stage}: {err}"),
                    }
                }
                None => format!("`{name}` not extracted"),
            });
        }
        None
    }

    /// The batch of store rows `rows`: one f32 tensor per input on the device, as the training
    /// feeder serves it.
    pub fn load_rows(&self, rows: &[usize]) -> Result<Vec<Tensor>> {
        mapped_batch(&self.arrays, &self.source, &self.inputs, rows, self.device)
    }
}

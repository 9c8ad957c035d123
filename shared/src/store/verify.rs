//! `verify`: checks a store end to end: the group attributes (format entry and any required keys),
//! every array's layout and sample count, the completion of every array, and for each complete
//! sample its chunk (present, exact size, every value finite, abs max equal to its marker).
//! A sample without marker is *faulted* when extraction recorded a fault marker for it (its input
//! is broken: rerunning cannot fill it), else *pending* (still to do).
//! The report serialises to JSON and prints as a table; the caller prints the verdict
//! ([`VerifyReport::verdict`]) after any checks of its own.
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use super::convert::scan;
use super::layout::{list_arrays, list_leftovers, read_group, ArrayLayout};
use super::markers::{self, marker_path};
use super::StoreDtype;
use crate::Result;

/// What is wrong with one sample (or the store).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The group lacks the store's format entry or a required attribute.
    MissingAttr,
    /// The array's first axis differs from the store's `n_samples`.
    WrongShape,
    /// A marker exists but the chunk file does not.
    MissingChunk,
    /// The chunk file has the wrong size (e.g. truncated).
    ChunkSize,
    /// The chunk holds a NaN or an infinity.
    NonFinite,
    /// The marker cannot be parsed, or its abs max / size disagrees with the chunk.
    BadMarker,
}

/// One finding of [`verify`].
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// Array name (empty for the group).
    pub array: String,
    pub index: Option<usize>,
    pub kind: ProblemKind,
    pub detail: String,
    /// The file concerned.
    pub path: PathBuf,
}

/// Per-array summary.
#[derive(Debug, Clone, Serialize)]
pub struct ArrayVerify {
    pub name: String,
    pub dtype: StoreDtype,
    pub sample_shape: Vec<usize>,
    /// Samples with a marker.
    pub complete: usize,
    /// Samples without a marker and without a recorded fault (still to do).
    pub pending: usize,
    /// All pending sample indices, ascending.
    pub pending_indices: Vec<usize>,
    /// Samples without a marker whose extraction recorded a fault (broken input).
    pub faulted: usize,
    /// Largest |x| over the complete samples.
    pub abs_max: f32,
    pub problems: usize,
}

/// A sample of an array whose extraction faulted (its fault marker).
#[derive(Debug, Clone, Serialize)]
pub struct SampleFault {
    pub array: String,
    pub index: usize,
    /// The recorded fault (`sample`, `stage`, `modality`, `file`, `error`).
    pub fault: serde_json::Value,
}

impl SampleFault {
    /// One line: `array sample i (key): file: error`.
    pub fn line(&self) -> String {
        let get = |k: &str| self.fault.get(k).and_then(|v| v.as_str()).unwrap_or("");
        let file = get("file");
        let file = if file.is_empty() {
            String::new()
        } else {
            format!("{file}: ")
        };
        format!(
            "{} sample {} ({}): {file}{}",
            self.array,
            self.index,
            get("sample"),
            get("error")
        )
    }
}

/// Result of [`verify`].
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub path: PathBuf,
    pub format_version: Option<u64>,
    pub n_samples: usize,
    /// The group attribute keys present (the store's own entry excluded).
    pub attr_keys: Vec<String>,
    pub arrays: Vec<ArrayVerify>,
    pub problems: Vec<Problem>,
    /// Faulted samples of every array: what extraction recorded (sample key, stage, file,
    /// error), ascending by array then sample.
    pub faults: Vec<SampleFault>,
    /// Temporary entries of killed writers (harmless; `FeatureStore::remove_leftovers`).
    pub leftovers: Vec<PathBuf>,
}

impl VerifyReport {
    /// No problem found (pending samples allowed): what is stored can be trusted.
    pub fn consistent(&self) -> bool {
        self.problems.is_empty()
    }

    /// Consistent, and every sample of every array is complete or faulted (nothing left that
    /// another run could extract).
    pub fn sound(&self) -> bool {
        self.consistent() && self.arrays.iter().all(|a| a.pending == 0)
    }

    /// Sound and no sample faulted.
    pub fn complete(&self) -> bool {
        self.sound() && self.faults.is_empty()
    }

    /// The verdict line, counting `extra` problems the caller found (provenance, sample table);
    /// with `require_complete`, faulted samples make it NOT SOUND too.
    pub fn verdict(&self, extra: usize, require_complete: bool) -> (bool, String) {
        let pending: usize = self.arrays.iter().map(|a| a.pending).sum();
        let mut faulted_samples: Vec<usize> = self.faults.iter().map(|f| f.index).collect();
        faulted_samples.sort_unstable();
        faulted_samples.dedup();
        let faulted = faulted_samples.len();
        let n_problems = self.problems.len() + extra;
        if n_problems > 0 {
            let mut m = format!("NOT SOUND: {n_problems} problem(s)");
            if pending > 0 {
                m.push_str(&format!(", {pending} pending sample(s)"));
            }
            return (false, m);
        }
        if pending > 0 {
            return (
                false,
                format!(
                    "NOT SOUND: consistent, {pending} pending sample(s) (rerun `extract run` to \
                     fill them)"
                ),
            );
        }
        if faulted > 0 && require_complete {
            return (
                false,
                format!(
                    "NOT SOUND: {faulted} faulted sample(s) and --require-complete (fix the inputs \
                     listed above and rerun `extract run`)"
                ),
            );
        }
        if faulted > 0 {
            return (
                true,
                format!(
                    "SOUND: every sample complete or faulted ({faulted} faulted, listed above; \
                     --require-complete makes them fatal)"
                ),
            );
        }
        (true, "SOUND: every sample complete".to_string())
    }
}

/// [`verify_with`] with no required attribute.
pub fn verify(path: &Path) -> Result<VerifyReport> {
    verify_with(path, &[])
}

/// Verifies the store at `path`; `required_attrs` are group attribute keys that must be present
/// (e.g. the provenance keys extract writes). Reads every complete chunk (in parallel). Errors
/// only when the store cannot be read at all (no group, unreadable metadata).
pub fn verify_with(path: &Path, required_attrs: &[&str]) -> Result<VerifyReport> {
    let group = read_group(path)?;
    let mut problems = Vec::new();
    let group_problem = |detail: String| Problem {
        array: String::new(),
        index: None,
        kind: ProblemKind::MissingAttr,
        detail,
        path: path.join("zarr.json"),
    };
    if group.format_version.is_none() {
        problems.push(group_problem(format!(
            "no {:?} attribute: not a weld-cache store",
            super::STORE_ATTR
        )));
    }
    for key in required_attrs {
        if !group.attrs.contains_key(*key) {
            problems.push(group_problem(format!("required attribute {key:?} missing")));
        }
    }
    let layouts = list_arrays(path)?;
    let n_samples = group
        .n_samples
        .unwrap_or_else(|| layouts.first().map_or(0, |a| a.n_rows));
    let mut arrays = Vec::new();
    let mut faults = Vec::new();
    for layout in &layouts {
        let (summary, found, f) = verify_array(path, layout, n_samples)?;
        arrays.push(summary);
        problems.extend(found);
        faults.extend(f);
    }
    Ok(VerifyReport {
        path: path.to_path_buf(),
        format_version: group.format_version,
        n_samples,
        attr_keys: group.attrs.keys().cloned().collect(),
        arrays,
        problems,
        faults,
        leftovers: list_leftovers(path)?,
    })
}

fn verify_array(
    root: &Path,
    layout: &ArrayLayout,
    n_samples: usize,
) -> Result<(ArrayVerify, Vec<Problem>, Vec<SampleFault>)> {
    let spec = &layout.spec;
    let mut problems = Vec::new();
    if layout.n_rows != n_samples {
        problems.push(Problem {
            array: spec.name.clone(),
            index: None,
            kind: ProblemKind::WrongShape,
            detail: format!("{} samples, the store has {n_samples}", layout.n_rows),
            path: layout.dir.join("zarr.json"),
        });
    }
    let n = layout.n_rows.min(n_samples);
    let mask = markers::completion_mask(root, &spec.name, n)?;
    let results: Vec<(Option<f32>, Option<Problem>)> = (0..n)
        .into_par_iter()
        .filter(|&i| mask[i])
        .map(|i| check_sample(root, layout, i))
        .collect();
    let mut abs_max = 0f32;
    for (m, p) in results {
        if let Some(m) = m {
            abs_max = abs_max.max(m);
        }
        problems.extend(p);
    }
    let faults: Vec<SampleFault> = markers::list_faults(root, &spec.name, n)?
        .into_iter()
        .filter(|(i, _)| !mask[*i])
        .map(|(index, fault)| SampleFault {
            array: spec.name.clone(),
            index,
            fault,
        })
        .collect();
    let faulted: Vec<usize> = faults.iter().map(|f| f.index).collect();
    let pending: Vec<usize> = (0..n)
        .filter(|&i| !mask[i] && faulted.binary_search(&i).is_err())
        .collect();
    let summary = ArrayVerify {
        name: spec.name.clone(),
        dtype: spec.dtype,
        sample_shape: spec.sample_shape.clone(),
        complete: n - pending.len() - faulted.len(),
        pending: pending.len(),
        pending_indices: pending,
        faulted: faulted.len(),
        abs_max,
        problems: problems.len(),
    };
    Ok((summary, problems, faults))
}

/// Checks one marked sample: returns its abs max (when readable) and the problem found, if any.
fn check_sample(root: &Path, layout: &ArrayLayout, index: usize) -> (Option<f32>, Option<Problem>) {
    let spec = &layout.spec;
    let chunk = layout.chunk_path(index);
    let problem = |kind, detail: String, path: PathBuf| Problem {
        array: spec.name.clone(),
        index: Some(index),
        kind,
        detail,
        path,
    };
    let marker = match markers::read_marker(root, &spec.name, index) {
        Ok(Some(m)) => m,
        Ok(None) => return (None, None), // removed meanwhile: a rewrite in progress
        Err(e) => {
            let p = problem(
                ProblemKind::BadMarker,
                e.to_string(),
                marker_path(root, &spec.name, index),
            );
            return (None, Some(p));
        }
    };
    let file = match std::fs::File::open(&chunk) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let p = problem(
                ProblemKind::MissingChunk,
                "chunk file missing".into(),
                chunk,
            );
            return (None, Some(p));
        }
        Err(e) => {
            return (
                None,
                Some(problem(ProblemKind::MissingChunk, e.to_string(), chunk)),
            )
        }
    };
    let expected = spec.chunk_nbytes();
    let got = file.metadata().map(|m| m.len()).unwrap_or(0);
    if got != expected as u64 {
        let detail = format!("{got} bytes, expected {expected}");
        return (None, Some(problem(ProblemKind::ChunkSize, detail, chunk)));
    }
    // SAFETY: read-only map of a complete chunk, dropped at the end of this function.
    let bytes = match unsafe { memmap2::Mmap::map(&file) } {
        Ok(m) => m,
        Err(e) => {
            return (
                None,
                Some(problem(ProblemKind::ChunkSize, e.to_string(), chunk)),
            )
        }
    };
    let s = scan(spec.dtype, &bytes);
    if let Some((element, value)) = s.non_finite {
        let detail = format!("value {value} at element {element}");
        return (
            Some(s.abs_max),
            Some(problem(ProblemKind::NonFinite, detail, chunk)),
        );
    }
    if s.abs_max != marker.abs_max || marker.nbytes != expected as u64 {
        let detail = format!(
            "marker says abs max {} / {} bytes, chunk has {} / {expected}",
            marker.abs_max, marker.nbytes, s.abs_max
        );
        return (
            Some(s.abs_max),
            Some(problem(ProblemKind::BadMarker, detail, chunk)),
        );
    }
    (Some(s.abs_max), None)
}

impl std::fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let version = self
            .format_version
            .map_or("none".to_string(), |v| v.to_string());
        writeln!(
            f,
            "store {} (format {version}, {} samples, attributes: {})",
            self.path.display(),
            self.n_samples,
            self.attr_keys.join(", ")
        )?;
        writeln!(
            f,
            "{:<32} {:<5} {:<18} {:>9} {:>8} {:>8} {:>8} {:>12}",
            "array",
            "dtype",
            "sample shape",
            "complete",
            "pending",
            "faulted",
            "problems",
            "abs max"
        )?;
        for a in &self.arrays {
            writeln!(
                f,
                "{:<32} {:<5} {:<18} {:>9} {:>8} {:>8} {:>8} {:>12.6}",
                a.name,
                a.dtype.as_str(),
                format!("{:?}", a.sample_shape),
                a.complete,
                a.pending,
                a.faulted,
                a.problems,
                a.abs_max
            )?;
        }
        for x in &self.faults {
            writeln!(f, "faulted: {}", x.line())?;
        }
        for p in &self.problems {
            let at = p.index.map_or(String::new(), |i| format!(" sample {i}"));
            writeln!(
                f,
                "problem: {}{at}: {:?}: {} ({})",
                if p.array.is_empty() {
                    "<group>"
                } else {
                    &p.array
                },
                p.kind,
                p.detail,
                p.path.display()
            )?;
        }
        if !self.leftovers.is_empty() {
            writeln!(
                f,
                "note: {} temporary entr(y/ies) of killed writers (harmless), e.g. {}",
                self.leftovers.len(),
                self.leftovers[0].display()
            )?;
        }
        Ok(())
    }
}

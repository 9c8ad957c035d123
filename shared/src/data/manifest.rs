//! The dataset manifest (`manifest.csv` of the Intel Robotic Welding layout): one row per sample,
//! columns `CATEGORY, WELD_TYPE, THICKNESS_MM, STEEL_TYPE, SAMPLES, CURRENT_A, VOLTAGE_V, GAS_BAR,
//! ROBOT_SPEED_CPM, DIRECTORY, SUBDIRS, SPLIT`.
//!
//! Samples are keyed by `SUBDIRS` (`<DIRECTORY>/<id>`; ids repeat across folders). The class comes
//! from `CATEGORY` (case, hyphens, underscores and spaces ignored, so `Burnthrough`,
//! `burn_through` and `porosity_w-excessive_penetration` are all recognised) and must agree with
//! the `CC` suffix of the id `MM-DD-YY-NNNN-CC`. Any violation is an [`Error::Manifest`] naming
//! the file and line.
//!
//! Fresh recordings to be scored carry no labels: a manifest without the `CATEGORY` and `SPLIT`
//! columns (only `SUBDIRS` is required then) lists UNLABELLED samples with no class, and so does
//! a row whose `SPLIT` is `UNLABELLED` with an empty `CATEGORY`. [`Manifest::discover`] builds the
//! same from a bare data root, finding the sample folders by their files.
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Class names by class code (index = code), canonical spelling.
pub const CLASS_NAMES: [&str; 12] = [
    "good",
    "excessive_penetration",
    "burnthrough",
    "porosity",
    "porosity_w_excessive_penetration",
    "undercut",
    "overlap",
    "lack_of_fusion",
    "excessive_convexity",
    "spatter",
    "warping",
    "crater_cracks",
];

/// The manifest's columns, in the order they are written.
pub const MANIFEST_COLUMNS: [&str; 12] = [
    "CATEGORY",
    "WELD_TYPE",
    "THICKNESS_MM",
    "STEEL_TYPE",
    "SAMPLES",
    "CURRENT_A",
    "VOLTAGE_V",
    "GAS_BAR",
    "ROBOT_SPEED_CPM",
    "DIRECTORY",
    "SUBDIRS",
    "SPLIT",
];

pub use crate::schema::Split;

/// One manifest row.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRecord {
    /// `SUBDIRS`, the unique sample key and folder path relative to the data root.
    pub key: String,
    /// Sample id `MM-DD-YY-NNNN-CC` (last component of `SUBDIRS`; not unique).
    pub id: String,
    /// `DIRECTORY`: the recording session folder.
    pub directory: String,
    /// Class code 0..=11 (index into [`CLASS_NAMES`]); None for an UNLABELLED sample.
    pub class_code: Option<u8>,
    /// Canonical class name ([`CLASS_NAMES`]`[class_code]`); None for an UNLABELLED sample.
    pub class_name: Option<String>,
    /// `CATEGORY` exactly as written in the file.
    pub category_raw: String,
    pub split: Split,
    pub weld_type: String,
    pub thickness_mm: String,
    pub steel_type: String,
    /// `SAMPLES` column (welds in the session).
    pub samples: String,
    pub current_a: String,
    pub voltage_v: String,
    pub gas_bar: String,
    pub robot_speed_cpm: String,
    /// 1-based line number in the manifest (header = 1).
    pub line: usize,
}

impl SampleRecord {
    /// The row of the store's sample table (the session is `DIRECTORY`).
    pub fn sample_row(&self) -> crate::schema::SampleRow {
        crate::schema::SampleRow {
            key: self.key.clone(),
            id: self.id.clone(),
            class_code: self.class_code,
            class_name: self.class_name.clone(),
            split: self.split,
            session: Some(self.directory.clone()),
        }
    }

    /// True for class 0 (good weld); false for defects and UNLABELLED samples.
    pub fn is_good(&self) -> bool {
        self.class_code == Some(0)
    }
}

/// The parsed manifest: samples in file order.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub path: PathBuf,
    pub samples: Vec<SampleRecord>,
}

/// Canonical comparison form of a class name: lower case, `-`, `_` and spaces removed.
fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '-' | '_' | ' '))
        .flat_map(|c| c.to_lowercase())
        .collect()
}

/// Class code of a category name (`"Burnthrough"`, `"porosity_w-excessive_penetration"`...).
pub fn class_code_of(category: &str) -> Option<u8> {
    let s = squash(category);
    CLASS_NAMES
        .iter()
        .position(|n| squash(n) == s)
        .map(|i| i as u8)
}

/// Class code from the `CC` suffix of an id `MM-DD-YY-NNNN-CC`.
pub fn class_code_of_id(id: &str) -> Option<u8> {
    let cc = id.rsplit('-').next()?;
    if cc.len() != 2 || !cc.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: u8 = cc.parse().ok()?;
    (usize::from(v) < CLASS_NAMES.len()).then_some(v)
}

/// The class of a labelled row: `CATEGORY` must name a known class that agrees with the `-CC`
/// suffix of the id.
fn labelled_class(category_raw: &str, id: &str) -> std::result::Result<u8, String> {
    let class_code =
        class_code_of(category_raw).ok_or_else(|| format!("unknown CATEGORY {category_raw:?}"))?;
    let cc = class_code_of_id(id)
        .ok_or_else(|| format!("sample id {id:?} has no class code suffix -CC (00..11)"))?;
    if cc != class_code {
        return Err(format!(
            "CATEGORY {category_raw:?} (class {class_code:02}) disagrees with the id {id:?} \
             (class {cc:02})"
        ));
    }
    Ok(class_code)
}

/// The recording session of a sample key: its parent folder (`DIRECTORY` of the dataset's
/// layout `<DIRECTORY>/<id>`), or the key itself for a top-level sample folder.
fn session_of(key: &str) -> String {
    match key.trim_end_matches('/').rsplit_once('/') {
        Some((parent, _)) => parent.to_string(),
        None => key.trim_end_matches('/').to_string(),
    }
}

impl Manifest {
    /// Read and validate a manifest file.
    pub fn read(path: &Path) -> Result<Manifest> {
        let text = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::parse(path, &text)
    }

    /// Parse manifest bytes; `path` is only used in error messages.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Manifest> {
        let err = |row: usize, message: String| Error::Manifest {
            path: path.to_path_buf(),
            row,
            message,
        };
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .from_reader(bytes);
        let headers = rdr
            .headers()
            .map_err(|e| err(1, format!("cannot read header: {e}")))?
            .clone();
        if headers
            .iter()
            .all(|h| h.trim_start_matches('\u{feff}').is_empty())
        {
            return Err(err(
                1,
                format!(
                    "the file is empty: expected a comma-separated header line `{}` and one row \
                     per sample",
                    MANIFEST_COLUMNS.join(",")
                ),
            ));
        }
        if headers.len() == 1 {
            let h = &headers[0];
            if let Some(sep) = [';', '\t', '|'].into_iter().find(|c| h.contains(*c)) {
                return Err(err(
                    1,
                    format!(
                        "the header is a single column {h:?}: columns are separated by {sep:?}, \
                         but the manifest must be comma-separated (save it as CSV with commas)"
                    ),
                ));
            }
        }
        let find = |name: &str| {
            headers
                .iter()
                .position(|h| h.trim_start_matches('\u{feff}') == name)
        };
        // A manifest of fresh recordings has neither CATEGORY nor SPLIT: only SUBDIRS is
        // required then, and every sample is UNLABELLED.
        let labelled = match (find("CATEGORY"), find("SPLIT")) {
            (Some(_), Some(_)) => true,
            (None, None) => false,
            (c, _) => {
                let (has, lacks) = if c.is_some() {
                    ("CATEGORY", "SPLIT")
                } else {
                    ("SPLIT", "CATEGORY")
                };
                return Err(err(
                    1,
                    format!(
                        "the header has {has} but no {lacks} (it has {}): a labelled manifest \
                         needs both, a manifest of unlabelled recordings neither (then only \
                         SUBDIRS is required)",
                        headers.iter().collect::<Vec<_>>().join(",")
                    ),
                ));
            }
        };
        let mut col = [None::<usize>; 12];
        for (slot, name) in col.iter_mut().zip(MANIFEST_COLUMNS) {
            *slot = find(name);
            if slot.is_none() && (labelled || name == "SUBDIRS") {
                let expected = if labelled {
                    MANIFEST_COLUMNS.join(",")
                } else {
                    "at least SUBDIRS (unlabelled recordings)".to_string()
                };
                return Err(err(
                    1,
                    format!(
                        "missing column {name} (the header has {}; expected {expected})",
                        headers.iter().collect::<Vec<_>>().join(","),
                    ),
                ));
            }
        }
        let mut samples = Vec::new();
        let mut seen = HashSet::new();
        for (i, rec) in rdr.records().enumerate() {
            let line = i + 2;
            let rec = rec.map_err(|e| err(line, format!("unreadable row: {e}")))?;
            let get = |k: usize| col[k].and_then(|c| rec.get(c)).unwrap_or("").to_string();
            let category_raw = get(0);
            let key = get(10);
            if key.is_empty() {
                return Err(err(line, "empty SUBDIRS".into()));
            }
            let id = key
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_string();
            let directory = match get(9) {
                d if d.is_empty() && !labelled => session_of(&key),
                d => d,
            };
            let split: Split = if labelled {
                get(11).parse().map_err(|e| err(line, format!("{e}")))?
            } else {
                Split::Unlabelled
            };
            let class_code = if split == Split::Unlabelled {
                if !category_raw.is_empty() {
                    return Err(err(
                        line,
                        format!(
                            "SPLIT is UNLABELLED but CATEGORY is {category_raw:?}: an unlabelled \
                             sample has no class (leave CATEGORY empty, or give the row its \
                             TRAIN/VAL/TEST split)"
                        ),
                    ));
                }
                None
            } else {
                Some(labelled_class(&category_raw, &id).map_err(|m| err(line, m))?)
            };
            if !seen.insert(key.clone()) {
                return Err(err(line, format!("duplicate SUBDIRS {key:?}")));
            }
            samples.push(SampleRecord {
                key,
                id,
                directory,
                class_code,
                class_name: class_code.map(|c| CLASS_NAMES[usize::from(c)].to_string()),
                category_raw,
                split,
                weld_type: get(1),
                thickness_mm: get(2),
                steel_type: get(3),
                samples: get(4),
                current_a: get(5),
                voltage_v: get(6),
                gas_bar: get(7),
                robot_speed_cpm: get(8),
                line,
            });
        }
        Ok(Manifest {
            path: path.to_path_buf(),
            samples,
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Samples of one split, in file order.
    pub fn split(&self, split: Split) -> impl Iterator<Item = &SampleRecord> {
        self.samples.iter().filter(move |s| s.split == split)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_normalisation() {
        assert_eq!(class_code_of("Burnthrough"), Some(2));
        assert_eq!(class_code_of("burn_through"), Some(2));
        assert_eq!(class_code_of("porosity_w-excessive_penetration"), Some(4));
        assert_eq!(class_code_of("Lack_of_Fusion"), Some(7));
        assert_eq!(class_code_of("cracks"), None);
        assert_eq!(class_code_of_id("11-18-22-0189-00"), Some(0));
        assert_eq!(class_code_of_id("11-18-22-0189-12"), None);
        assert_eq!(class_code_of_id("11-18-22-0189"), None);
    }
}

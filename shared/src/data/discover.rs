//! Sample folders of a bare data root (no manifest): `extract run --data-root DIR` on fresh
//! recordings. A folder is a sample when it holds `<folder name>.avi`, `<folder name>.flac` or
//! `<folder name>.wav`, or an `images/` folder (the dataset's layout `<DIRECTORY>/<id>/<id>.avi`,
//! `<id>.flac`, `*.csv`, `images/`); its key is its path under the root and its session the
//! folder above it. Sample folders are not searched further; hidden folders and symlinked folders
//! are skipped. The samples are UNLABELLED, sorted by key.
use std::path::Path;

use super::manifest::{Manifest, SampleRecord, Split};
use crate::error::{Error, Result};

/// Folders deeper than this below the root are not searched.
const MAX_DEPTH: usize = 8;

impl Manifest {
    /// The UNLABELLED samples found under `root` (see the module doc); an error names the root
    /// when none is found.
    pub fn discover(root: &Path) -> Result<Manifest> {
        if !root.is_dir() {
            return Err(Error::Msg(format!(
                "--data-root {}: no such folder",
                root.display()
            )));
        }
        let mut keys = Vec::new();
        walk(root, root, 0, &mut keys)?;
        if keys.is_empty() {
            return Err(Error::Msg(format!(
                "{}: no sample folder found (a sample folder holds <name>.avi, <name>.flac or \
                 <name>.wav named after the folder, or an images/ folder); give a manifest.csv \
                 with --manifest instead",
                root.display()
            )));
        }
        keys.sort();
        let samples = keys
            .into_iter()
            .map(|key: String| {
                let (directory, id) = match key.rsplit_once('/') {
                    Some((d, id)) => (d.to_string(), id.to_string()),
                    None => (key.clone(), key.clone()),
                };
                SampleRecord {
                    id,
                    directory,
                    class_code: None,
                    class_name: None,
                    category_raw: String::new(),
                    split: Split::Unlabelled,
                    weld_type: String::new(),
                    thickness_mm: String::new(),
                    steel_type: String::new(),
                    samples: String::new(),
                    current_a: String::new(),
                    voltage_v: String::new(),
                    gas_bar: String::new(),
                    robot_speed_cpm: String::new(),
                    line: 0,
                    key,
                }
            })
            .collect();
        Ok(Manifest {
            path: root.to_path_buf(),
            samples,
        })
    }
}

fn is_sample_folder(dir: &Path, name: &str) -> bool {
    ["avi", "flac", "wav"]
        .iter()
        .any(|e| dir.join(format!("{name}.{e}")).is_file())
        || dir.join("images").is_dir()
}

fn walk(root: &Path, dir: &Path, depth: usize, keys: &mut Vec<String>) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| Error::io(dir, e))?;
        let ft = ent.file_type().map_err(|e| Error::io(ent.path(), e))?;
        let name = ent.file_name().to_string_lossy().to_string();
        if !ft.is_dir() || name.starts_with('.') {
            continue;
        }
        let path = ent.path();
        if is_sample_folder(&path, &name) {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let key: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().to_string())
                .collect();
            keys.push(key.join("/"));
        } else if depth + 1 < MAX_DEPTH {
            walk(root, &path, depth + 1, keys)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sample_folders_by_their_files() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        for (dir, file) in [
            ("s1/a-01", "a-01.avi"),
            ("s1/a-02", "a-02.flac"),
            ("s2/b", "images/1.jpg"),
            ("s2/notes", "readme.txt"),
            (".hidden/c", "c.avi"),
        ] {
            let p = r.join(dir).join(file);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, b"x").unwrap();
        }
        let m = Manifest::discover(r).unwrap();
        let keys: Vec<&str> = m.samples.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["s1/a-01", "s1/a-02", "s2/b"]);
        assert_eq!(m.samples[1].id, "a-02");
        assert_eq!(m.samples[1].directory, "s1");
        assert!(m
            .samples
            .iter()
            .all(|s| s.split == Split::Unlabelled && s.class_code.is_none()));
        let empty = tempfile::tempdir().unwrap();
        let e = Manifest::discover(empty.path()).unwrap_err().to_string();
        assert!(e.contains("no sample folder found"), "{e}");
    }
}

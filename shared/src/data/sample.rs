//! Sample discovery: resolves a manifest row to its folder `<root>/<SUBDIRS>` and finds each
//! modality's file. A folder path that leaves the data root (absolute path, `..`, or a symlink
//! whose target lies outside the root) is rejected before anything is opened; symlinks that stay
//! inside the root are allowed. Each modality lookup fails on its own, so one missing file never
//! hides the others.
use std::path::{Component, Path, PathBuf};

use super::manifest::SampleRecord;
use super::{Modality, SampleError};

/// The files of one sample (see the module doc).
#[derive(Debug, Clone)]
pub struct SampleFiles {
    /// Sample key (`SUBDIRS`).
    pub key: String,
    /// Sample id (`<id>.avi`, `<id>.flac` are looked up by it).
    pub id: String,
    /// Canonical data root.
    pub root: PathBuf,
    /// The sample folder (`root/SUBDIRS`, not canonicalised).
    pub dir: PathBuf,
}

/// Image extensions accepted in `images/` (case-insensitive).
pub const IMAGE_EXTS: [&str; 3] = ["jpg", "jpeg", "png"];
/// Number of post-weld images per sample.
pub const IMAGES_PER_SAMPLE: usize = 5;

fn ext_is(p: &Path, exts: &[&str]) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .map(|e| exts.iter().any(|x| e.eq_ignore_ascii_case(x)))
        .unwrap_or(false)
}

impl SampleFiles {
    /// Resolve the folder of `rec` under `root`. Errors (modality `folder`): data root missing,
    /// `SUBDIRS` absolute or containing `..`, a symlink on the way that leaves the root, or no
    /// such folder.
    pub fn locate(root: &Path, rec: &SampleRecord) -> Result<SampleFiles, SampleError> {
        let ferr = |file: &Path, msg: String| {
            SampleError::new(rec.key.clone(), Modality::Folder, file, msg)
        };
        let root_c = root
            .canonicalize()
            .map_err(|e| ferr(root, format!("data root unusable: {e}")))?;
        let rel = Path::new(&rec.key);
        let mut dir = root.to_path_buf();
        for comp in rel.components() {
            match comp {
                Component::Normal(c) => dir.push(c),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(ferr(
                        rel,
                        "sample path contains '..' (leaves the data root)".into(),
                    ))
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(ferr(
                        rel,
                        "sample path is absolute (leaves the data root)".into(),
                    ))
                }
            }
            check_inside(&root_c, &dir).map_err(|m| ferr(&dir, m))?;
        }
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(ferr(&dir, "sample path is not a folder".into())),
            Err(e) => return Err(ferr(&dir, format!("sample folder missing: {e}"))),
        }
        Ok(SampleFiles {
            key: rec.key.clone(),
            id: rec.id.clone(),
            root: root_c,
            dir,
        })
    }

    fn err(&self, modality: Modality, file: &Path, msg: impl Into<String>) -> SampleError {
        SampleError::new(self.key.clone(), modality, file, msg)
    }

    /// A regular file inside the root (symlinks allowed only when they resolve inside the root).
    fn regular_file(&self, modality: Modality, p: &Path) -> Result<PathBuf, SampleError> {
        check_inside(&self.root, p).map_err(|m| self.err(modality, p, m))?;
        match std::fs::metadata(p) {
            Ok(m) if m.is_file() => Ok(p.to_path_buf()),
            Ok(_) => Err(self.err(modality, p, "not a regular file")),
            Err(e) => Err(self.err(modality, p, format!("missing: {e}"))),
        }
    }

    /// `<dir>/<id>.avi`.
    pub fn video(&self) -> Result<PathBuf, SampleError> {
        let p = self.dir.join(format!("{}.avi", self.id));
        self.regular_file(Modality::Video, &p)
    }

    /// `<dir>/<id>.flac`, else `<dir>/<id>.wav`.
    pub fn audio(&self) -> Result<PathBuf, SampleError> {
        let flac = self.dir.join(format!("{}.flac", self.id));
        let wav = self.dir.join(format!("{}.wav", self.id));
        if std::fs::symlink_metadata(&flac).is_ok() {
            return self.regular_file(Modality::Audio, &flac);
        }
        if std::fs::symlink_metadata(&wav).is_ok() {
            return self.regular_file(Modality::Audio, &wav);
        }
        Err(self.err(
            Modality::Audio,
            &flac,
            format!("missing: neither {}.flac nor {}.wav", self.id, self.id),
        ))
    }

    /// The one `*.csv` file of the folder (any name).
    pub fn sensors(&self) -> Result<PathBuf, SampleError> {
        let csvs = self.list(Modality::Sensor, &self.dir, &["csv"])?;
        match csvs.as_slice() {
            [one] => self.regular_file(Modality::Sensor, one),
            [] => Err(self.err(Modality::Sensor, &self.dir, "no *.csv sensor file")),
            many => Err(self.err(
                Modality::Sensor,
                &self.dir,
                format!("{} *.csv files, expected exactly one", many.len()),
            )),
        }
    }

    /// The 5 post-weld images of `<dir>/images/` (`.jpg`, `.jpeg`, `.png`), sorted by file name.
    pub fn images(&self) -> Result<Vec<PathBuf>, SampleError> {
        let idir = self.dir.join("images");
        check_inside(&self.root, &idir).map_err(|m| self.err(Modality::Images, &idir, m))?;
        if !idir.is_dir() {
            return Err(self.err(Modality::Images, &idir, "images/ folder missing"));
        }
        let imgs = self.list(Modality::Images, &idir, &IMAGE_EXTS)?;
        if imgs.len() != IMAGES_PER_SAMPLE {
            return Err(self.err(
                Modality::Images,
                &idir,
                format!(
                    "{} images (.jpg/.png), expected {IMAGES_PER_SAMPLE}",
                    imgs.len()
                ),
            ));
        }
        imgs.iter()
            .map(|p| self.regular_file(Modality::Images, p))
            .collect()
    }

    /// Entries of `dir` with one of `exts`, sorted by file name.
    fn list(&self, m: Modality, dir: &Path, exts: &[&str]) -> Result<Vec<PathBuf>, SampleError> {
        let rd = std::fs::read_dir(dir).map_err(|e| self.err(m, dir, format!("{e}")))?;
        let mut out = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| self.err(m, dir, format!("{e}")))?;
            let p = ent.path();
            if ext_is(&p, exts) {
                out.push(p);
            }
        }
        out.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
        Ok(out)
    }
}

/// Ok when `p` is not a symlink, or is one whose resolved target lies inside `root_c`
/// (canonical). A path that does not exist is Ok here (the caller reports it as missing).
fn check_inside(root_c: &Path, p: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.file_type().is_symlink() => match p.canonicalize() {
            Ok(t) if t.starts_with(root_c) => Ok(()),
            Ok(t) => Err(format!(
                "symlink to {} leaves the data root (not followed)",
                t.display()
            )),
            Err(e) => Err(format!("dangling symlink: {e}")),
        },
        _ => Ok(()),
    }
}

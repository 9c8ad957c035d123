//! `extract migrate`: converts a format-1 store to format 2 in place, without touching a chunk.
//!
//! Format 1 kept its side data inside the group (`_markers/<array>/<i>.json`, `text_embed.json`,
//! `provenance/<stage>.json`, `extract_report*.json`), which Python `zarr` lists with warnings.
//! The conversion, in an order that a rerun resumes after a crash at any point:
//! 1. every array's markers move to `<array>/_markers/` (renames) and its `zarr.json` gains
//!    `dimension_names`;
//! 2. the coordinate arrays `sample`, `class_code`, `split` are written from the `samples` table
//!    (each complete in a temporary folder, then renamed into place);
//! 3. the root `zarr.json` is rewritten with format version 2 (tmp + rename);
//! 4. provenance files become the `provenance` attribute of their stage groups, `text_embed.json`
//!    the array `text/embed`, report files `reports/<run>` group attributes; each old file is
//!    removed once converted.
//!
//! Migrating a format-2 store finishes any step a crashed migration left (and otherwise changes
//! nothing). The store must not be in use: migrate takes the exclusive run lock.
use std::fs;
use std::path::Path;

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::fsutil::{
    read_json, rename_dir_if_absent, to_json_bytes, unique_tmp_name, write_atomic,
};
use super::layout::list_arrays;
use super::{dims, Coord, CoordValues, FeatureStore, StoreError, FORMAT_VERSION, STORE_ATTR};
use crate::{Error, Result};

/// What a migration did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MigrateReport {
    /// Format version found.
    pub from_version: u64,
    pub arrays: usize,
    pub markers_moved: usize,
    pub coordinates_written: Vec<String>,
    pub provenance: Vec<String>,
    pub text_embed: bool,
    pub reports: Vec<String>,
}

fn not_store(path: &Path, reason: String) -> Error {
    StoreError::NotAStore {
        path: path.to_path_buf(),
        reason,
    }
    .into()
}

/// Converts the store at `path` to the current format (see the module docs).
pub fn migrate(path: &Path) -> Result<MigrateReport> {
    let root_meta = path.join("zarr.json");
    let mut root: Value = read_json(&root_meta)?;
    let own = root["attributes"][STORE_ATTR].clone();
    let (Some(version), Some(n)) = (
        own["format_version"].as_u64(),
        own["n_samples"].as_u64().map(|n| n as usize),
    ) else {
        return Err(not_store(
            path,
            format!("no {STORE_ATTR:?} attribute with format_version and n_samples"),
        ));
    };
    if version > FORMAT_VERSION || version == 0 {
        return Err(not_store(
            path,
            format!("format version {version}: this build migrates 1 to {FORMAT_VERSION}"),
        ));
    }
    let lock = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    lock.try_lock().map_err(|_| StoreError::Locked {
        path: path.to_path_buf(),
        what: "an `extract run` holds the store; migrate needs it alone".into(),
    })?;
    let mut report = MigrateReport {
        from_version: version,
        ..Default::default()
    };

    // 1. Markers and dimension names.
    let old_markers = path.join("_markers");
    for layout in list_arrays(path)? {
        let name = &layout.spec.name;
        report.arrays += 1;
        let old = old_markers.join(name);
        if old.is_dir() {
            let new = layout.dir.join(super::markers::MARKER_DIR);
            fs::create_dir_all(&new).map_err(|e| Error::io(&new, e))?;
            for entry in fs::read_dir(&old).map_err(|e| Error::io(&old, e))? {
                let entry = entry.map_err(|e| Error::io(&old, e))?;
                let to = new.join(entry.file_name());
                fs::rename(entry.path(), &to).map_err(|e| Error::io(&to, e))?;
                report.markers_moved += 1;
            }
            super::fsutil::fsync_dir(&new)?;
            fs::remove_dir(&old).map_err(|e| Error::io(&old, e))?;
        }
        let meta_path = layout.dir.join("zarr.json");
        let mut meta = read_json(&meta_path)?;
        if meta.get("dimension_names").is_none() {
            let names = dims::dimension_names(name, layout.spec.sample_shape.len());
            meta["dimension_names"] = json!(names);
            write_atomic(&meta_path, &to_json_bytes(&meta))?;
        }
    }
    if old_markers.is_dir() {
        // Only emptied per-array folders (or markers of arrays that no longer exist) remain.
        fs::remove_dir_all(&old_markers).map_err(|e| Error::io(&old_markers, e))?;
    }

    // 2. Coordinates from the sample table.
    let mut coord_names = Vec::new();
    if let Some(rows) = root["attributes"]["samples"].as_array().cloned() {
        let field = |k: &str| -> Vec<String> {
            rows.iter()
                .map(|r| r[k].as_str().unwrap_or("").to_string())
                .collect()
        };
        let coords = dims::sample_coords(
            field("key"),
            rows.iter()
                .map(|r| r["class_code"].as_u64().map(|c| c as u8))
                .collect(),
            field("split"),
        );
        for c in coords.iter().filter(|c| c.values.len() == n && n > 0) {
            if c.name != dims::SAMPLE_DIM {
                coord_names.push(c.name.clone());
            }
            if path.join(&c.name).join("zarr.json").is_file() {
                continue;
            }
            write_coord_in_place(path, c)?;
            report.coordinates_written.push(c.name.clone());
        }
    }

    // 3. The root metadata: format 2 (the commit point of the layout change).
    if version < FORMAT_VERSION {
        root["attributes"][STORE_ATTR]["format_version"] = json!(FORMAT_VERSION);
        if !coord_names.is_empty() {
            root["attributes"]["coordinates"] = json!(coord_names.join(" "));
        }
        write_atomic(&root_meta, &to_json_bytes(&root))?;
    }
    drop(lock);

    // 4. Side files into zarr attributes and arrays.
    let store = FeatureStore::open(path)?;
    let _lock = store.lock_run(None)?;
    let prov_dir = path.join("provenance");
    if prov_dir.is_dir() {
        let mut files: Vec<_> = fs::read_dir(&prov_dir)
            .map_err(|e| Error::io(&prov_dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for f in files {
            let stage = f
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let v = read_json(&f)?;
            let mut attrs = store.group_attrs(&stage)?.unwrap_or_default();
            attrs.insert("provenance".into(), v);
            store.write_group_attrs(&stage, attrs)?;
            fs::remove_file(&f).map_err(|e| Error::io(&f, e))?;
            report.provenance.push(stage);
        }
        fs::remove_dir(&prov_dir).map_err(|e| Error::io(&prov_dir, e))?;
    }
    let text = path.join("text_embed.json");
    if text.is_file() {
        let v = read_json(&text)?;
        let emb: Vec<f32> = serde_json::from_value(v["embedding"].clone())
            .map_err(|e| Error::Msg(format!("{}: no `embedding` array: {e}", text.display())))?;
        let prompt = v["prompt"].as_str().unwrap_or("");
        super::write_text_embed(&store, prompt, &emb)?;
        fs::remove_file(&text).map_err(|e| Error::io(&text, e))?;
        report.text_embed = true;
    }
    let mut reports: Vec<_> = fs::read_dir(path)
        .map_err(|e| Error::io(path, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("extract_report") && n.ends_with(".json"))
        })
        .collect();
    reports.sort();
    for f in reports {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let group = match name
            .strip_prefix("extract_report.")
            .and_then(|r| r.strip_suffix(".json"))
        {
            Some(shard) => format!("reports/{shard}"),
            None => "reports/extract".to_string(),
        };
        let mut attrs = Map::new();
        attrs.insert("report".into(), read_json(&f)?);
        store.write_group_attrs(&group, attrs)?;
        fs::remove_file(&f).map_err(|e| Error::io(&f, e))?;
        report.reports.push(group);
    }
    Ok(report)
}

/// Writes a coordinate array complete in a temporary folder of the store, then renames it in.
fn write_coord_in_place(path: &Path, c: &Coord) -> Result<()> {
    let tmp = path.join(unique_tmp_name("coord"));
    fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let staged = Coord {
        name: "a".into(),
        values: match &c.values {
            CoordValues::Str(v) => CoordValues::Str(v.clone()),
            CoordValues::I16(v) => CoordValues::I16(v.clone()),
        },
    };
    let done = (|| {
        super::side::write_coord(&tmp, &staged, dims::SAMPLE_DIM)?;
        super::side::fsync_tree(&tmp.join("a"))?;
        rename_dir_if_absent(&tmp.join("a"), &path.join(&c.name))
    })();
    let _ = fs::remove_dir_all(&tmp);
    done.map(|_| ())
}

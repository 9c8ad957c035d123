//! The store's side of zarr that is not per-sample chunks: group attributes (provenance, run
//! reports), store-level vectors (`text/embed`), the coordinate arrays written at creation, and
//! the run lock. Everything here keeps the group a clean zarr hierarchy: attributes and arrays
//! only, written by tmp + rename.
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Map, Value};
use zarrs::array::codec::BytesCodec;
use zarrs::array::ArrayBuilder;

use super::fsutil::{
    fsync_all, fsync_dir, rename_dir_if_absent, to_json_bytes, unique_tmp_name, write_atomic,
};
use super::layout::node_type;
use super::writer::{fs_store, metadata_options, zarrs_err};
use super::{validate_name, Coord, CoordValues, FeatureStore, StoreError};
use crate::{Error, Result};

/// The JSON of a group `zarr.json` holding `attrs`.
pub(crate) fn group_json(attrs: Map<String, Value>) -> Value {
    json!({"zarr_format": 3, "node_type": "group", "attributes": Value::Object(attrs)})
}

/// fsync every file and folder under `dir` (a freshly prepared temporary folder), `dir` last.
pub(crate) fn fsync_tree(dir: &Path) -> Result<()> {
    let mut paths = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))? {
            let p = entry.map_err(|e| Error::io(&d, e))?.path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            paths.push(p);
        }
    }
    fsync_all(&paths)?;
    fsync_dir(dir)
}

/// Writes the complete 1-D array `name` (one chunk holding all values, dimension `dim`) into the
/// folder `root` (a store or its temporary folder) through zarrs.
pub(crate) fn write_coord(root: &Path, coord: &Coord, dim: &str) -> Result<()> {
    let n = coord.values.len() as u64;
    let store = fs_store(root)?;
    let path = format!("/{}", coord.name);
    let builder = match &coord.values {
        CoordValues::Str(_) => {
            let mut b = ArrayBuilder::new(vec![n], vec![n], zarrs::array::data_type::string(), "");
            b.array_to_bytes_codec(Arc::new(zarrs::array::codec::VlenUtf8Codec::new()));
            b
        }
        CoordValues::I16(_) => {
            let mut b =
                ArrayBuilder::new(vec![n], vec![n], zarrs::array::data_type::int16(), -1i16);
            b.array_to_bytes_codec(Arc::new(BytesCodec::little()));
            b
        }
    };
    let mut builder = builder;
    let array = builder
        .bytes_to_bytes_codecs(vec![])
        .dimension_names(Some([dim]))
        .build(store, &path)
        .map_err(|e| zarrs_err(root, e))?;
    array
        .store_metadata_opt(&metadata_options())
        .map_err(|e| zarrs_err(root, e))?;
    match &coord.values {
        CoordValues::Str(v) => array.store_chunk(&[0], v.as_slice()),
        CoordValues::I16(v) => array.store_chunk(&[0], v.as_slice()),
    }
    .map_err(|e| zarrs_err(&root.join(&coord.name), e))?;
    Ok(())
}

/// The run lock of [`FeatureStore::lock_run`]; dropping it releases the lock.
pub struct RunLock {
    _files: Vec<std::fs::File>,
}

/// The attributes of the group `group` under `root`; `None` when it is not a zarr group.
pub(crate) fn read_group_attrs(root: &Path, group: &str) -> Result<Option<Map<String, Value>>> {
    let dir = root.join(group);
    if node_type(&dir)?.as_deref() != Some("group") {
        return Ok(None);
    }
    let v = super::fsutil::read_json(&dir.join("zarr.json"))?;
    Ok(Some(
        v.get("attributes")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
    ))
}

impl FeatureStore {
    /// The attributes of the zarr group `group` of the store (e.g. `image`, `reports/extract`);
    /// `None` when there is no such group.
    pub fn group_attrs(&self, group: &str) -> Result<Option<Map<String, Value>>> {
        validate_name(group)?;
        read_group_attrs(&self.root, group)
    }

    /// Replaces the attributes of the zarr group `group` (created, with its parents, when absent)
    /// atomically: the new `zarr.json` is written to a temporary file, fsync'ed and renamed over
    /// the old one, so a reader sees the old or the new attributes, never a mix. Where
    /// extract keeps per-stage provenance (`<stage>` groups) and run reports (`reports/<run>`):
    /// zarr attributes, so the group stays a clean zarr hierarchy.
    pub fn write_group_attrs(&self, group: &str, attrs: Map<String, Value>) -> Result<()> {
        validate_name(group)?;
        let dir = self.root.join(group);
        match node_type(&dir)?.as_deref() {
            Some("group") => {}
            Some(other) => {
                return Err(StoreError::BadName {
                    name: group.into(),
                    reason: format!("a zarr {other} has this name"),
                }
                .into())
            }
            None => self.ensure_parent_groups(&format!("{group}/x"))?,
        }
        write_atomic(&dir.join("zarr.json"), &to_json_bytes(&group_json(attrs)))
    }

    /// Writes the store-level f32 vector `name` (not per sample: shape `[values.len()]`, one
    /// chunk, little-endian bytes, no compression, `dimension_names` [`dim`], attributes
    /// `attrs`) complete into a temporary folder and renames it into place: the array exists
    /// only once whole. Returns false (writing nothing) when the array already exists. Values
    /// must be finite. Read with [`StoreReader::vector`](super::StoreReader::vector).
    pub fn write_vector(
        &self,
        name: &str,
        dim: &str,
        values: &[f32],
        attrs: Map<String, Value>,
    ) -> Result<bool> {
        validate_name(name)?;
        if let Some(i) = values.iter().position(|x| !x.is_finite()) {
            return Err(StoreError::NonFinite {
                path: self.root.clone(),
                array: name.into(),
                index: 0,
                element: i,
                value: values[i],
            }
            .into());
        }
        if values.is_empty() {
            return Err(StoreError::BadSpec {
                array: name.into(),
                reason: "empty vector".into(),
            }
            .into());
        }
        let dir = self.root.join(name);
        if node_type(&dir)?.is_some() {
            return Ok(false);
        }
        self.ensure_parent_groups(name)?;
        let tmp = self.root.join(unique_tmp_name("vector"));
        let prepared = (|| {
            std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
            let n = values.len() as u64;
            let array =
                ArrayBuilder::new(vec![n], vec![n], zarrs::array::data_type::float32(), 0.0f32)
                    .array_to_bytes_codec(Arc::new(BytesCodec::little()))
                    .bytes_to_bytes_codecs(vec![])
                    .dimension_names(Some([dim]))
                    .attributes(attrs)
                    .build(fs_store(&tmp)?, "/")
                    .map_err(|e| zarrs_err(&dir, e))?;
            array
                .store_metadata_opt(&metadata_options())
                .map_err(|e| zarrs_err(&dir, e))?;
            array
                .store_chunk(&[0], values)
                .map_err(|e| zarrs_err(&dir, e))?;
            fsync_tree(&tmp)
        })();
        if let Err(e) = prepared {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        rename_dir_if_absent(&tmp, &dir)
    }

    /// Takes the store's run lock for the life of the returned guard: `shard = None` (a whole,
    /// unsharded run) locks the store exclusively; `Some(part)` (one shard, e.g. `shard-0-of-2`)
    /// takes a shared lock of the store plus an exclusive lock of that part. So two unsharded
    /// runs, an unsharded run beside shards, or two processes of one shard are refused with
    /// [`StoreError::Locked`], while disjoint shards run together. Advisory `flock`s on the
    /// store's folders: released by the kernel when the process ends, even by `kill -9`.
    pub fn lock_run(&self, shard: Option<&str>) -> Result<RunLock> {
        let open = |p: &Path| std::fs::File::open(p).map_err(|e| Error::io(p, e));
        let locked = |what: String| -> Error {
            StoreError::Locked {
                path: self.root.clone(),
                what,
            }
            .into()
        };
        let root = open(&self.root)?;
        let mut files = Vec::new();
        match shard {
            None => {
                root.try_lock()
                    .map_err(|_| locked("another run or shard holds the store".into()))?;
                files.push(root);
            }
            Some(part) => {
                root.try_lock_shared()
                    .map_err(|_| locked("an unsharded run holds the store".into()))?;
                files.push(root);
                let group = format!("reports/{part}");
                if self.group_attrs(&group)?.is_none() {
                    self.write_group_attrs(&group, Map::new())?;
                }
                let f = open(&self.root.join(&group))?;
                f.try_lock()
                    .map_err(|_| locked(format!("another process runs shard {part}")))?;
                files.push(f);
            }
        }
        Ok(RunLock { _files: files })
    }
}

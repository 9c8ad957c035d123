//! [`FeatureStore`]: the read-write handle used by extraction. Creates the group and the arrays
//! (with `zarrs`, through a temporary folder renamed into place so concurrent processes agree),
//! writes one sample per chunk (converted, refused when non-finite or out of range, fsync'ed;
//! chunk files are plain little-endian bytes, written directly so that a batch of chunks shares
//! one concurrent sync round) and marks samples done with per-sample marker files.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde_json::{json, Map, Value};
use zarrs::array::codec::BytesCodec;
use zarrs::array::{Array, ArrayBuilder, ArrayMetadataOptions};
use zarrs::filesystem::FilesystemStore;
use zarrs::group::GroupBuilder;

use super::convert::{encode, scan, EncodeFault, Encoded};
use super::fsutil::{fsync_all, fsync_dir, fsync_file, rename_dir_if_absent, unique_tmp_name};
use super::layout::{list_arrays, list_leftovers, node_type, read_array, read_group, ArrayLayout};
use super::markers::{self, Marker};
use super::side::{fsync_tree, write_coord};
use super::{
    dims, validate_name, ArraySpec, Coord, StoreDtype, StoreError, FORMAT_VERSION, STORE_ATTR,
};
use crate::{Error, Result};

/// An open array (its metadata checked by `zarrs` when opened).
struct WriteArray {
    layout: ArrayLayout,
}

/// One sample of one array to write: `data` is f32 in the array's row-major sample layout
/// (`len == product(sample_shape)`).
#[derive(Debug, Clone, Copy)]
pub struct SampleWrite<'a> {
    pub array: &'a str,
    pub index: usize,
    pub data: &'a [f32],
}

/// The bytes of a chunk file: the zarr v3 `bytes` codec, little-endian, no compression.
fn le_bytes(e: Encoded) -> Vec<u8> {
    #[cfg(target_endian = "little")]
    let bytes = match e {
        Encoded::F16(v) => bytemuck::cast_slice(&v).to_vec(),
        Encoded::Bf16(v) => bytemuck::cast_slice(&v).to_vec(),
        Encoded::F32(v) => bytemuck::cast_slice(&v).to_vec(),
    };
    #[cfg(target_endian = "big")]
    let bytes = match e {
        Encoded::F16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Encoded::Bf16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Encoded::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    };
    bytes
}

/// Read-write handle on a store. `Send + Sync`: writer threads share one handle; several
/// processes may hold handles on the same store as long as they write disjoint samples.
pub struct FeatureStore {
    pub(crate) root: PathBuf,
    n_samples: usize,
    attrs: Map<String, Value>,
    zarr: Arc<FilesystemStore>,
    arrays: RwLock<HashMap<String, Arc<WriteArray>>>,
    /// Markers of samples written by this handle and not yet marked done.
    pending: Mutex<HashMap<(String, usize), Marker>>,
}

pub(crate) fn zarrs_err(path: &Path, e: impl std::fmt::Display) -> Error {
    StoreError::Zarrs {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
    .into()
}

pub(crate) fn fs_store(path: &Path) -> Result<Arc<FilesystemStore>> {
    FilesystemStore::new(path)
        .map(Arc::new)
        .map_err(|e| zarrs_err(path, e))
}

pub(crate) fn metadata_options() -> ArrayMetadataOptions {
    // Keep zarr.json free of the zarrs version: stores written by two builds stay identical.
    ArrayMetadataOptions::default().with_include_zarrs_metadata(false)
}

/// Writes a group `zarr.json` with `attrs` into the (new) folder `dir` through zarrs.
fn write_group_meta(dir: &Path, attrs: Map<String, Value>) -> Result<()> {
    let store = fs_store(dir)?;
    let group = GroupBuilder::new()
        .attributes(attrs)
        .build(store, "/")
        .map_err(|e| zarrs_err(dir, e))?;
    group.store_metadata().map_err(|e| zarrs_err(dir, e))?;
    fsync_file(&dir.join("zarr.json"))?;
    fsync_dir(dir)
}

impl FeatureStore {
    /// Creates a new store at `path` holding `n_samples` samples per array, with the group
    /// attributes `attrs` (written once; the store adds its `weld_cache_store` entry with the
    /// format version). Error if `path` exists.
    pub fn create(path: &Path, n_samples: usize, attrs: Map<String, Value>) -> Result<Self> {
        Self::create_with(path, n_samples, attrs, &[])
    }

    /// [`create`](Self::create) with 1-D coordinate arrays of the sample axis (e.g. the sample
    /// key as `sample`, `class_code`, `split`; each `n_samples` long), written complete with the
    /// group before the store appears. The group attribute `coordinates` names those other than
    /// `sample`, so that xarray opens them as coordinates.
    pub fn create_with(
        path: &Path,
        n_samples: usize,
        attrs: Map<String, Value>,
        coords: &[Coord],
    ) -> Result<Self> {
        for c in coords {
            validate_name(&c.name)?;
            if c.values.len() != n_samples {
                return Err(StoreError::BadSpec {
                    array: c.name.clone(),
                    reason: format!(
                        "coordinate of {} values for {n_samples} samples",
                        c.values.len()
                    ),
                }
                .into());
            }
        }
        if attrs.contains_key(STORE_ATTR) {
            return Err(StoreError::ReservedAttr {
                key: STORE_ATTR.to_string(),
            }
            .into());
        }
        if path.exists() {
            return Err(StoreError::AlreadyExists {
                path: path.to_path_buf(),
            }
            .into());
        }
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        let stem = path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "store".into());
        let tmp = parent.join(unique_tmp_name(&stem));
        let prepared = (|| {
            std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
            let mut full = Map::new();
            full.insert(
                STORE_ATTR.into(),
                json!({"format_version": FORMAT_VERSION, "n_samples": n_samples}),
            );
            let others: Vec<&str> = coords
                .iter()
                .map(|c| c.name.as_str())
                .filter(|n| *n != dims::SAMPLE_DIM)
                .collect();
            if !others.is_empty() && n_samples > 0 {
                full.insert("coordinates".into(), json!(others.join(" ")));
            }
            full.extend(attrs);
            write_group_meta(&tmp, full)?;
            if n_samples > 0 {
                for c in coords {
                    write_coord(&tmp, c, dims::SAMPLE_DIM)?;
                }
            }
            fsync_tree(&tmp)
        })();
        if let Err(e) = prepared {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        if !rename_dir_if_absent(&tmp, path)? {
            return Err(StoreError::AlreadyExists {
                path: path.to_path_buf(),
            }
            .into());
        }
        Self::open(path)
    }

    /// Opens an existing weld-cache store for writing.
    pub fn open(path: &Path) -> Result<Self> {
        let group = read_group(path)?;
        let n_samples = group.n_samples.ok_or_else(|| StoreError::NotAStore {
            path: path.to_path_buf(),
            reason: format!(
                "no {STORE_ATTR:?} attribute (a foreign zarr group can only be read, with \
                 StoreReader)"
            ),
        })?;
        Ok(FeatureStore {
            root: path.to_path_buf(),
            n_samples,
            attrs: group.attrs,
            zarr: fs_store(path)?,
            arrays: RwLock::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
        })
    }

    /// Opens the store at `path`, creating it if absent. An existing store must have the same
    /// `n_samples` and agree on every key of `attrs` (error naming the first differing key), so
    /// a resumed or sharded run cannot mix different settings into one store.
    pub fn open_or_create(
        path: &Path,
        n_samples: usize,
        attrs: Map<String, Value>,
    ) -> Result<Self> {
        Self::open_or_create_with(path, n_samples, attrs, &[])
    }

    /// [`open_or_create`](Self::open_or_create) with the coordinate arrays of
    /// [`create_with`](Self::create_with) (written only when the store is created).
    pub fn open_or_create_with(
        path: &Path,
        n_samples: usize,
        attrs: Map<String, Value>,
        coords: &[Coord],
    ) -> Result<Self> {
        if !path.join("zarr.json").exists() {
            match Self::create_with(path, n_samples, attrs.clone(), coords) {
                Ok(s) => return Ok(s),
                // Another process created it first: open and compare below.
                Err(Error::Store(StoreError::AlreadyExists { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        let store = Self::open(path)?;
        if store.n_samples != n_samples {
            return Err(StoreError::AttrMismatch {
                path: path.to_path_buf(),
                key: "n_samples".into(),
                existing: store.n_samples.to_string(),
                given: n_samples.to_string(),
            }
            .into());
        }
        for (key, given) in &attrs {
            let existing = store.attrs.get(key);
            if existing != Some(given) {
                return Err(StoreError::AttrMismatch {
                    path: path.to_path_buf(),
                    key: key.clone(),
                    existing: existing.map_or("nothing".into(), |v| v.to_string()),
                    given: given.to_string(),
                }
                .into());
            }
        }
        Ok(store)
    }

    /// Folder of the store.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Samples per array (length of every array's first axis).
    pub fn n_samples(&self) -> usize {
        self.n_samples
    }

    /// The user's group attributes (without the store's own entry).
    pub fn attrs(&self) -> &Map<String, Value> {
        &self.attrs
    }

    /// Creates the array of `spec` (shape `[n_samples, ...sample_shape]`, chunk
    /// `[1, ...sample_shape]`, little-endian bytes codec, no compression, fill value 0), or
    /// checks that the existing one has exactly this spec. Safe when several processes call it
    /// at once: metadata is prepared in a temporary folder and renamed into place.
    pub fn ensure_array(&self, spec: &ArraySpec) -> Result<()> {
        spec.validate()?;
        if let Some(have) = self.arrays.read().unwrap().get(&spec.name) {
            return self.same_spec(&have.layout, spec);
        }
        let dir = self.root.join(&spec.name);
        if node_type(&dir)?.is_none() {
            self.ensure_parent_groups(&spec.name)?;
            self.create_array_dir(spec, &dir)?;
        }
        let layout = read_array(&self.root, &spec.name)?;
        self.same_spec(&layout, spec)?;
        self.cache_array(layout)?;
        Ok(())
    }

    fn same_spec(&self, have: &ArrayLayout, want: &ArraySpec) -> Result<()> {
        if have.spec == *want && have.n_rows == self.n_samples {
            return Ok(());
        }
        Err(StoreError::SpecMismatch {
            path: self.root.clone(),
            array: want.name.clone(),
            existing: format!("{} with {} samples", have.spec, have.n_rows),
            requested: format!("{want} with {} samples", self.n_samples),
        }
        .into())
    }

    pub(crate) fn ensure_parent_groups(&self, name: &str) -> Result<()> {
        let parts: Vec<&str> = name.split('/').collect();
        for k in 1..parts.len() {
            let rel = parts[..k].join("/");
            let dir = self.root.join(&rel);
            match node_type(&dir)?.as_deref() {
                Some("group") => continue,
                Some(other) => {
                    return Err(StoreError::BadName {
                        name: name.into(),
                        reason: format!("{rel:?} is a zarr {other}, not a group"),
                    }
                    .into())
                }
                // A concurrent creator may be putting the group into place: give it a moment
                // (observed in a 6-thread creation race) before refusing.
                None if dir.exists() && wait_for_group(&dir)? => continue,
                None if dir.exists() => {
                    return Err(StoreError::BadName {
                        name: name.into(),
                        reason: format!("{} exists and is not a zarr group", dir.display()),
                    }
                    .into())
                }
                None => {}
            }
            let tmp = self.root.join(unique_tmp_name("group"));
            std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
            if let Err(e) = write_group_meta(&tmp, Map::new()) {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e);
            }
            if !rename_dir_if_absent(&tmp, &dir)? && node_type(&dir)?.as_deref() != Some("group") {
                return Err(StoreError::BadName {
                    name: name.into(),
                    reason: format!("{} appeared and is not a zarr group", dir.display()),
                }
                .into());
            }
        }
        Ok(())
    }

    fn create_array_dir(&self, spec: &ArraySpec, dir: &Path) -> Result<()> {
        let tmp = self.root.join(unique_tmp_name("array"));
        let prepared = (|| {
            std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
            let mut shape = vec![self.n_samples as u64];
            shape.extend(spec.sample_shape.iter().map(|&d| d as u64));
            let mut chunk = shape.clone();
            chunk[0] = 1;
            let data_type = match spec.dtype {
                StoreDtype::F16 => zarrs::array::data_type::float16(),
                StoreDtype::Bf16 => zarrs::array::data_type::bfloat16(),
                StoreDtype::F32 => zarrs::array::data_type::float32(),
            };
            let names = dims::dimension_names(&spec.name, spec.sample_shape.len());
            let array = ArrayBuilder::new(shape, chunk, data_type, 0.0f32)
                .array_to_bytes_codec(Arc::new(BytesCodec::little()))
                .bytes_to_bytes_codecs(vec![])
                .dimension_names(Some(names))
                .build(fs_store(&tmp)?, "/")
                .map_err(|e| zarrs_err(dir, e))?;
            array
                .store_metadata_opt(&metadata_options())
                .map_err(|e| zarrs_err(dir, e))?;
            fsync_file(&tmp.join("zarr.json"))?;
            fsync_dir(&tmp)
        })();
        if let Err(e) = prepared {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        // Lost race: the winner's metadata is compared by the caller.
        rename_dir_if_absent(&tmp, dir)?;
        Ok(())
    }

    fn cache_array(&self, layout: ArrayLayout) -> Result<Arc<WriteArray>> {
        Array::open(self.zarr.clone(), &format!("/{}", layout.spec.name))
            .map_err(|e| zarrs_err(&layout.dir, e))?;
        let handle = Arc::new(WriteArray { layout });
        let mut map = self.arrays.write().unwrap();
        Ok(map
            .entry(handle.layout.spec.name.clone())
            .or_insert(handle)
            .clone())
    }

    /// The open array `name` (from the cache, else from disk).
    fn handle(&self, name: &str) -> Result<Arc<WriteArray>> {
        if let Some(h) = self.arrays.read().unwrap().get(name) {
            return Ok(h.clone());
        }
        let missing = || -> Error {
            StoreError::NoSuchArray {
                path: self.root.clone(),
                array: name.to_string(),
            }
            .into()
        };
        validate_name(name).map_err(|_| missing())?;
        if node_type(&self.root.join(name))?.as_deref() != Some("array") {
            return Err(missing());
        }
        let layout = read_array(&self.root, name)?;
        if layout.n_rows != self.n_samples {
            return Err(StoreError::SpecMismatch {
                path: self.root.clone(),
                array: name.into(),
                existing: format!("{} samples", layout.n_rows),
                requested: format!("{} samples", self.n_samples),
            }
            .into());
        }
        self.cache_array(layout)
    }

    fn check_index(&self, array: &str, index: usize) -> Result<()> {
        if index >= self.n_samples {
            return Err(StoreError::IndexOutOfRange {
                path: self.root.clone(),
                array: array.into(),
                index,
                n_samples: self.n_samples,
            }
            .into());
        }
        Ok(())
    }

    /// Every array of the store, sorted by name.
    pub fn arrays(&self) -> Result<Vec<ArraySpec>> {
        Ok(list_arrays(&self.root)?
            .into_iter()
            .map(|l| l.spec)
            .collect())
    }

    /// Writes sample `index` of `array` from f32 `data` (`len == product(sample_shape)`,
    /// row-major `[...sample_shape]`), converted to the array's dtype and fsync'ed. Refuses
    /// non-finite values and magnitudes the dtype cannot hold (|x| > 65504 for f16) with a typed
    /// error; nothing is written then. Removes an existing marker first (the sample is not done
    /// until [`mark_done`](Self::mark_done)); records the sample's abs max for its marker.
    pub fn write_sample(&self, array: &str, index: usize, data: &[f32]) -> Result<()> {
        self.write_samples(&[SampleWrite { array, index, data }])
    }

    /// [`write_sample`](Self::write_sample) for several samples (e.g. every array of a batch
    /// group) with one sync round: every item is checked and encoded first (any refusal writes
    /// nothing), then all chunk files are written, then they and their folders are fsync'ed
    /// concurrently. On return every chunk is durable, and no item is marked done.
    pub fn write_samples(&self, items: &[SampleWrite<'_>]) -> Result<()> {
        let mut encoded = Vec::with_capacity(items.len());
        for it in items {
            let h = self.handle(it.array)?;
            let (bytes, abs_max) = self.encode_sample(&h, it)?;
            encoded.push((bytes, abs_max, h));
        }
        for it in items {
            self.pending
                .lock()
                .unwrap()
                .remove(&(it.array.to_string(), it.index));
            markers::remove_marker(&self.root, it.array, it.index)?;
        }
        let mut to_sync: Vec<PathBuf> = Vec::with_capacity(2 * items.len());
        for (it, (bytes, _, h)) in items.iter().zip(&encoded) {
            let chunk_path = h.layout.chunk_path(it.index);
            let parent = chunk_path.parent().expect("a chunk lies inside its array");
            // Folders this write creates must be durable too: each one and its parent.
            let mut created = Vec::new();
            let mut d = parent;
            while !d.exists() {
                created.push(d.to_path_buf());
                match d.parent() {
                    Some(p) if p.starts_with(&h.layout.dir) => d = p,
                    _ => break,
                }
            }
            if !created.is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                to_sync.push(d.to_path_buf());
            }
            std::fs::write(&chunk_path, bytes).map_err(|e| Error::io(&chunk_path, e))?;
            to_sync.push(chunk_path.clone());
            to_sync.extend(created);
            to_sync.push(parent.to_path_buf());
        }
        to_sync.sort();
        to_sync.dedup();
        fsync_all(&to_sync)?;
        let mut pending = self.pending.lock().unwrap();
        for (it, (_, abs_max, h)) in items.iter().zip(encoded) {
            let nbytes = h.layout.spec.chunk_nbytes() as u64;
            let marker = Marker { abs_max, nbytes };
            pending.insert((it.array.to_string(), it.index), marker);
        }
        Ok(())
    }

    /// Checks one item and encodes it: (the chunk file's bytes, abs max of the stored values).
    fn encode_sample(&self, h: &WriteArray, it: &SampleWrite<'_>) -> Result<(Vec<u8>, f32)> {
        let (array, index, data) = (it.array, it.index, it.data);
        self.check_index(array, index)?;
        let spec = &h.layout.spec;
        if data.len() != spec.sample_len() {
            return Err(StoreError::WrongLength {
                path: self.root.clone(),
                array: array.into(),
                index,
                expected: spec.sample_len(),
                got: data.len(),
            }
            .into());
        }
        let (encoded, abs_max) = encode(spec.dtype, data).map_err(|fault| -> Error {
            let (path, array) = (self.root.clone(), array.to_string());
            match fault {
                EncodeFault::NonFinite { element, value } => StoreError::NonFinite {
                    path,
                    array,
                    index,
                    element,
                    value,
                },
                EncodeFault::Overflow { element, value } => StoreError::Overflow {
                    path,
                    array,
                    index,
                    element,
                    value,
                    dtype: spec.dtype,
                },
            }
            .into()
        })?;
        Ok((le_bytes(encoded), abs_max))
    }

    /// Marks sample `index` of `array` done: checks that its chunk exists with the right size,
    /// then writes the marker (tmp + rename). The abs max comes from
    /// [`write_sample`](Self::write_sample) of this handle, or is computed from the chunk (which
    /// must then be finite) when another handle wrote it.
    pub fn mark_done(&self, array: &str, index: usize) -> Result<()> {
        self.mark_done_many(&[(array, index)])
    }

    /// [`mark_done`](Self::mark_done) for several (array, sample) pairs with one sync round for
    /// all their markers. Every pair is checked before any marker is written.
    pub fn mark_done_many(&self, items: &[(&str, usize)]) -> Result<()> {
        let mut found = Vec::with_capacity(items.len());
        for &(array, index) in items {
            found.push((array, index, self.chunk_marker(array, index)?));
        }
        markers::write_markers(&self.root, &found)?;
        {
            let mut pending = self.pending.lock().unwrap();
            for &(array, index) in items {
                pending.remove(&(array.to_string(), index));
            }
        }
        for &(array, index) in items {
            markers::remove_fault(&self.root, array, index)?;
        }
        Ok(())
    }

    /// Records that sample `index` of `array` could not be extracted: a fault marker holding
    /// `fault` (stage, file, reason), written atomically. The sample stays not done; writing it
    /// later removes the fault marker. A done sample is never marked faulted.
    pub fn mark_faulted(&self, array: &str, index: usize, fault: &Value) -> Result<()> {
        self.handle(array)?;
        self.check_index(array, index)?;
        if self.is_done(array, index) {
            return Ok(());
        }
        markers::write_fault(&self.root, array, index, fault)
    }

    /// The fault markers of `array`: (sample index, recorded fault), ascending.
    pub fn faults(&self, array: &str) -> Result<Vec<(usize, Value)>> {
        self.handle(array)?;
        markers::list_faults(&self.root, array, self.n_samples)
    }

    /// The marker of a written chunk (checked to exist with the right size).
    fn chunk_marker(&self, array: &str, index: usize) -> Result<Marker> {
        let h = self.handle(array)?;
        self.check_index(array, index)?;
        let spec = &h.layout.spec;
        let chunk_path = h.layout.chunk_path(index);
        let expected = spec.chunk_nbytes() as u64;
        let got = match std::fs::metadata(&chunk_path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::MissingChunk {
                    path: chunk_path,
                    array: array.into(),
                    index,
                }
                .into())
            }
            Err(e) => return Err(Error::io(chunk_path, e)),
        };
        if got != expected {
            return Err(StoreError::ChunkSize {
                path: chunk_path,
                array: array.into(),
                index,
                expected,
                got,
            }
            .into());
        }
        let pending = self
            .pending
            .lock()
            .unwrap()
            .get(&(array.to_string(), index))
            .copied();
        if let Some(m) = pending {
            return Ok(m);
        }
        fsync_file(&chunk_path)?;
        let bytes = std::fs::read(&chunk_path).map_err(|e| Error::io(&chunk_path, e))?;
        let s = scan(spec.dtype, &bytes);
        if let Some((element, value)) = s.non_finite {
            return Err(StoreError::NonFinite {
                path: chunk_path,
                array: array.into(),
                index,
                element,
                value,
            }
            .into());
        }
        Ok(Marker {
            abs_max: s.abs_max,
            nbytes: expected,
        })
    }

    /// Whether sample `index` of `array` is done (its marker exists).
    pub fn is_done(&self, array: &str, index: usize) -> bool {
        validate_name(array).is_ok()
            && index < self.n_samples
            && markers::marker_path(&self.root, array, index).is_file()
    }

    /// The completion mask of `array`: `[n_samples]`, true where the sample is done.
    pub fn completion(&self, array: &str) -> Result<Vec<bool>> {
        self.handle(array)?;
        markers::completion_mask(&self.root, array, self.n_samples)
    }

    /// The stored marker of a done sample (`None` if not done).
    pub fn marker(&self, array: &str, index: usize) -> Result<Option<Marker>> {
        self.handle(array)?;
        markers::read_marker(&self.root, array, index)
    }

    /// Temporary files and folders left inside the store by killed writers (see
    /// [`remove_leftovers`](Self::remove_leftovers)). Harmless: readers ignore them.
    pub fn leftovers(&self) -> Result<Vec<PathBuf>> {
        list_leftovers(&self.root)
    }

    /// Removes the temporary entries of killed writers and returns them. Call it only while no
    /// other writer works on the store (a live writer's temporary file would be removed too).
    /// Marker temporaries need no call: resuming the sample reuses and renames them.
    pub fn remove_leftovers(&self) -> Result<Vec<PathBuf>> {
        let found = list_leftovers(&self.root)?;
        for p in &found {
            let removed = if p.is_dir() {
                std::fs::remove_dir_all(p)
            } else {
                std::fs::remove_file(p)
            };
            match removed {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(p, e)),
            }
        }
        Ok(found)
    }
}

/// Whether `dir` becomes a zarr group within about a second (a concurrent creator's rename).
fn wait_for_group(dir: &Path) -> Result<bool> {
    for _ in 0..200 {
        if node_type(dir)?.as_deref() == Some("group") {
            return Ok(true);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    Ok(false)
}

//! TensorBoard event files, written and read by hand.
//!
//! Why by hand: the format is small and frozen (TFRecord framing around `tensorflow.Event`
//! protobufs), the maintained Rust writers bring a protobuf code generator or an image stack
//! along, and the run folder must also be *read back* (resume appends only the steps an event
//! file does not hold yet), which a writer-only crate does not offer. This file encodes and
//! decodes the few messages TensorBoard's scalar and image dashboards read:
//!
//! ```text
//! Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//! Summary { repeated Value value = 1; }
//! Value   { string tag = 1; float simple_value = 2; Image image = 4; }
//! Image   { int32 height = 1; int32 width = 2; int32 colorspace = 3; bytes encoded_image_string = 4; }
//! ```
//!
//! A record is `u64 len (LE) | masked crc32c(len) | data | masked crc32c(data)`, the mask being
//! `((crc >> 15) | (crc << 17)) + 0xa282ead8`. CRC-32C (Castagnoli, the iSCSI polynomial) comes
//! from the `crc` crate (MIT OR Apache-2.0, pure Rust, already in the workspace's lock file
//! through `flacenc`), so this module adds no new dependency and builds without the library's
//! `extract` feature. Python `tensorboard`'s reader checks both CRCs (tests/oracle/tb_events.py).
//!
//! Files: each writing process creates its own `events.out.tfevents.<secs>.weld-cache.<n>.<pid>`
//! (named to sort after every event file already in the folder, as TensorBoard reads a run's
//! files in name order) and never appends to another process's file. Every write is fsynced, so
//! a kill leaves at most one truncated record at the end of the killed process's file; readers
//! (TensorBoard's and [`read_event_file`]) stop at it, and the next writer rewrites its content
//! into a new file. Scalars are `float32` (`simple_value`, what every TensorBoard and W&B reader
//! understands); `history.csv` and `metrics.json` stay the full-precision source of truth.
use crate::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// `file_version` of the first event of every file (TensorBoard's current format).
pub const FILE_VERSION: &str = "brain.Event:2";
/// Event files are recognised by this substring of their name (as TensorBoard does).
pub const EVENTS_MARK: &str = "tfevents";

const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// CRC-32C of `data`, masked as TFRecord stores it.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    CRC32C
        .checksum(data)
        .rotate_right(15)
        .wrapping_add(0xa282_ead8)
}

/// Appends one TFRecord (`data` framed with its length and both masked CRCs) to `out`.
pub fn frame_record(data: &[u8], out: &mut Vec<u8>) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
}

/// The records of one TFRecord file's bytes, and whether it ends in a truncated record (a
/// writer killed mid-write; the bytes after the last whole record are ignored). A CRC mismatch
/// on a whole record is an error naming `path` and the byte offset.
pub fn split_records<'a>(bytes: &'a [u8], path: &Path) -> Result<(Vec<&'a [u8]>, bool)> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        if rest.len() < 12 {
            return Ok((out, true));
        }
        let len_bytes = &rest[..8];
        let crc = u32::from_le_bytes(rest[8..12].try_into().unwrap());
        if crc != masked_crc32c(len_bytes) {
            return Err(corrupt(path, pos, "length CRC"));
        }
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap());
        let Some(end) = usize::try_from(len).ok().and_then(|l| l.checked_add(16)) else {
            return Err(corrupt(path, pos, "record length"));
        };
        if rest.len() < end {
            return Ok((out, true));
        }
        let data = &rest[12..end - 4];
        let crc = u32::from_le_bytes(rest[end - 4..end].try_into().unwrap());
        if crc != masked_crc32c(data) {
            return Err(corrupt(path, pos, "data CRC"));
        }
        out.push(data);
        pos += end;
    }
    Ok((out, false))
}

fn corrupt(path: &Path, offset: usize, what: &str) -> Error {
    Error::Msg(format!(
        "{}: corrupt TensorBoard event file ({what} mismatch at byte {offset}); \
         move the file away and rerun to rewrite its events",
        path.display()
    ))
}

/// An image summary: PNG bytes and the size read from their header.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    /// 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA (TensorBoard's `Summary.Image.colorspace`)
    pub colorspace: u32,
    pub png: Vec<u8>,
}

impl Image {
    /// Reads width, height and colour type from the PNG's IHDR chunk; anything that is not a
    /// PNG is an error (`what` names the source in it).
    pub fn from_png(png: Vec<u8>, what: &str) -> Result<Self> {
        const SIG: &[u8] = b"\x89PNG\r\n\x1a\n";
        if png.len() < 26 || &png[..8] != SIG || &png[12..16] != b"IHDR" {
            return Err(Error::Msg(format!("{what}: not a PNG file")));
        }
        let be = |i: usize| u32::from_be_bytes(png[i..i + 4].try_into().unwrap());
        let colorspace = match png[25] {
            0 => 1,
            4 => 2,
            6 => 4,
            _ => 3, // 2 truecolour, 3 palette (displayed as RGB)
        };
        Ok(Image {
            width: be(16),
            height: be(20),
            colorspace,
            png,
        })
    }
}

/// What one `Summary.Value` holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(f32),
    Image(Image),
    /// a kind this module does not write (tensor, histogram, audio...): only its tag is kept
    Other,
}

/// One tagged value of a summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Tagged {
    pub tag: String,
    pub value: Value,
}

impl Tagged {
    pub fn scalar(tag: impl Into<String>, v: f64) -> Self {
        Tagged {
            tag: tag.into(),
            value: Value::Scalar(v as f32),
        }
    }
}

/// What an event carries.
#[derive(Debug, Clone, PartialEq)]
pub enum What {
    FileVersion(String),
    Summary(Vec<Tagged>),
    /// graph, session log, ...: not written here, skipped when read
    Other,
}

/// A `tensorflow.Event`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// seconds since the Unix epoch
    pub wall_time: f64,
    pub step: i64,
    pub what: What,
}

/// Seconds since the Unix epoch, now.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Event {
    /// A summary event at `step`, stamped now.
    pub fn summary(step: i64, values: Vec<Tagged>) -> Self {
        Event {
            wall_time: now(),
            step,
            what: What::Summary(values),
        }
    }

    /// The protobuf encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        put_key(&mut b, 1, 1);
        b.extend_from_slice(&self.wall_time.to_le_bytes());
        if self.step != 0 {
            put_key(&mut b, 2, 0);
            put_varint(&mut b, self.step as u64);
        }
        match &self.what {
            What::FileVersion(v) => put_len(&mut b, 3, v.as_bytes()),
            What::Summary(values) => {
                let mut s = Vec::new();
                for t in values {
                    put_len(&mut s, 1, &encode_value(t));
                }
                put_len(&mut b, 5, &s);
            }
            What::Other => {}
        }
        b
    }

    /// Decodes an `Event` (unknown fields skipped). `Err` holds the reason.
    pub fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        let mut ev = Event {
            wall_time: 0.0,
            step: 0,
            what: What::Other,
        };
        for f in Fields(bytes) {
            match f? {
                (1, Wire::I64(v)) => ev.wall_time = f64::from_bits(v),
                (2, Wire::Varint(v)) => ev.step = v as i64,
                (3, Wire::Len(s)) => {
                    ev.what = What::FileVersion(String::from_utf8_lossy(s).into_owned())
                }
                (5, Wire::Len(s)) => {
                    let mut values = Vec::new();
                    for f in Fields(s) {
                        if let (1, Wire::Len(v)) = f? {
                            values.push(decode_value(v)?);
                        }
                    }
                    ev.what = What::Summary(values);
                }
                _ => {}
            }
        }
        Ok(ev)
    }
}

fn encode_value(t: &Tagged) -> Vec<u8> {
    let mut v = Vec::new();
    put_len(&mut v, 1, t.tag.as_bytes());
    match &t.value {
        Value::Scalar(x) => {
            put_key(&mut v, 2, 5);
            v.extend_from_slice(&x.to_le_bytes());
        }
        Value::Image(img) => {
            let mut i = Vec::new();
            for (field, x) in [(1, img.height), (2, img.width), (3, img.colorspace)] {
                put_key(&mut i, field, 0);
                put_varint(&mut i, x as u64);
            }
            put_len(&mut i, 4, &img.png);
            put_len(&mut v, 4, &i);
        }
        Value::Other => {}
    }
    v
}

fn decode_value(bytes: &[u8]) -> std::result::Result<Tagged, String> {
    let mut t = Tagged {
        tag: String::new(),
        value: Value::Other,
    };
    for f in Fields(bytes) {
        match f? {
            (1, Wire::Len(s)) => t.tag = String::from_utf8_lossy(s).into_owned(),
            (2, Wire::I32(x)) => t.value = Value::Scalar(f32::from_bits(x)),
            (4, Wire::Len(s)) => {
                let mut img = Image {
                    width: 0,
                    height: 0,
                    colorspace: 0,
                    png: vec![],
                };
                for f in Fields(s) {
                    match f? {
                        (1, Wire::Varint(x)) => img.height = x as u32,
                        (2, Wire::Varint(x)) => img.width = x as u32,
                        (3, Wire::Varint(x)) => img.colorspace = x as u32,
                        (4, Wire::Len(p)) => img.png = p.to_vec(),
                        _ => {}
                    }
                }
                t.value = Value::Image(img);
            }
            _ => {}
        }
    }
    Ok(t)
}

fn put_varint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push((v as u8) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

fn put_key(b: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(b, ((field as u64) << 3) | wire as u64);
}

fn put_len(b: &mut Vec<u8>, field: u32, data: &[u8]) {
    put_key(b, field, 2);
    put_varint(b, data.len() as u64);
    b.extend_from_slice(data);
}

/// A protobuf field's payload by wire type.
enum Wire<'a> {
    Varint(u64),
    I64(u64),
    Len(&'a [u8]),
    I32(u32),
}

/// Iterates `(field number, payload)` over a message's bytes.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn varint(&mut self) -> std::result::Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.0.split_first().ok_or("truncated varint")?;
            self.0 = rest;
            v |= ((byte & 0x7f) as u64) << shift;
            if byte < 0x80 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!("field of {n} bytes overruns its message"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
}

impl<'a> Fields<'a> {
    fn field(&mut self) -> std::result::Result<(u32, Wire<'a>), String> {
        let key = self.varint()?;
        let field = (key >> 3) as u32;
        let w = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => Wire::I64(u64::from_le_bytes(self.take(8)?.try_into().unwrap())),
            2 => {
                let n = self.varint()? as usize;
                Wire::Len(self.take(n)?)
            }
            5 => Wire::I32(u32::from_le_bytes(self.take(4)?.try_into().unwrap())),
            w => return Err(format!("unsupported wire type {w} (field {field})")),
        };
        Ok((field, w))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = std::result::Result<(u32, Wire<'a>), String>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let r = self.field();
        if r.is_err() {
            self.0 = &[];
        }
        Some(r)
    }
}

/// The events of one file.
#[derive(Debug)]
pub struct EventFile {
    pub path: PathBuf,
    pub events: Vec<Event>,
    /// the file ends in a truncated record (its writer was killed mid-write)
    pub truncated: bool,
}

/// Reads every whole record of an event file.
pub fn read_event_file(path: &Path) -> Result<EventFile> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (records, truncated) = split_records(&bytes, path)?;
    let events = records
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            Event::decode(r).map_err(|e| {
                Error::Msg(format!(
                    "{}: record {i} is not a TensorBoard Event ({e})",
                    path.display()
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(EventFile {
        path: path.to_path_buf(),
        events,
        truncated,
    })
}

/// The event files of `dir` (names containing `tfevents`), sorted by name as TensorBoard
/// reads them. A missing folder holds none.
pub fn event_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        if name.to_string_lossy().contains(EVENTS_MARK) && entry.path().is_file() {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Every event file of `dir`, read.
pub fn read_event_dir(dir: &Path) -> Result<Vec<EventFile>> {
    event_files(dir)?
        .iter()
        .map(|p| read_event_file(p))
        .collect()
}

/// Writes one new event file in a folder (see the module doc for the naming and fsync rules).
pub struct EventWriter {
    path: PathBuf,
    file: std::fs::File,
}

impl EventWriter {
    /// Creates `dir` and a new event file in it whose name sorts after every event file
    /// already there; its first record is the `file_version` event.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let existing = event_files(dir)?;
        let mut secs = now() as u64;
        if let Some(last) = existing.last() {
            // names hold `tfevents.<secs>.`; never sort before an existing file
            let name = last.file_name().unwrap_or_default().to_string_lossy();
            if let Some(s) = name
                .split_once("tfevents.")
                .and_then(|(_, r)| r.split('.').next())
                .and_then(|s| s.parse::<u64>().ok())
            {
                secs = secs.max(s);
            }
        }
        let (pid, n) = (std::process::id(), existing.len());
        let path = loop {
            let p = dir.join(format!(
                "events.out.tfevents.{secs:010}.weld-cache.{n:04}.{pid}"
            ));
            if existing.last().is_none_or(|l| &p > l) && !p.exists() {
                break p;
            }
            secs += 1;
        };
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let mut w = EventWriter { path, file };
        w.write(&[Event {
            wall_time: now(),
            step: 0,
            what: What::FileVersion(FILE_VERSION.into()),
        }])?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all(); // the new name survives a power loss; best effort
        }
        Ok(w)
    }

    /// Reopens, to append to it, an event file this process created earlier.
    pub fn reopen(path: &Path) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        Ok(EventWriter {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends `events` (one `write` + fsync).
    pub fn write(&mut self, events: &[Event]) -> Result<()> {
        let mut buf = Vec::new();
        for e in events {
            frame_record(&e.encode(), &mut buf);
        }
        self.file
            .write_all(&buf)
            .and_then(|_| self.file.sync_data())
            .map_err(|e| Error::io(&self.path, e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Appends one event of `scalars` to the TensorBoard run in `dir` at the step after the
/// largest step any of their tags holds there (0 for a new run), in a new event file; returns
/// that step. For runs that log once per invocation (`extract run`).
pub fn append_scalars(dir: &Path, scalars: &[(String, f64)]) -> Result<i64> {
    let mut step = 0;
    for f in read_event_dir(dir)? {
        for e in &f.events {
            if let What::Summary(values) = &e.what {
                if values
                    .iter()
                    .any(|t| scalars.iter().any(|(n, _)| *n == t.tag))
                {
                    step = step.max(e.step + 1);
                }
            }
        }
    }
    let values = scalars
        .iter()
        .map(|(n, v)| Tagged::scalar(n.clone(), *v))
        .collect();
    EventWriter::create(dir)?.write(&[Event::summary(step, values)])?;
    Ok(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_known_values() {
        // RFC 3720 check value of CRC-32C
        assert_eq!(CRC32C.checksum(b"123456789"), 0xe306_9283);
        assert_eq!(masked_crc32c(b""), 0xa282_ead8);
    }

    #[test]
    fn event_roundtrip_and_truncation() {
        let png = {
            let mut p = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
            p.extend_from_slice(&640u32.to_be_bytes());
            p.extend_from_slice(&480u32.to_be_bytes());
            p.extend_from_slice(&[8, 6, 0, 0, 0]);
            p
        };
        let img = Image::from_png(png, "test").unwrap();
        assert_eq!((img.width, img.height, img.colorspace), (640, 480, 4));
        assert!(Image::from_png(b"GIF89a".to_vec(), "x.gif").is_err());
        let evs = vec![
            Event::summary(
                7,
                vec![
                    Tagged::scalar("loss/total", 0.25),
                    Tagged::scalar("a/b", -1e30),
                ],
            ),
            Event::summary(
                300,
                vec![Tagged {
                    tag: "plots/roc".into(),
                    value: Value::Image(img),
                }],
            ),
        ];
        let mut bytes = Vec::new();
        frame_record(&evs[0].encode(), &mut bytes);
        let first_len = bytes.len();
        frame_record(&evs[1].encode(), &mut bytes);
        let p = Path::new("mem");
        let (recs, trunc) = split_records(&bytes, p).unwrap();
        assert!(!trunc);
        let back: Vec<Event> = recs.iter().map(|r| Event::decode(r).unwrap()).collect();
        assert_eq!(back, evs);
        // a kill mid-record: the whole records before it are kept
        for cut in [
            bytes.len() - 1,
            bytes.len() - 30,
            first_len + 3,
            first_len - 1,
            5,
        ] {
            let (recs, trunc) = split_records(&bytes[..cut], p).unwrap();
            assert!(trunc);
            assert_eq!(recs.len(), usize::from(cut >= first_len), "cut {cut}");
        }
        // a flipped bit in a whole record is an error naming the file
        bytes[20] ^= 1;
        let err = split_records(&bytes, p).unwrap_err().to_string();
        assert!(err.contains("mem") && err.contains("CRC"), "{err}");
    }

    #[test]
    fn writers_sort_after_existing_files() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("tb");
        assert_eq!(append_scalars(&d, &[("x".into(), 1.0)]).unwrap(), 0);
        assert_eq!(append_scalars(&d, &[("x".into(), 2.0)]).unwrap(), 1);
        assert_eq!(append_scalars(&d, &[("y".into(), 2.0)]).unwrap(), 0);
        let files = event_files(&d).unwrap();
        assert_eq!(files.len(), 3);
        let all: Vec<(i64, f32)> = read_event_dir(&d)
            .unwrap()
            .iter()
            .flat_map(|f| {
                assert!(matches!(&f.events[0].what, What::FileVersion(v) if v == FILE_VERSION));
                f.events[1..].to_vec()
            })
            .map(|e| match e.what {
                What::Summary(v) => match v[0].value {
                    Value::Scalar(x) => (e.step, x),
                    _ => panic!(),
                },
                _ => panic!(),
            })
            .collect();
        assert_eq!(all, vec![(0, 1.0), (1, 2.0), (0, 2.0)]);
    }
}

//! A minimal AVI (RIFF) walker for Motion-JPEG video: where each frame's JPEG lies in the file,
//! so that only the frames a clip needs are read and decoded (one JPEG each), instead of
//! opencv's seek, which decodes about 16 frames before every target. Pure Rust, no decoder.
//!
//! Handles plain AVI (one `RIFF AVI ` with `LIST movi`, optionally `LIST rec ` groups) and
//! OpenDML files (further `RIFF AVIX` parts). A file qualifies when its first video stream is
//! MJPEG (`MJPG`/`mjpg` in `strh` or `strf`), it holds exactly the frame count its `strh`
//! declares, and no frame chunk is empty (an empty chunk is a dropped frame that a demuxer
//! repeats; we leave such files to opencv).
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Where the frames of an MJPEG AVI are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MjpegIndex {
    /// `(byte offset, byte length)` of each frame's JPEG, in presentation order.
    pub frames: Vec<(u64, u32)>,
    pub width: u32,
    pub height: u32,
}

/// What [`mjpeg_index`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AviProbe {
    /// An MJPEG AVI whose frames can be read one by one.
    Mjpeg(MjpegIndex),
    /// Anything else (other container or codec, dropped frames): the reason, for the log.
    Other(String),
}

fn fourcc(b: &[u8]) -> [u8; 4] {
    [b[0], b[1], b[2], b[3]]
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

struct Walker {
    file: File,
    len: u64,
}

impl Walker {
    fn read(&self, off: u64, n: usize) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0u8; n];
        self.file.read_exact_at(&mut buf, off)?;
        Ok(buf)
    }

    /// Chunks `(id, data offset, data size)` of the region `[start, end)`.
    fn chunks(&self, start: u64, end: u64) -> std::io::Result<Vec<([u8; 4], u64, u32)>> {
        let mut out = Vec::new();
        let mut pos = start;
        let end = end.min(self.len);
        while pos + 8 <= end {
            let h = self.read(pos, 8)?;
            let size = le32(&h[4..]);
            out.push((fourcc(&h), pos + 8, size));
            pos += 8 + u64::from(size) + u64::from(size & 1);
        }
        Ok(out)
    }
}

#[derive(Default)]
struct VideoStream {
    number: Option<usize>,
    handler: [u8; 4],
    compression: [u8; 4],
    length: u32,
    width: u32,
    height: u32,
}

fn is_mjpg(cc: &[u8; 4]) -> bool {
    cc.eq_ignore_ascii_case(b"MJPG")
}

/// Probes `path`: `Ok(AviProbe::Mjpeg)` when its frames can be read directly, `Ok(Other)` for
/// any other video, `Err` only for I/O errors or an AVI whose structure is broken.
pub fn mjpeg_index(path: &Path) -> Result<AviProbe, String> {
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let len = file
        .metadata()
        .map_err(|e| format!("cannot stat: {e}"))?
        .len();
    let w = Walker { file, len };
    if len < 12 {
        return Ok(AviProbe::Other("shorter than a RIFF header".into()));
    }
    let head = w.read(0, 12).map_err(|e| e.to_string())?;
    if &head[0..4] != b"RIFF" || &head[8..12] != b"AVI " {
        return Ok(AviProbe::Other("not an AVI (RIFF AVI ) file".into()));
    }
    let io = |e: std::io::Error| format!("reading the AVI structure: {e}");
    let mut vs = VideoStream::default();
    let mut frames: Vec<(u64, u32)> = Vec::new();
    let mut empty = 0usize;
    // top level: RIFF AVI , then possibly RIFF AVIX parts (OpenDML)
    let mut riffs: Vec<(u64, u64)> = vec![(12, 8 + u64::from(le32(&head[4..8])))];
    let mut pos = riffs[0].1 + (riffs[0].1 & 1);
    while pos + 12 <= len {
        let h = w.read(pos, 12).map_err(io)?;
        let size = u64::from(le32(&h[4..8]));
        if &h[0..4] == b"RIFF" && &h[8..12] == b"AVIX" {
            riffs.push((pos + 12, pos + 8 + size));
        }
        pos += 8 + size + (size & 1);
    }
    let mut tag = [0u8; 4];
    for (k, &(start, end)) in riffs.iter().enumerate() {
        for (id, off, size) in w.chunks(start, end).map_err(io)? {
            if &id != b"LIST" || size < 4 {
                continue;
            }
            let kind = fourcc(&w.read(off, 4).map_err(io)?);
            let body = (off + 4, off + u64::from(size));
            if k == 0 && &kind == b"hdrl" {
                let mut stream = 0usize;
                for (sid, soff, ssize) in w.chunks(body.0, body.1).map_err(io)? {
                    if &sid != b"LIST" || ssize < 4 || &w.read(soff, 4).map_err(io)? != b"strl" {
                        continue;
                    }
                    let mut is_video = false;
                    for (cid, coff, csize) in
                        w.chunks(soff + 4, soff + u64::from(ssize)).map_err(io)?
                    {
                        if &cid == b"strh" && csize >= 36 {
                            let d = w.read(coff, 36).map_err(io)?;
                            if &d[0..4] == b"vids" && vs.number.is_none() {
                                is_video = true;
                                vs.number = Some(stream);
                                vs.handler = fourcc(&d[4..8]);
                                vs.length = le32(&d[32..36]);
                            }
                        } else if &cid == b"strf" && csize >= 20 && is_video {
                            let d = w.read(coff, 20).map_err(io)?;
                            vs.width = le32(&d[4..8]);
                            vs.height = le32(&d[8..12]);
                            vs.compression = fourcc(&d[16..20]);
                        }
                    }
                    stream += 1;
                }
                let Some(n) = vs.number else {
                    return Ok(AviProbe::Other("no video stream".into()));
                };
                if !is_mjpg(&vs.handler) && !is_mjpg(&vs.compression) {
                    return Ok(AviProbe::Other(format!(
                        "video codec {} is not MJPEG",
                        String::from_utf8_lossy(&vs.compression)
                    )));
                }
                if n > 99 {
                    return Ok(AviProbe::Other("video stream number above 99".into()));
                }
                tag = [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8, 0, 0];
            } else if &kind == b"movi" {
                if vs.number.is_none() {
                    return Err("`movi` list before the stream headers".into());
                }
                let mut stack = vec![body];
                while let Some((s, e)) = stack.pop() {
                    let mut sub = Vec::new();
                    for (cid, coff, csize) in w.chunks(s, e).map_err(io)? {
                        if &cid == b"LIST" && csize >= 4 {
                            sub.push((coff + 4, coff + u64::from(csize)));
                        } else if cid[0..2] == tag[0..2]
                            && (&cid[2..4] == b"dc" || &cid[2..4] == b"db")
                        {
                            if csize == 0 {
                                empty += 1;
                            } else {
                                frames.push((coff, csize));
                            }
                        }
                    }
                    // `rec ` lists hold consecutive frames: keep file order
                    stack.extend(sub.into_iter().rev());
                }
            }
        }
    }
    if vs.number.is_none() {
        return Ok(AviProbe::Other("no stream header list (hdrl)".into()));
    }
    if empty > 0 {
        return Ok(AviProbe::Other(format!(
            "{empty} empty (dropped) frame chunks"
        )));
    }
    if frames.is_empty() || frames.len() != vs.length as usize {
        return Ok(AviProbe::Other(format!(
            "{} frame chunks but the stream header declares {}",
            frames.len(),
            vs.length
        )));
    }
    if let Some(&(o, s)) = frames.last() {
        if o + u64::from(s) > len {
            return Err(format!(
                "frame chunk at byte {o} runs past the end of the file"
            ));
        }
    }
    Ok(AviProbe::Mjpeg(MjpegIndex {
        frames,
        width: vs.width,
        height: vs.height,
    }))
}

/// The bytes of frame `i` of an indexed file.
pub fn read_frame(file: &File, index: &MjpegIndex, i: usize) -> std::io::Result<Vec<u8>> {
    let (off, size) = index.frames[i];
    let mut buf = vec![0u8; size as usize];
    file.read_exact_at(&mut buf, off)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_avi_files_are_other() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.avi");
        std::fs::write(&p, b"RIFF\x04\x00\x00\x00WAVE").unwrap();
        assert!(matches!(mjpeg_index(&p).unwrap(), AviProbe::Other(_)));
    }
}

//! JPEG decoding through libjpeg(-turbo) directly (`jpeg_shim.c`), the library opencv's `imdecode`
//! uses underneath, with the same settings (ISLOW IDCT, fancy upsampling, DCT scaling): the same
//! pixels, written straight into the caller's buffer in the layout asked for (BGR, RGB or luma),
//! without opencv's per-row colour swap and scratch copies (a third of opencv's decode time on a
//! 1920x1080 photo). Tested bit-identical to opencv in `tests/data_video_readers.rs`.
//!
//! What this path declines (the caller decodes those with opencv, which handles them its own way):
//! streams that are not JPEG, CMYK/YCCK JPEGs, and JPEGs whose EXIF orientation asks for a
//! rotation or flip ([`direct_jpeg`]). Unlike opencv, a JPEG whose pixel data ends early or
//! cannot be read (libjpeg would fill the rest with grey, or zeros after a bad Huffman code) is an
//! error, never a partly invented image.
use std::ffi::{c_char, c_int, c_uchar, c_ulong, CStr};

const MSG_LEN: usize = 200; // JMSG_LENGTH_MAX
const OK: c_int = 0;
const UNSUPPORTED: c_int = 3;

extern "C" {
    fn weld_jpeg_info(
        data: *const c_uchar,
        len: c_ulong,
        h: *mut c_int,
        w: *mut c_int,
        components: *mut c_int,
        msg: *mut c_char,
    ) -> c_int;
    fn weld_jpeg_decode(
        data: *const c_uchar,
        len: c_ulong,
        denom: c_int,
        format: c_int,
        out: *mut c_uchar,
        h: c_int,
        w: c_int,
        msg: *mut c_char,
    ) -> c_int;
}

/// The pixel layout [`decode_into`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JpegOut {
    /// 3 bytes per pixel, blue first (what opencv's `IMREAD_COLOR` gives).
    Bgr,
    /// 3 bytes per pixel, red first.
    Rgb,
    /// 1 byte per pixel: the luma plane (opencv's `IMREAD_GRAYSCALE` of a colour JPEG).
    Luma,
}

impl JpegOut {
    pub fn channels(self) -> usize {
        match self {
            JpegOut::Luma => 1,
            _ => 3,
        }
    }
    fn code(self) -> c_int {
        match self {
            JpegOut::Bgr => 0,
            JpegOut::Rgb => 1,
            JpegOut::Luma => 2,
        }
    }
}

/// A JPEG's full size and colour components, from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JpegInfo {
    pub h: usize,
    pub w: usize,
    /// Colour components in the file (1 grey, 3 YCbCr/RGB, 4 CMYK/YCCK).
    pub components: usize,
}

impl JpegInfo {
    /// `(h, w)` decoded at 1/`denom` scale (libjpeg rounds each side up).
    pub fn scaled(&self, denom: usize) -> (usize, usize) {
        (self.h.div_ceil(denom), self.w.div_ceil(denom))
    }

    /// Whether this path decodes `data` (whose header this is) exactly as opencv's `imdecode`
    /// would: 1 or 3 components and no EXIF orientation other than 1 (opencv rotates the
    /// others; it converts CMYK its own way).
    pub fn decodes_like_opencv(&self, data: &[u8]) -> bool {
        matches!(self.components, 1 | 3)
            && self.h > 0
            && self.w > 0
            && matches!(exif_orientation(data), None | Some(1))
    }
}

/// Why [`decode_into`] returned no pixels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JpegError {
    /// Corrupt, truncated or not a JPEG: libjpeg's message.
    Corrupt(String),
    /// A stream this path leaves to opencv (CMYK/YCCK).
    Unsupported(String),
}

impl std::fmt::Display for JpegError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JpegError::Corrupt(m) => write!(f, "libjpeg: {m}"),
            JpegError::Unsupported(m) => write!(f, "unsupported JPEG: {m}"),
        }
    }
}

fn message(buf: &[c_char; MSG_LEN]) -> String {
    // SAFETY: the shim writes a NUL-terminated message of at most JMSG_LENGTH_MAX bytes (or
    // leaves the leading NUL written by its set-up).
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

fn check_denom(denom: usize) -> c_int {
    assert!(
        matches!(denom, 1 | 2 | 4 | 8),
        "JPEG DCT scale 1/{denom} (expected 1, 2, 4 or 8)"
    );
    denom as c_int
}

/// The header of `data`: full size and components. Not a JPEG (no SOI marker) or a header
/// libjpeg cannot read is [`JpegError::Corrupt`].
pub fn info(data: &[u8]) -> Result<JpegInfo, JpegError> {
    if data.len() < 4 || data[0] != 0xFF || data[1] != 0xD8 {
        return Err(JpegError::Corrupt("not a JPEG (no SOI marker)".into()));
    }
    let (mut h, mut w, mut c) = (0, 0, 0);
    let mut msg = [0 as c_char; MSG_LEN];
    // SAFETY: `data` is a live slice of `len` bytes; the out-pointers and the message buffer
    // (JMSG_LENGTH_MAX bytes) are valid for writes for the whole call.
    let rc = unsafe {
        weld_jpeg_info(
            data.as_ptr(),
            data.len() as c_ulong,
            &mut h,
            &mut w,
            &mut c,
            msg.as_mut_ptr(),
        )
    };
    if rc != OK {
        return Err(JpegError::Corrupt(message(&msg)));
    }
    Ok(JpegInfo {
        h: h as usize,
        w: w as usize,
        components: c as usize,
    })
}

/// Decodes `data` at 1/`denom` scale into `out`, which must hold exactly `h * w * channels`
/// bytes of the size [`JpegInfo::scaled`] gives (rows contiguous, no padding).
pub fn decode_into(
    data: &[u8],
    denom: usize,
    layout: JpegOut,
    out: &mut [u8],
    h: usize,
    w: usize,
) -> Result<(), JpegError> {
    let need = h
        .checked_mul(w)
        .and_then(|n| n.checked_mul(layout.channels()));
    if need != Some(out.len()) || h > c_int::MAX as usize || w > c_int::MAX as usize {
        return Err(JpegError::Corrupt(format!(
            "output buffer of {} bytes for {w}x{h}x{}",
            out.len(),
            layout.channels()
        )));
    }
    let mut msg = [0 as c_char; MSG_LEN];
    // SAFETY: `data` is a live slice; `out` holds exactly h * w * channels writable bytes and the
    // shim writes only there after checking the decoder's output size equals (h, w, channels);
    // the message buffer is JMSG_LENGTH_MAX bytes.
    let rc = unsafe {
        weld_jpeg_decode(
            data.as_ptr(),
            data.len() as c_ulong,
            check_denom(denom),
            layout.code(),
            out.as_mut_ptr(),
            h as c_int,
            w as c_int,
            msg.as_mut_ptr(),
        )
    };
    match rc {
        OK => Ok(()),
        UNSUPPORTED => Err(JpegError::Unsupported(message(&msg))),
        _ => Err(JpegError::Corrupt(message(&msg))),
    }
}

/// The header of `data` when this path decodes it exactly as opencv's `imdecode` would
/// ([`JpegInfo::decodes_like_opencv`]); `None` sends the caller to opencv (a corrupt header too:
/// opencv then reports it).
pub fn direct_jpeg(data: &[u8]) -> Option<JpegInfo> {
    info(data).ok().filter(|i| i.decodes_like_opencv(data))
}

/// The EXIF orientation tag (0x0112) of a JPEG's APP1 `Exif` segment, if there is one.
/// An `Exif` segment too damaged to read gives `Some(0)` (not 1: the caller leaves the file to
/// opencv, which decides).
pub fn exif_orientation(data: &[u8]) -> Option<u16> {
    let mut p = 2usize;
    while p + 4 <= data.len() {
        if data[p] != 0xFF {
            return None;
        }
        let m = data[p + 1];
        if m == 0xFF {
            p += 1;
            continue;
        }
        // start of scan, end of image, or a frame header: EXIF comes before these in practice
        if m == 0xDA || m == 0xD9 {
            return None;
        }
        let len = u16::from_be_bytes([data[p + 2], data[p + 3]]) as usize;
        let seg = data.get(p + 4..p + 2 + len.max(2))?;
        if m == 0xE1 && seg.starts_with(b"Exif\0\0") {
            return tiff_orientation(&seg[6..]).unwrap_or(Some(0));
        }
        p += 2 + len;
    }
    None
}

/// Orientation from a TIFF header + IFD0: `Some(None)` without an orientation entry, `None` when
/// the header or IFD0 cannot be read.
fn tiff_orientation(t: &[u8]) -> Option<Option<u16>> {
    let le = match t.get(0..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    let u16_at = |o: usize| -> Option<u16> {
        let b = t.get(o..o + 2)?;
        Some(if le {
            u16::from_le_bytes([b[0], b[1]])
        } else {
            u16::from_be_bytes([b[0], b[1]])
        })
    };
    let u32_at = |o: usize| -> Option<u32> {
        let b = t.get(o..o + 4)?;
        let a = [b[0], b[1], b[2], b[3]];
        Some(if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    };
    let ifd = u32_at(4)? as usize;
    let n = u16_at(ifd)? as usize;
    for k in 0..n {
        let e = ifd + 2 + 12 * k;
        if u16_at(e)? == 0x0112 {
            return Some(Some(u16_at(e + 8)?));
        }
    }
    Some(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app1(orientation_le: Option<u16>) -> Vec<u8> {
        let mut tiff = b"II*\0\x08\0\0\0".to_vec();
        match orientation_le {
            Some(o) => {
                tiff.extend_from_slice(&1u16.to_le_bytes());
                tiff.extend_from_slice(&0x0112u16.to_le_bytes());
                tiff.extend_from_slice(&3u16.to_le_bytes()); // SHORT
                tiff.extend_from_slice(&1u32.to_le_bytes());
                tiff.extend_from_slice(&o.to_le_bytes());
                tiff.extend_from_slice(&[0, 0]);
            }
            None => tiff.extend_from_slice(&0u16.to_le_bytes()),
        }
        tiff.extend_from_slice(&0u32.to_le_bytes());
        let mut seg = b"Exif\0\0".to_vec();
        seg.extend(tiff);
        let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
        out.extend_from_slice(&((seg.len() + 2) as u16).to_be_bytes());
        out.extend(seg);
        out.extend_from_slice(&[0xFF, 0xDA, 0, 2]);
        out
    }

    #[test]
    fn exif_orientation_is_read_from_app1() {
        assert_eq!(exif_orientation(&app1(Some(6))), Some(6));
        assert_eq!(exif_orientation(&app1(Some(1))), Some(1));
        assert_eq!(exif_orientation(&app1(None)), None);
        let mut cut = app1(Some(6));
        cut[4..6].copy_from_slice(&10u16.to_be_bytes()); // the segment ends inside IFD0
        assert_eq!(exif_orientation(&cut), Some(0));
        assert_eq!(exif_orientation(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2]), None);
        // a big-endian TIFF header
        let mut be = app1(None);
        let tiff = b"MM\0*\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x03\0\0\0\0\0\0";
        be.truncate(12);
        be.extend_from_slice(tiff);
        be[4..6].copy_from_slice(&((6 + tiff.len() + 2) as u16).to_be_bytes());
        be.extend_from_slice(&[0xFF, 0xDA, 0, 2]);
        assert_eq!(exif_orientation(&be), Some(3));
    }

    #[test]
    fn not_a_jpeg_is_left_to_opencv_and_junk_is_an_error() {
        assert_eq!(direct_jpeg(b"\x89PNG\r\n\x1a\n"), None);
        assert_eq!(direct_jpeg(b"\xff\xd8 not a jpeg"), None);
        assert!(matches!(
            info(b"\xff\xd8 not a jpeg"),
            Err(JpegError::Corrupt(_))
        ));
        let mut out = vec![0u8; 12];
        let e = decode_into(b"\xff\xd8 junk", 1, JpegOut::Bgr, &mut out, 2, 2).unwrap_err();
        assert!(matches!(e, JpegError::Corrupt(_)), "{e}");
    }
}

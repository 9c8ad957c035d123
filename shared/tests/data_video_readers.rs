//! The frame readers of `extract run`: the `mjpeg` reader (AVI walked, only the needed JPEGs
//! decoded) against opencv's seek on the same files (same frames; libjpeg vs FFmpeg's MJPEG
//! decoder differ by at most a few grey levels), grey clips kept as one channel bit-identical
//! to the RGB path, the `auto` dispatch for an inter-frame codec, reduced-size JPEG decode.
#![cfg(feature = "extract")]
use std::path::Path;

use weld_cache::data::avi::{mjpeg_index, AviProbe};
use weld_cache::data::images::{jpeg_reduce_factor, read_image, read_image_u8};
use weld_cache::data::synth::video::{write_avi, write_avi_with};
use weld_cache::data::synth::write_image;
use weld_cache::data::video::{read_video_frames, read_video_u8, VideoReader};

const W: usize = 80;
const H: usize = 48;
const T: usize = 40;

/// Textured frames whose content changes with the frame index (so a wrong frame shows).
fn frame(k: usize, gray: bool) -> Vec<u8> {
    let mut v = Vec::with_capacity(H * W * 3);
    for y in 0..H {
        for x in 0..W {
            let a = ((x * 7 + y * 3 + k * 11) % 97) as u8 + (k * 3) as u8;
            let b = ((x * 2 + y * 9 + k * 5) % 89) as u8 + 60;
            if gray {
                v.extend_from_slice(&[a, a, a]);
            } else {
                v.extend_from_slice(&[a, b, 255 - a]);
            }
        }
    }
    v
}

fn write(p: &Path, gray: bool, fourcc: &str) {
    let mut next = |k: usize| -> weld_cache::Result<Vec<u8>> {
        let f = frame(k, gray);
        Ok(if gray {
            f.chunks_exact(3).map(|p| p[0]).collect()
        } else {
            f
        })
    };
    write_avi_with(p, T, H, W, 10.0, fourcc, !gray, &mut next).unwrap();
}

fn max_and_mean_diff(a: &[u8], b: &[u8]) -> (u8, f64) {
    assert_eq!(a.len(), b.len());
    let mut m = 0u8;
    let mut s = 0u64;
    for (x, y) in a.iter().zip(b) {
        let d = x.abs_diff(*y);
        m = m.max(d);
        s += u64::from(d);
    }
    (m, s as f64 / a.len() as f64)
}

#[test]
fn mjpeg_index_finds_every_frame() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g.avi");
    write(&p, true, "MJPG");
    let AviProbe::Mjpeg(ix) = mjpeg_index(&p).unwrap() else {
        panic!("an MJPEG AVI must qualify")
    };
    assert_eq!(ix.frames.len(), T);
    assert_eq!((ix.width as usize, ix.height as usize), (W, H));
    let bytes = std::fs::read(&p).unwrap();
    for &(o, s) in &ix.frames {
        let j = &bytes[o as usize..o as usize + s as usize];
        assert_eq!(&j[..2], &[0xFF, 0xD8], "frame chunk is not a JPEG");
    }
}

#[test]
fn grey_mjpeg_readers_agree() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g.avi");
    write(&p, true, "MJPG");
    let n = 9;
    let cv = read_video_u8(&p, n, "s", VideoReader::Opencv).unwrap();
    let mj = read_video_u8(&p, n, "s", VideoReader::Mjpeg).unwrap();
    let auto = read_video_u8(&p, n, "s", VideoReader::Auto).unwrap();
    assert_eq!((cv.c, mj.c), (1, 1), "grey clips are kept as one channel");
    assert_eq!((cv.t, cv.h, cv.w), (n, H, W));
    assert_eq!((mj.t, mj.h, mj.w), (n, H, W));
    assert_eq!(auto.reader, VideoReader::Mjpeg);
    assert_eq!(auto.bytes(), mj.bytes());
    // the opencv grey channel is exactly the old RGB path's channels
    let rgb = read_video_frames(&p, n, "s").unwrap();
    let rep: Vec<u8> = cv.bytes().iter().flat_map(|&y| [y, y, y]).collect();
    assert_eq!(rep, rgb.data);
    let (max, mean) = max_and_mean_diff(&cv.bytes(), &mj.bytes());
    println!("grey MJPEG: libjpeg vs FFmpeg decode: max {max} levels, mean {mean:.4}");
    assert!(max <= 3 && mean < 0.5, "max {max} mean {mean}");
    // right frames: frame k of the mjpeg reader is closest to source frame idx[k]
    let idx = weld_cache::data::video::uniform_indices(T, n);
    for (k, &i) in idx.iter().enumerate() {
        let got = &mj.bytes()[k * H * W..(k + 1) * H * W];
        let src: Vec<u8> = frame(i, true).chunks_exact(3).map(|p| p[0]).collect();
        let other: Vec<u8> = frame((i + 1) % T, true)
            .chunks_exact(3)
            .map(|p| p[0])
            .collect();
        assert!(max_and_mean_diff(got, &src).1 < max_and_mean_diff(got, &other).1);
    }
}

#[test]
fn colour_mjpeg_readers_agree() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.avi");
    let all: Vec<u8> = (0..T).flat_map(|k| frame(k, false)).collect();
    write_avi(&p, &all, T, H, W, 10.0, "MJPG").unwrap();
    let cv = read_video_u8(&p, 7, "s", VideoReader::Opencv).unwrap();
    let mj = read_video_u8(&p, 7, "s", VideoReader::Mjpeg).unwrap();
    let auto = read_video_u8(&p, 7, "s", VideoReader::Auto).unwrap();
    assert_eq!((cv.c, mj.c, auto.c), (3, 3, 3));
    assert_eq!(
        auto.reader,
        VideoReader::Opencv,
        "auto reads colour MJPEG through opencv"
    );
    assert_eq!(auto.bytes(), cv.bytes());
    let rgb = read_video_frames(&p, 7, "s").unwrap();
    assert_eq!(
        cv.bytes(),
        rgb.data,
        "opencv reader returns the old path's RGB"
    );
    let (max, mean) = max_and_mean_diff(&cv.bytes(), &mj.bytes());
    // chroma upsampling differs (libjpeg's fancy upsampling vs FFmpeg + swscale); this
    // texture changes chroma every pixel, the worst case (measured: max 47, mean 5.1)
    println!("colour MJPEG: libjpeg vs FFmpeg decode: max {max} levels, mean {mean:.4}");
    assert!(mean < 8.0, "max {max} mean {mean}");
    for k in 0..7 {
        let i = weld_cache::data::video::uniform_indices(T, 7)[k];
        let fs = H * W * 3;
        let got = &mj.bytes()[k * fs..(k + 1) * fs];
        let d_src = max_and_mean_diff(got, &frame(i, false)).1;
        let d_next = max_and_mean_diff(got, &frame((i + 1) % T, false)).1;
        assert!(d_src < d_next, "frame {k}: {d_src} vs {d_next}");
    }
}

#[test]
fn inter_frame_codec_goes_to_opencv() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.avi");
    write(&p, true, "FMP4");
    assert!(matches!(mjpeg_index(&p).unwrap(), AviProbe::Other(_)));
    let auto = read_video_u8(&p, 6, "s", VideoReader::Auto).unwrap();
    assert_eq!(auto.reader, VideoReader::Opencv);
    let seek = read_video_frames(&p, 6, "s").unwrap();
    assert_eq!(auto.t, 6);
    // the grab-ahead path returns the frames the seek path returns
    let n = if auto.c == 1 {
        auto.bytes()
            .iter()
            .flat_map(|&y| [y, y, y])
            .collect::<Vec<u8>>()
    } else {
        auto.bytes()
    };
    assert_eq!(n, seek.data);
    let e = read_video_u8(&p, 6, "smp", VideoReader::Mjpeg).unwrap_err();
    assert!(e.to_string().contains("Motion-JPEG"), "{e}");
}

#[test]
fn image_u8_is_bgr_and_reduces_large_jpegs_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (h, w) = (240, 320);
    let rgb: Vec<u8> = (0..h * w)
        .flat_map(|i| [(i % 251) as u8, ((i / w) % 256) as u8, 30])
        .collect();
    let jpg = dir.path().join("a.jpg");
    let png = dir.path().join("a.png");
    write_image(&jpg, &rgb, h, w).unwrap();
    write_image(&png, &rgb, h, w).unwrap();
    let full = read_image_u8(&jpg, "s", None).unwrap();
    assert_eq!((full.h, full.w, full.reduced), (h, w, 1));
    assert_eq!(full.pixels.size(), [h as i64, w as i64, 3]);
    assert!(full.in_place, "a JPEG decodes straight into the tensor");
    let old = read_image(&jpg, "s").unwrap();
    let full_bytes = Vec::<u8>::try_from(full.pixels.flatten(0, -1)).unwrap();
    let flipped: Vec<u8> = full_bytes
        .chunks_exact(3)
        .flat_map(|p| [p[2], p[1], p[0]])
        .collect();
    assert_eq!(flipped, old.data, "BGR of the same decode");
    let red = read_image_u8(&jpg, "s", Some((56, 56))).unwrap();
    assert_eq!((red.h, red.w, red.reduced), (60, 80, 4));
    assert_eq!(red.pixels.size(), [60, 80, 3]);
    assert!(red.in_place, "the reduced size is known from the header");
    let pngr = read_image_u8(&png, "s", Some((56, 56))).unwrap();
    assert_eq!(
        (pngr.h, pngr.w, pngr.reduced),
        (h, w, 1),
        "PNG is never reduced"
    );
    assert!(!pngr.in_place, "a PNG's size is not parsed: one copy");
    let png_bytes = Vec::<u8>::try_from(pngr.pixels.flatten(0, -1)).unwrap();
    let png_rgb: Vec<u8> = png_bytes
        .chunks_exact(3)
        .flat_map(|p| [p[2], p[1], p[0]])
        .collect();
    assert_eq!(
        png_rgb, rgb,
        "PNG is lossless: the copy path holds the same pixels"
    );
    assert_eq!(jpeg_reduce_factor(1080, 1920, 224, 224), 4);
    assert_eq!(jpeg_reduce_factor(300, 300, 224, 224), 1);
    assert_eq!(jpeg_reduce_factor(448, 448, 224, 224), 2);
}

// ------------------------------------------------------------ direct libjpeg vs opencv imdecode

/// A colour photo-like texture (gradients, fine detail in every channel).
fn texture(h: usize, w: usize) -> Vec<u8> {
    (0..h * w)
        .flat_map(|i| {
            let (y, x) = (i / w, i % w);
            [
                ((x * 255) / w) as u8 ^ ((y * 13) % 7) as u8,
                ((y * 255) / h) as u8,
                ((x * 31 + y * 17) % 251) as u8,
            ]
        })
        .collect()
}

/// JPEG bytes of an RGB (`c` = 3) or grey (`c` = 1) image through opencv's encoder.
fn encode(rgb: &[u8], h: usize, w: usize, c: usize, params: &[i32]) -> Vec<u8> {
    use opencv::core::{Mat, MatTraitManual, Scalar, Vector, CV_8UC1, CV_8UC3};
    let typ = if c == 1 { CV_8UC1 } else { CV_8UC3 };
    let mut m = Mat::new_rows_cols_with_default(h as i32, w as i32, typ, Scalar::all(0.0)).unwrap();
    let dst = m.data_bytes_mut().unwrap();
    if c == 1 {
        for (d, s) in dst.iter_mut().zip(rgb.chunks_exact(3)) {
            *d = s[1];
        }
    } else {
        for (d, s) in dst.chunks_exact_mut(3).zip(rgb.chunks_exact(3)) {
            d.copy_from_slice(&[s[2], s[1], s[0]]);
        }
    }
    let mut out = Vector::<u8>::new();
    assert!(
        opencv::imgcodecs::imencode(".jpg", &m, &mut out, &Vector::from_slice(params)).unwrap()
    );
    out.iter().collect()
}

/// opencv `imdecode` of `bytes` with `flags`: (bytes, rows, cols).
fn cv_decode(bytes: &[u8], flags: i32) -> (Vec<u8>, usize, usize) {
    use opencv::core::{MatTraitConst, MatTraitConstManual, Vector};
    let m = opencv::imgcodecs::imdecode(&Vector::from_slice(bytes), flags).unwrap();
    assert!(!m.empty(), "opencv cannot decode the test JPEG");
    (
        m.data_bytes().unwrap().to_vec(),
        m.rows() as usize,
        m.cols() as usize,
    )
}

#[test]
fn direct_jpeg_decode_equals_opencv_imdecode() {
    use opencv::imgcodecs::*;
    use weld_cache::data::jpeg::{decode_into, direct_jpeg, JpegOut};
    let dir = tempfile::tempdir().unwrap();
    let (h, w) = (270, 484); // not multiples of the MCU: edge blocks are partial
    let rgb = texture(h, w);
    let q = IMWRITE_JPEG_QUALITY;
    let cases: [(&str, usize, Vec<i32>); 4] = [
        ("4:2:0", 3, vec![q, 90]),
        // different luma and chroma quality: opencv's encoder then writes 4:4:4
        (
            "4:4:4",
            3,
            vec![
                IMWRITE_JPEG_LUMA_QUALITY,
                92,
                IMWRITE_JPEG_CHROMA_QUALITY,
                80,
            ],
        ),
        ("progressive", 3, vec![q, 85, IMWRITE_JPEG_PROGRESSIVE, 1]),
        ("grey", 1, vec![q, 90]),
    ];
    for (name, c, params) in cases {
        let bytes = encode(&rgb, h, w, c, &params);
        let p = dir.path().join(format!("{}.jpg", name.replace(':', "")));
        std::fs::write(&p, &bytes).unwrap();
        // BGR for the device path, at full size and at every DCT scale opencv offers
        let scales = [
            (None, 1, IMREAD_COLOR),
            (Some((130, 200)), 2, IMREAD_REDUCED_COLOR_2),
            (Some((60, 100)), 4, IMREAD_REDUCED_COLOR_4),
            (Some((30, 50)), 8, IMREAD_REDUCED_COLOR_8),
        ];
        for (target, factor, flags) in scales {
            let got = read_image_u8(&p, "s", target).unwrap();
            assert_eq!(got.reduced, factor, "{name}");
            assert!(
                got.in_place,
                "{name}: the direct path decodes into the tensor"
            );
            let (want, wh, ww) = cv_decode(&bytes, flags);
            assert_eq!((got.h, got.w), (wh, ww), "{name} 1/{factor}");
            let bgr = Vec::<u8>::try_from(got.pixels.flatten(0, -1)).unwrap();
            assert!(
                bgr == want,
                "{name} 1/{factor}: pixels differ from opencv imdecode"
            );
        }
        // RGB for the CPU path
        let (want, _, _) = cv_decode(&bytes, IMREAD_COLOR);
        let flipped: Vec<u8> = want
            .chunks_exact(3)
            .flat_map(|p| [p[2], p[1], p[0]])
            .collect();
        assert!(read_image(&p, "s").unwrap().data == flipped, "{name}: RGB");
        // luma (the mjpeg reader's grey frames)
        let info = direct_jpeg(&bytes).unwrap();
        let mut luma = vec![0u8; h * w];
        decode_into(&bytes, 1, JpegOut::Luma, &mut luma, info.h, info.w).unwrap();
        assert!(
            luma == cv_decode(&bytes, IMREAD_GRAYSCALE).0,
            "{name}: luma"
        );
    }
}

#[test]
fn motion_jpeg_frames_without_huffman_tables_decode_as_opencv() {
    use opencv::imgcodecs::*;
    use weld_cache::data::jpeg::{decode_into, direct_jpeg, JpegOut};
    // an MJPEG frame often omits its DHT segments (the standard tables are implied): strip them
    let (h, w) = (48, 80);
    let bytes = encode(&texture(h, w), h, w, 3, &[IMWRITE_JPEG_QUALITY, 90]);
    let mut stripped = bytes[..2].to_vec();
    let mut p = 2;
    while bytes[p + 1] != 0xDA {
        let len = u16::from_be_bytes([bytes[p + 2], bytes[p + 3]]) as usize;
        if bytes[p + 1] != 0xC4 {
            stripped.extend_from_slice(&bytes[p..p + 2 + len]);
        }
        p += 2 + len;
    }
    stripped.extend_from_slice(&bytes[p..]);
    assert!(
        stripped.len() < bytes.len(),
        "the encoder wrote DHT segments"
    );
    let info = direct_jpeg(&stripped).unwrap();
    let mut bgr = vec![0u8; h * w * 3];
    decode_into(&stripped, 1, JpegOut::Bgr, &mut bgr, info.h, info.w).unwrap();
    assert!(bgr == cv_decode(&stripped, IMREAD_COLOR).0);
    assert!(
        bgr == cv_decode(&bytes, IMREAD_COLOR).0,
        "the standard tables are the implied ones"
    );
}

#[test]
fn exif_rotated_jpegs_go_to_opencv_and_truncated_ones_are_errors() {
    use opencv::imgcodecs::*;
    let dir = tempfile::tempdir().unwrap();
    let (h, w) = (40, 64);
    let bytes = encode(&texture(h, w), h, w, 3, &[IMWRITE_JPEG_QUALITY, 90]);
    // an APP1 Exif segment with orientation 6 (rotate 90 clockwise) after SOI
    let mut tiff = b"II*\0\x08\0\0\0\x01\0".to_vec();
    tiff.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let mut rotated = vec![0xFF, 0xD8, 0xFF, 0xE1];
    rotated.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    rotated.extend(app1);
    rotated.extend_from_slice(&bytes[2..]);
    let p = dir.path().join("r.jpg");
    std::fs::write(&p, &rotated).unwrap();
    let got = read_image_u8(&p, "s", None).unwrap();
    let (want, wh, ww) = cv_decode(&rotated, IMREAD_COLOR);
    assert_eq!((wh, ww), (w, h), "opencv applies the EXIF rotation");
    assert_eq!((got.h, got.w), (w, h));
    assert!(!got.in_place, "a rotated JPEG is decoded by opencv");
    assert!(Vec::<u8>::try_from(got.pixels.flatten(0, -1)).unwrap() == want);
    // pixel data cut short: opencv fills the rest with grey, we refuse the file
    let cut = &bytes[..bytes.len() * 3 / 5];
    let p = dir.path().join("t.jpg");
    std::fs::write(&p, cut).unwrap();
    assert!(
        !cv_decode(cut, IMREAD_COLOR).0.is_empty(),
        "opencv decodes it anyway"
    );
    for e in [
        read_image_u8(&p, "smp", None).unwrap_err().to_string(),
        read_image(&p, "smp").unwrap_err().to_string(),
    ] {
        assert!(e.contains("Premature end") && e.contains("t.jpg"), "{e}");
    }
}

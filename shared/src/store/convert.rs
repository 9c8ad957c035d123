//! Element conversions of the store: f32 -> f16/bf16/f32 with the refusals (non-finite values,
//! magnitudes beyond the target type), stored bytes -> f32, and a scan of stored bytes for the
//! absolute maximum and the first non-finite value (used by markers and `verify`).
use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};

use super::{StoreDtype, F16_MAX};

/// Samples converted to the array's element type.
pub(crate) enum Encoded {
    F16(Vec<f16>),
    Bf16(Vec<bf16>),
    F32(Vec<f32>),
}

/// Why a sample was refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum EncodeFault {
    NonFinite { element: usize, value: f32 },
    Overflow { element: usize, value: f32 },
}

/// Converts `data` to `dtype` (round to nearest even). Refuses non-finite inputs, and values whose
/// magnitude exceeds the type (|x| > 65504 for f16, or rounding to inf for bf16). Returns the
/// converted values and their absolute maximum.
pub(crate) fn encode(dtype: StoreDtype, data: &[f32]) -> Result<(Encoded, f32), EncodeFault> {
    // Branch-free pass on the magnitude bits (vectorises): non-finite values have the largest.
    let largest = data
        .iter()
        .map(|x| x.to_bits() & 0x7FFF_FFFF)
        .max()
        .unwrap_or(0);
    let abs_max = f32::from_bits(largest);
    let limit = if dtype == StoreDtype::F16 {
        F16_MAX
    } else {
        f32::MAX
    };
    if abs_max.is_nan() || abs_max > limit {
        // Rare path: name the first offending element.
        for (element, &value) in data.iter().enumerate() {
            if !value.is_finite() {
                return Err(EncodeFault::NonFinite { element, value });
            }
            if value.abs() > limit {
                return Err(EncodeFault::Overflow { element, value });
            }
        }
    }
    // Rounding is monotonic, so the stored maximum is the rounded input maximum.
    Ok(match dtype {
        StoreDtype::F16 => {
            let mut out = vec![f16::ZERO; data.len()];
            out.convert_from_f32_slice(data);
            (Encoded::F16(out), f16::from_f32(abs_max).to_f32())
        }
        StoreDtype::Bf16 => {
            let rounded = bf16::from_f32(abs_max).to_f32();
            if !rounded.is_finite() {
                let element = data.iter().position(|x| x.abs() == abs_max).unwrap_or(0);
                return Err(EncodeFault::Overflow {
                    element,
                    value: data[element],
                });
            }
            let mut out = vec![bf16::ZERO; data.len()];
            out.convert_from_f32_slice(data);
            (Encoded::Bf16(out), rounded)
        }
        StoreDtype::F32 => (Encoded::F32(data.to_vec()), abs_max),
    })
}

/// Decodes little-endian stored bytes into `out` (`out.len() * dtype.size() == bytes.len()`).
pub(crate) fn decode_into(dtype: StoreDtype, bytes: &[u8], out: &mut [f32]) {
    assert_eq!(bytes.len(), out.len() * dtype.size(), "decode length");
    match dtype {
        StoreDtype::F16 => match bytemuck::try_cast_slice::<u8, f16>(bytes) {
            Ok(src) => src.convert_to_f32_slice(out),
            Err(_) => {
                for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                    *o = f16::from_le_bytes([b[0], b[1]]).to_f32();
                }
            }
        },
        StoreDtype::Bf16 => match bytemuck::try_cast_slice::<u8, bf16>(bytes) {
            Ok(src) => src.convert_to_f32_slice(out),
            Err(_) => {
                for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                    *o = bf16::from_le_bytes([b[0], b[1]]).to_f32();
                }
            }
        },
        StoreDtype::F32 => match bytemuck::try_cast_slice::<u8, f32>(bytes) {
            Ok(src) => out.copy_from_slice(src),
            Err(_) => {
                for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                    *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                }
            }
        },
    }
}

/// Result of scanning a stored chunk.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scan {
    /// Largest |x| over the finite values.
    pub abs_max: f32,
    /// First non-finite value: (element, value).
    pub non_finite: Option<(usize, f32)>,
}

/// Scans stored bytes on their bit patterns (no conversion, no allocation): for IEEE formats the
/// magnitude bits order like the magnitudes, and a value is non-finite when its exponent bits
/// are all set.
pub(crate) fn scan(dtype: StoreDtype, bytes: &[u8]) -> Scan {
    match dtype {
        StoreDtype::F16 => scan_bits(bytes, 0x7FFF, 0x7C00, |m| f16::from_bits(m as u16).to_f32()),
        StoreDtype::Bf16 => scan_bits(bytes, 0x7FFF, 0x7F80, |m| {
            bf16::from_bits(m as u16).to_f32()
        }),
        StoreDtype::F32 => scan_bits(bytes, 0x7FFF_FFFF, 0x7F80_0000, f32::from_bits),
    }
}

fn scan_bits(bytes: &[u8], magnitude: u32, exponent: u32, to_f32: impl Fn(u32) -> f32) -> Scan {
    let width = if magnitude > 0xFFFF { 4 } else { 2 };
    let bits = |c: &[u8]| -> u32 {
        if width == 2 {
            u16::from_le_bytes([c[0], c[1]]) as u32
        } else {
            u32::from_le_bytes([c[0], c[1], c[2], c[3]])
        }
    };
    let largest = bytes
        .chunks_exact(width)
        .map(|c| bits(c) & magnitude)
        .max()
        .unwrap_or(0);
    if largest < exponent {
        return Scan {
            abs_max: to_f32(largest),
            non_finite: None,
        };
    }
    // Rare path: find the first non-finite element and the largest finite magnitude.
    let mut first = None;
    let mut finite_max = 0;
    for (k, c) in bytes.chunks_exact(width).enumerate() {
        let b = bits(c);
        let m = b & magnitude;
        if m >= exponent {
            first.get_or_insert((k, to_f32(b)));
        } else {
            finite_max = finite_max.max(m);
        }
    }
    Scan {
        abs_max: to_f32(finite_max),
        non_finite: first,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of(e: &Encoded) -> Vec<u8> {
        match e {
            Encoded::F16(v) => bytemuck::cast_slice(v).to_vec(),
            Encoded::Bf16(v) => bytemuck::cast_slice(v).to_vec(),
            Encoded::F32(v) => bytemuck::cast_slice(v).to_vec(),
        }
    }

    #[test]
    fn encode_refuses_and_scans() {
        let data = [0.0, -1.5, 65504.0, 3.0e-8, -2.0];
        for dtype in [StoreDtype::F16, StoreDtype::Bf16, StoreDtype::F32] {
            let (enc, m) = encode(dtype, &data).unwrap();
            let bytes = bytes_of(&enc);
            let s = scan(dtype, &bytes);
            assert_eq!(s.abs_max, m, "{dtype}");
            assert!(s.non_finite.is_none());
            let mut back = vec![0f32; data.len()];
            decode_into(dtype, &bytes, &mut back);
            assert_eq!(back[1], -1.5);
            // misaligned path gives the same values
            let mut shifted = vec![0u8; bytes.len() + 1];
            shifted[1..].copy_from_slice(&bytes);
            let mut back2 = vec![0f32; data.len()];
            decode_into(dtype, &shifted[1..], &mut back2);
            assert_eq!(back, back2);
        }
        assert_eq!(
            encode(StoreDtype::F16, &[1.0, 65505.0]).err(),
            Some(EncodeFault::Overflow {
                element: 1,
                value: 65505.0
            })
        );
        assert!(encode(StoreDtype::F32, &[1.0e30]).is_ok());
        assert!(matches!(
            encode(StoreDtype::Bf16, &[3.4e38]).err(),
            Some(EncodeFault::Overflow { .. })
        ));
        assert!(matches!(
            encode(StoreDtype::F32, &[1.0, f32::NAN]).err(),
            Some(EncodeFault::NonFinite { element: 1, .. })
        ));
        let nan = f16::NAN.to_le_bytes();
        let bytes = [0u8, 0, nan[0], nan[1]];
        assert_eq!(
            scan(StoreDtype::F16, &bytes).non_finite.map(|x| x.0),
            Some(1)
        );
    }
}

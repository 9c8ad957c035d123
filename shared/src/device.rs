//! Device selection and a report of what libtorch can see.
use crate::{Error, Result};
use tch::Device;

/// Parses `cpu`, `cuda` or `cuda:N` and checks that libtorch can use it: a CUDA device on a
/// machine where libtorch sees no GPU (no driver, `CUDA_VISIBLE_DEVICES` empty) or an index past
/// the visible devices is an error here, before any work, instead of a panic inside the first
/// forward.
pub fn parse_device(s: &str) -> Result<Device> {
    let d = parse_device_name(s)?;
    if let Device::Cuda(n) = d {
        let count = if tch::Cuda::is_available() {
            tch::Cuda::device_count() as usize
        } else {
            0
        };
        if count == 0 {
            return Err(Error::Msg(format!(
                "--device {s}: libtorch sees no CUDA device on this machine (no NVIDIA driver \
                 or GPU visible; `extract doctor` shows what libtorch sees). Use --device cpu, \
                 or run on a machine with a GPU"
            )));
        }
        if n >= count {
            return Err(Error::Msg(format!(
                "--device {s}: only {count} CUDA device(s) visible (cuda:0..cuda:{}); choose \
                 one of them",
                count - 1
            )));
        }
    }
    Ok(d)
}

/// Parses `cpu`, `cuda` or `cuda:N` without checking that the device exists.
pub fn parse_device_name(s: &str) -> Result<Device> {
    match s {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => Ok(Device::Cuda(n)),
            _ => Err(Error::Msg(format!(
                "unknown device `{s}` (expected cpu, cuda or cuda:N)"
            ))),
        },
    }
}

/// A few lines describing libtorch and the visible accelerators.
pub fn doctor_report() -> String {
    let mut s = String::new();
    s.push_str(&format!("weld-cache {}\n", env!("CARGO_PKG_VERSION")));
    s.push_str(&format!("libtorch {}\n", env!("WELD_LIBTORCH_VERSION")));
    s.push_str(&format!("cuda available: {}\n", tch::Cuda::is_available()));
    s.push_str(&format!("cuda devices: {}\n", tch::Cuda::device_count()));
    s.push_str(&format!(
        "cudnn available: {}\n",
        tch::Cuda::cudnn_is_available()
    ));
    s.push_str(&format!("cpu threads: {}\n", tch::get_num_threads()));
    s
}

extern "C" {
    // at::autocast::set_autocast_dtype(c10::DeviceType, c10::ScalarType) of libtorch_cpu (both
    // enums are int8_t); tch exposes autocast on/off but not its dtype (CUDA default: f16).
    #[link_name = "_ZN2at8autocast18set_autocast_dtypeEN3c1010DeviceTypeENS1_10ScalarTypeE"]
    fn at_autocast_set_autocast_dtype(device_type: i8, dtype: i8);
}

/// Makes CUDA autocast (`tch::autocast`) compute in bf16 instead of its default f16, for this
/// process.
pub fn set_cuda_autocast_bf16() {
    const CUDA: i8 = 1; // c10::DeviceType::CUDA
    const BFLOAT16: i8 = 15; // c10::ScalarType::BFloat16
                             // SAFETY: a plain libtorch setter taking two int8 enums by value.
    unsafe { at_autocast_set_autocast_dtype(CUDA, BFLOAT16) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
        assert_eq!(parse_device_name("cuda:1").unwrap(), Device::Cuda(1));
        assert!(parse_device("tpu").is_err());
        // Past the visible devices (none on a CPU-only machine): an error naming the flag.
        let e = parse_device("cuda:99").unwrap_err().to_string();
        assert!(e.contains("--device cuda:99"), "{e}");
    }
}

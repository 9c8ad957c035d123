//! Device selection and a report of what libtorch can see.
use crate::{Error, Result};
use tch::Device;

/// Parses `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(s: &str) -> Result<Device> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
        assert_eq!(parse_device("cuda:1").unwrap(), Device::Cuda(1));
        assert!(parse_device("tpu").is_err());
    }
}

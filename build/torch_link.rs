//! Shared build script of every package that links libtorch (library tests and both binaries).
//!
//! torch-sys finds libtorch inside the project's Python venv (`LIBTORCH_USE_PYTORCH=1`), but two
//! things are left to us: the linker drops `libtorch_cuda.so` because no symbol of it is referenced
//! directly (`--as-needed`), which silently disables CUDA, and the binaries need an rpath so they
//! run without `LD_LIBRARY_PATH`. `cargo:rustc-link-arg` reaches only this package's own targets,
//! hence one copy of this script per package.
use std::path::PathBuf;
use std::process::Command;

fn torch_lib_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("LIBTORCH") {
        return Some(PathBuf::from(dir).join("lib"));
    }
    let python = match std::env::var("VIRTUAL_ENV") {
        Ok(venv) => PathBuf::from(venv).join("bin").join("python"),
        Err(_) => PathBuf::from("python3"),
    };
    let out = Command::new(python)
        .args([
            "-c",
            "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    dir.is_dir().then_some(dir)
}

/// `torch.__version__` of the libtorch we link, recorded for `doctor`.
fn torch_version() -> String {
    let python = match std::env::var("VIRTUAL_ENV") {
        Ok(venv) => PathBuf::from(venv).join("bin").join("python"),
        Err(_) => PathBuf::from("python3"),
    };
    Command::new(python)
        .args(["-c", "import torch; print(torch.__version__)"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".to_string())
}

/// Emits the libtorch link lines (`main` of the packages that use this file as their build script).
pub fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=VIRTUAL_ENV");
    println!("cargo:rustc-env=WELD_LIBTORCH_VERSION={}", torch_version());
    let Some(dir) = torch_lib_dir() else {
        println!("cargo:warning=libtorch not found (set VIRTUAL_ENV to the project venv, see scripts/setup.sh)");
        return;
    };
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    if dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}

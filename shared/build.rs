//! Build script of the library: the libtorch link lines every package needs
//! (`../build/torch_link.rs`), and with the `extract` feature the libjpeg shim of
//! `src/data/jpeg_shim.c` (the decoders' direct JPEG path), linked against the system libjpeg
//! (libjpeg-turbo, the one opencv uses). Without the feature nothing links libjpeg.
#[path = "../build/torch_link.rs"]
mod torch_link;

fn main() {
    torch_link::main();
    println!("cargo:rerun-if-changed=src/data/jpeg_shim.c");
    if std::env::var_os("CARGO_FEATURE_EXTRACT").is_some() {
        cc::Build::new()
            .file("src/data/jpeg_shim.c")
            .warnings(true)
            .extra_warnings(true)
            .opt_level(2)
            .compile("weld_jpeg_shim");
        println!("cargo:rustc-link-lib=jpeg");
    }
}

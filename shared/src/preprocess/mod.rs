//! Preprocessing in Rust matching the Hugging Face processors bit-for-bit where possible:
//! - [`image`]: `DINOv3ViTImageProcessorFast` (rescale -> bilinear antialiased resize -> normalise);
//! - [`video`]: `VJEPA2VideoProcessor` (short side resize with uint8 rounding, centre crop,
//!   normalise);
//! - [`fbank`]: `torchaudio.compliance.kaldi.fbank` as `ASTFeatureExtractor` calls it, plus AST's
//!   pad/truncate and normalisation.
//!
//! Everything runs on the CPU and returns CPU tensors or plain vectors; the caller moves the batch
//! to the model's device.
pub mod fbank;
pub mod image;
pub mod video;

pub use fbank::{ast_input_values, Fbank, FbankConfig};
pub use image::{dinov3_pixels, ImageNorm};
pub use video::vjepa2_pixels;

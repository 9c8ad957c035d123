//! Preprocessing in Rust matching the Hugging Face processors bit-for-bit where possible:
//! - [`image`]: `DINOv3ViTImageProcessorFast` (rescale -> bilinear antialiased resize -> normalise);
//! - [`video`]: `VJEPA2VideoProcessor` (short side resize with uint8 rounding, centre crop,
//!   normalise);
//! - [`fbank`]: `torchaudio.compliance.kaldi.fbank` as `ASTFeatureExtractor` calls it, plus AST's
//!   pad/truncate and normalisation;
//! - [`logmel`]: `torchaudio.transforms.MelSpectrogram` + log of a whole clip (`audio/spectrogram`).
//!
//! [`image`] and [`video`] run on the CPU; [`device`] runs the same steps from uint8 uploads on
//! the model's device (the default of `extract run`).
pub mod device;
pub mod fbank;
pub mod image;
pub mod logmel;
pub mod video;

pub use fbank::{ast_input_values, Fbank, FbankConfig};
pub use image::{dinov3_pixels, ImageNorm};
pub use logmel::{fit_clip, LogMel, LogMelConfig};
pub use video::vjepa2_pixels;

//! Heads trained on the cached features (see lib.rs for the data flow). One folder per head.
pub mod causal_film;

pub use causal_film::{
    CausalFilm, CausalFilmConfig, CausalFilmHead, ClipHead, HeadBatch, LossTerms,
};

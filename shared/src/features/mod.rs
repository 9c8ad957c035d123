//! Feeding heads from the feature store: the generic [`StoreFeeder`] every head shares (it opens
//! the arrays a head declares, checks them, builds the split tables and the fingerprint, and
//! serves mapped or resident batches), plus synthetic data for tests and trials: a synthetic
//! feature store in the extractor's schema ([`synth_store`]) and in-memory pooled features
//! ([`synth`]) that exercise the training loop without a store.
pub mod feeder;
pub mod scoring;
pub mod splits;
pub mod synth;
pub mod synth_store;

pub use feeder::{Input, Inputs, Needs, PooledStat, StoreFeeder};

//! SegOps analytics SDK: a small event pipeline with an identity layer in front of it.
//!
//! The core (everything but `wasm`) is plain Rust without I/O: config, events, the delivery
//! state machine and its outcome rules, tested natively with `cargo test`. The `wasm` module is
//! the only place that touches JavaScript: it converts JS values once on the way in and out and
//! drives the core with the platform's fetch, clock and timers.

pub mod auth;
pub mod config;
pub mod delivery;
pub mod error;
pub mod event;
pub mod json;
pub mod pipeline;
pub mod privacy;
pub mod referrer;
pub mod sign;
pub mod time;
pub mod uuid;

#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use error::Error;

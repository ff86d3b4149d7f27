//! SegOps analytics SDK: a small event pipeline with an identity layer in front of it.
//!
//! The core (everything but `wasm`) is plain Rust without I/O: config, events, the delivery
//! state machine and its outcome rules, tested natively with `cargo test`. The `wasm` module is
//! the only place that touches JavaScript: it converts JS values once on the way in and out and
//! drives the core with the platform's fetch, clock and timers.
//!
//! The crate needs only `core` and `alloc`. With the default `std` feature it links the standard
//! library as usual; the published package is built without it, with the trapping panic handler
//! and the allocator of `bare` (see Cargo.toml).

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod auth;
pub mod config;
pub mod delivery;
pub mod error;
pub mod event;
pub mod json;
pub mod num;
pub mod pipeline;
pub mod privacy;
pub mod referrer;
pub mod sign;
pub mod time;
pub mod uuid;

#[cfg(target_arch = "wasm32")]
pub mod wasm;

// Its size classes are compiled and tested everywhere; the runtime only without std on wasm32.
#[cfg_attr(
    not(all(target_arch = "wasm32", not(feature = "std"))),
    allow(dead_code)
)]
mod bare;

pub use error::Error;

/// What every module uses from `alloc`, which `std`'s prelude would otherwise bring.
#[allow(unused_imports)]
pub(crate) mod prelude {
    pub use alloc::borrow::ToOwned;
    pub use alloc::boxed::Box;
    pub use alloc::string::{String, ToString};
    pub use alloc::vec;
    pub use alloc::vec::Vec;
}

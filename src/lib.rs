//! SegOps analytics SDK: a small event pipeline with an identity layer in front of it.
//!
//! Three layers, one folder each:
//! - `js/`: the loader, what the app imports: a synchronous API that records each call (its
//!   arguments as JSON, its time, identity and page) and buffers it until the WebAssembly
//!   module is ready; and the platform half that runs next to the module (fetch, timers,
//!   storage, page signals).
//! - [`edge`] (wasm32 only): the only `#[wasm_bindgen]` code. Strings and numbers cross the
//!   boundary; no JS value is read from Rust.
//! - [`core`]: plain Rust without I/O (config, the client state machine, events, the delivery
//!   pipeline, sessions, privacy, referrals), tested natively with `cargo test`.
//!
//! The crate needs only `core` and `alloc`. With the default `std` feature it links the standard
//! library as usual; the published package is built without it, with the trapping panic handler
//! and the allocator of `bare` (see Cargo.toml).

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod core;

#[cfg(target_arch = "wasm32")]
pub mod edge;

// Its size classes are compiled and tested everywhere; the runtime only without std on wasm32.
#[cfg_attr(
    not(all(target_arch = "wasm32", not(feature = "std"))),
    allow(dead_code)
)]
mod bare;

pub use crate::core::error::Error;

/// What every module uses from `alloc`, which `std`'s prelude would otherwise bring.
#[allow(unused_imports)]
pub(crate) mod prelude {
    pub use alloc::borrow::ToOwned;
    pub use alloc::boxed::Box;
    pub use alloc::string::{String, ToString};
    pub use alloc::vec;
    pub use alloc::vec::Vec;
}

//! The core: plain Rust without I/O, tested natively with `cargo test`.
//!
//! [`client`] is the whole client as a state machine: it reads each call as one JSON text (the
//! loader's record of it), validates it, and turns it into queued events; [`pipeline`] decides
//! what to send and when; the edge (`crate::edge`) and the JS platform layer feed it answers,
//! time and page signals, and carry out the requests it asks for.

pub mod auth;
pub mod client;

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
pub mod visit;

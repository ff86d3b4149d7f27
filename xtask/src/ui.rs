//! Console output: every step line starts with the time elapsed since the command started.

use std::fmt::Display;
use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Instant> = OnceLock::new();

/// Starts the clock (idempotent; the first call wins).
pub fn start_clock() {
    START.get_or_init(Instant::now);
}

/// Seconds since [`start_clock`].
pub fn elapsed() -> f64 {
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// `[  12.3s]`
pub fn stamp() -> String {
    format!("[{:>6.1}s]", elapsed())
}

/// `[  12.3s] what: msg`
pub fn step(what: &str, msg: impl Display) {
    println!("{} {what}: {msg}", stamp());
}

/// A step that did not work; the message should say how to fix it.
pub fn problem(what: &str, msg: impl Display) {
    println!("{} {what}: PROBLEM: {msg}", stamp());
}

/// A section header, with a blank line before it so CI logs are easy to scan.
pub fn heading(title: impl Display) {
    println!("\n{} ==== {title} ====", stamp());
}

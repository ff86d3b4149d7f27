//! An X display for WebKitGTK's MiniBrowser, which has no usable headless mode: the one in
//! `DISPLAY` when there is one, else an `Xvfb` started for this run and stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ui;

/// A display to run a browser on.
pub struct Display {
    /// For the `DISPLAY` variable, like `:99`.
    pub name: String,
    /// The Xvfb this run started, if it did.
    child: Option<Child>,
}

impl Display {
    /// The display in `DISPLAY`, or a new Xvfb on the first free display from :99 up.
    pub fn get(xvfb: Option<&Path>) -> Result<Display, String> {
        if let Some(d) = std::env::var("DISPLAY").ok().filter(|d| !d.is_empty()) {
            return Ok(Display {
                name: d,
                child: None,
            });
        }
        let xvfb = xvfb.ok_or("no DISPLAY and no Xvfb (see setup: apt package xvfb)")?;
        for n in 99..140 {
            if Path::new(&format!("/tmp/.X{n}-lock")).exists() || socket(n).exists() {
                continue;
            }
            let name = format!(":{n}");
            let child = Command::new(xvfb)
                .args([&name, "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("could not start {}: {e}", xvfb.display()))?;
            let mut display = Display {
                name,
                child: Some(child),
            };
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                if socket(n).exists() {
                    ui::step("display", format!("Xvfb on {}", display.name));
                    return Ok(display);
                }
                if let Some(c) = &mut display.child {
                    if let Ok(Some(status)) = c.try_wait() {
                        display.child = None;
                        return Err(format!("Xvfb {} exited at once ({status})", display.name));
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            return Err(format!(
                "Xvfb {} did not open its socket in 10 s",
                display.name
            ));
        }
        Err("no free X display between :99 and :139".into())
    }
}

fn socket(n: u32) -> PathBuf {
    PathBuf::from(format!("/tmp/.X11-unix/X{n}"))
}

impl Drop for Display {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

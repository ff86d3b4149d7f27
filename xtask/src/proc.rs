//! Running tools: output streams to the console (so CI logs show failures) and is captured
//! for parsing at the same time.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;

use crate::ui;

/// The result of [`run_tee`].
pub struct Captured {
    /// `None` when the program could not be started at all.
    pub status: Option<ExitStatus>,
    /// stdout and stderr, interleaved in arrival order.
    pub output: String,
}

impl Captured {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// "exit status 1", "could not start", ...
    pub fn describe(&self) -> String {
        match self.status {
            None => "could not start".to_string(),
            Some(s) => match s.code() {
                Some(c) => format!("exit code {c}"),
                None => format!("{s}"),
            },
        }
    }
}

/// `program arg1 "arg 2"`, for logs.
pub fn display(cmd: &Command) -> String {
    let mut parts = vec![quote(cmd.get_program())];
    parts.extend(cmd.get_args().map(quote));
    parts.join(" ")
}

fn quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@+,".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Runs `cmd` with no stdin, streaming its stdout/stderr to ours while capturing both.
pub fn run_tee(cmd: &mut Command) -> Captured {
    println!("{} $ {}", ui::stamp(), display(cmd));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let msg = format!(
                "could not start {}: {e}",
                cmd.get_program().to_string_lossy()
            );
            ui::problem("run", &msg);
            return Captured {
                status: None,
                output: msg,
            };
        }
    };
    let buf = Arc::new(Mutex::new(Vec::new()));
    let mut pumps = Vec::new();
    if let Some(out) = child.stdout.take() {
        let buf = Arc::clone(&buf);
        pumps.push(thread::spawn(move || pump(out, io::stdout(), &buf)));
    }
    if let Some(err) = child.stderr.take() {
        let buf = Arc::clone(&buf);
        pumps.push(thread::spawn(move || pump(err, io::stderr(), &buf)));
    }
    let status = child.wait().ok();
    for p in pumps {
        let _ = p.join();
    }
    let bytes = buf.lock().map(|b| b.clone()).unwrap_or_default();
    Captured {
        status,
        output: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn pump(mut from: impl Read, mut to: impl Write, buf: &Mutex<Vec<u8>>) {
    let mut chunk = [0u8; 8192];
    loop {
        match from.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                let _ = to.write_all(&chunk[..n]);
                let _ = to.flush();
                if let Ok(mut b) = buf.lock() {
                    b.extend_from_slice(&chunk[..n]);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
}

/// Runs `cmd` quietly and returns its stdout and stderr concatenated when it exits 0.
pub fn output_of(cmd: &mut Command) -> Option<String> {
    let out = cmd.stdin(Stdio::null()).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    Some(s)
}

/// The first executable called `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

pub fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Makes `cmd`'s process get SIGKILL when xtask dies, even by SIGKILL (CI timeouts), so no
/// emulator outlives a run.
#[cfg(target_os = "linux")]
pub fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    extern "C" {
        fn prctl(option: i32, ...) -> i32;
    }
    const PR_SET_PDEATHSIG: i32 = 1;
    const SIGKILL: std::ffi::c_ulong = 9;
    // SAFETY: prctl is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
pub fn die_with_parent(_cmd: &mut Command) {}

/// Makes this process ignore SIGINT. The demo calls it once the emulator runs in the
/// foreground: Ctrl-C reaches the whole process group, the emulator shuts down gracefully, and
/// xtask exits when it has (instead of dying first and taking the emulator down with SIGKILL).
#[cfg(unix)]
pub fn ignore_sigint() {
    extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    const SIGINT: i32 = 2;
    const SIG_IGN: usize = 1;
    // SAFETY: installing SIG_IGN runs no code of ours in signal context.
    unsafe {
        signal(SIGINT, SIG_IGN);
    }
}

#[cfg(not(unix))]
pub fn ignore_sigint() {}

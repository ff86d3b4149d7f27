//! Building, starting and stopping the SegOps emulator (`emulator/`, crate segops-emulator).

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::json::{self, Json};
use crate::proc::{die_with_parent, display, run_tee};
use crate::{parse, ui, Ctx};

/// How long the emulator may take to print its `listening on` line and write its keys.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The `--dev-keys-out` file the emulator writes at start-up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DevKeys {
    pub api_url: String,
    pub owner_email: String,
    pub owner_password: String,
    pub tenant: String,
    pub secret_key: String,
    pub secret_key_id: String,
    pub public_key: String,
    pub public_key_id: String,
    pub signed_public_key: String,
    pub signed_public_key_id: String,
    pub signed_hmac_secret: String,
    pub allowed_origins: Vec<String>,
}

impl DevKeys {
    pub fn from_json(text: &str) -> Result<DevKeys, String> {
        let doc = json::parse(text)?;
        let field = |name: &str| -> Result<String, String> {
            doc.get(name)
                .and_then(Json::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("dev keys: missing string field {name:?}"))
        };
        Ok(DevKeys {
            api_url: field("api_url")?,
            owner_email: field("owner_email")?,
            owner_password: field("owner_password")?,
            tenant: field("tenant")?,
            secret_key: field("secret_key")?,
            secret_key_id: field("secret_key_id")?,
            public_key: field("public_key")?,
            public_key_id: field("public_key_id")?,
            signed_public_key: field("signed_public_key")?,
            signed_public_key_id: field("signed_public_key_id")?,
            signed_hmac_secret: field("signed_hmac_secret")?,
            allowed_origins: doc
                .get("allowed_origins")
                .and_then(Json::as_array)
                .unwrap_or_default()
                .iter()
                .filter_map(Json::as_str)
                .map(str::to_string)
                .collect(),
        })
    }
}

/// `cargo build -p segops-emulator`; returns the binary's path.
pub fn build(ctx: &Ctx) -> Result<PathBuf, String> {
    let out = run_tee(ctx.cargo().args(["build", "-p", "segops-emulator"]));
    if !out.success() {
        return Err(format!(
            "cargo build -p segops-emulator failed ({})",
            out.describe()
        ));
    }
    let bin = ctx.target_dir.join("debug").join("segops-emulator");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!("{} was not built", bin.display()))
    }
}

/// Where the emulator's output goes after its first line.
pub enum Output {
    /// Appended to this file (test runs keep logs quiet, and print the tail on failure).
    Log(PathBuf),
    /// Our own stdout/stderr (the demo).
    Console,
}

/// A running emulator. Dropping it kills the process, also on panic.
pub struct Emulator {
    name: String,
    child: Child,
    pub url: String,
    pub keys: DevKeys,
    log: Option<PathBuf>,
}

impl Emulator {
    /// Starts `bin args... --dev-keys-out keys_file`, waits for `listening on http://...` and
    /// for a valid keys file.
    pub fn start(
        name: &str,
        bin: &Path,
        cwd: &Path,
        args: &[OsString],
        keys_file: &Path,
        output: Output,
    ) -> Result<Emulator, String> {
        let _ = fs::remove_file(keys_file);
        if let Some(parent) = keys_file.parent() {
            let _ = fs::create_dir_all(parent);
        }
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .arg("--dev-keys-out")
            .arg(keys_file)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let log = match &output {
            Output::Log(path) => {
                // Both streams append, so neither overwrites the other.
                File::create(path)
                    .and_then(|_| OpenOptions::new().append(true).open(path))
                    .map(|f| cmd.stderr(f))
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                Some(path.clone())
            }
            Output::Console => {
                cmd.stderr(Stdio::inherit());
                None
            }
        };
        die_with_parent(&mut cmd);
        ui::step(name, format!("$ {}", display(&cmd)));
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("could not start {}: {e}", bin.display()))?;

        // Read stdout on a thread, so the first line can have a timeout and later output never
        // fills the pipe.
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let (first_tx, first_rx) = mpsc::channel::<String>();
        let log_for_thread = log.clone();
        thread::spawn(move || {
            let mut sink: Box<dyn Write + Send> = match log_for_thread {
                Some(p) => match OpenOptions::new().append(true).open(p) {
                    Ok(f) => Box::new(f),
                    Err(_) => Box::new(std::io::sink()),
                },
                None => Box::new(std::io::stdout()),
            };
            let mut first = Some(first_tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(sink, "{line}");
                if let Some(tx) = first.take() {
                    let _ = tx.send(line);
                }
            }
        });

        let mut emu = Emulator {
            name: name.to_string(),
            child,
            url: String::new(),
            keys: DevKeys::default(),
            log,
        };
        let first = match first_rx.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(emu.failure(&format!(
                    "no `listening on` line within {}s",
                    START_TIMEOUT.as_secs()
                )))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                thread::sleep(Duration::from_millis(100));
                return Err(emu.failure("exited without printing `listening on http://HOST:PORT`"));
            }
        };
        emu.url = parse::listening_url(&first).ok_or_else(|| {
            emu.failure(&format!(
                "first line was {first:?}, expected `listening on http://HOST:PORT`"
            ))
        })?;

        let deadline = Instant::now() + START_TIMEOUT;
        let mut last_error = String::from("not written");
        loop {
            if let Ok(text) = fs::read_to_string(keys_file) {
                match DevKeys::from_json(&text) {
                    Ok(keys) => {
                        emu.keys = keys;
                        break;
                    }
                    Err(e) => last_error = e,
                }
            }
            if let Ok(Some(_)) = emu.child.try_wait() {
                return Err(emu.failure("exited after start-up"));
            }
            if Instant::now() > deadline {
                return Err(emu.failure(&format!(
                    "dev keys file {}: {last_error}",
                    keys_file.display()
                )));
            }
            thread::sleep(Duration::from_millis(50));
        }
        ui::step(name, format!("listening on {}", emu.url));
        Ok(emu)
    }

    /// Builds an error message with the exit status and the end of the log.
    fn failure(&mut self, what: &str) -> String {
        let status = match self.child.try_wait() {
            Ok(Some(s)) => format!(" ({s})"),
            _ => String::new(),
        };
        let mut msg = format!("emulator {}: {what}{status}", self.name);
        if let Some(log) = &self.log {
            let text = fs::read_to_string(log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(20)..];
            if !tail.is_empty() {
                msg.push_str(&format!("\n    last lines of {}:", log.display()));
                for l in tail {
                    msg.push_str("\n    | ");
                    msg.push_str(l);
                }
            }
        }
        msg
    }

    /// `Some(status)` once the process has exited (something killed it, or it crashed).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits for the process to exit (the demo's foreground mode).
    pub fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait()
    }

    pub fn log(&self) -> Option<&Path> {
        self.log.as_deref()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            ui::step(&self.name, "stopped");
        }
    }
}

/// A TCP port that was free a moment ago (bind port 0, read it, close).
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_dev_keys_file() {
        let text = r#"{"api_url": "http://127.0.0.1:40001", "owner_email": "owner@acme.test",
            "owner_password": "segops-dev", "tenant": "acme", "secret_key": "sk_live_a",
            "secret_key_id": "key_1", "public_key": "pk_live_b", "public_key_id": "key_2",
            "signed_public_key": "pk_live_c", "signed_public_key_id": "key_3",
            "signed_hmac_secret": "hs_d", "allowed_origins": ["http://127.0.0.1:5000"]}"#;
        let keys = DevKeys::from_json(text).unwrap();
        assert_eq!(keys.public_key, "pk_live_b");
        assert_eq!(keys.signed_public_key_id, "key_3");
        assert_eq!(keys.allowed_origins, vec!["http://127.0.0.1:5000"]);
        let err = DevKeys::from_json(r#"{"api_url": "x"}"#).unwrap_err();
        assert!(err.contains("owner_email"), "{err}");
    }

    #[test]
    fn free_port_is_nonzero() {
        assert_ne!(free_port().unwrap(), 0);
    }
}

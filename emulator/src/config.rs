//! Command-line flags and their environment variables.

use std::path::PathBuf;

pub const HELP: &str = "\
segops-emulator: a local SegOps API server (the wire contract in docs/protocol.md)

USAGE:
    segops-emulator [FLAGS]

FLAGS (each also read from the environment variable shown; a flag wins over its variable):
    --addr HOST:PORT         Address to listen on; port 0 picks a free port.
                             [env SEGOPS_EMULATOR_ADDR] [default 127.0.0.1:8787]
    --db PATH                SQLite database file (its folder is created), or :memory:.
                             [env SEGOPS_EMULATOR_DB] [default .segops/emulator.db]
    --session-ttl SECS       Lifetime of session tokens, in seconds.
                             [env SEGOPS_EMULATOR_SESSION_TTL] [default 900]
    --static DIR             Serve the files of DIR at / (index.html for a folder); API
                             routes win. [env SEGOPS_EMULATOR_STATIC]
    --owner-email EMAIL      The owner of tenant `acme`, created at first start.
                             [env SEGOPS_EMULATOR_OWNER_EMAIL] [default owner@acme.test]
    --owner-password PASS    The owner's password; an existing owner's password is set to it.
                             [env SEGOPS_EMULATOR_OWNER_PASSWORD] [default segops-dev]
    --dev-keys-out PATH      After start, create a fresh secret key, public key and signed
                             public key for tenant `acme`, write them as JSON to PATH and print
                             them. [env SEGOPS_EMULATOR_DEV_KEYS_OUT]
    --dev-origin ORIGIN      An origin the dev public keys allow; repeatable. Default: the
                             server's own http://127.0.0.1:PORT and http://localhost:PORT.
                             [env SEGOPS_EMULATOR_DEV_ORIGINS, comma-separated]
    --log                    Print one line per request to stderr. [env SEGOPS_EMULATOR_LOG=1]
    -h, --help               Print this help.

ENVIRONMENT:
    SECRET_KEY                   Signs owner tokens (generated at start when unset).
    SEGOPS_SESSION_JWT_SECRET    Signs session tokens (generated at start when unset).
    ENABLE_JWT_INGEST            Session tokens on ingestion; on by default, `0`, `false` or
                                 `off` turns it off.

The first line on stdout is `listening on http://HOST:PORT`. SIGINT or SIGTERM stops the
server gracefully.
";

#[derive(Debug, Clone)]
pub struct Config {
    pub addr: String,
    pub db: String,
    pub session_ttl: u64,
    pub static_dir: Option<PathBuf>,
    pub owner_email: String,
    pub owner_password: String,
    pub dev_keys_out: Option<PathBuf>,
    pub dev_origins: Vec<String>,
    pub log: bool,
    pub owner_secret: Option<String>,
    pub session_secret: Option<String>,
    pub jwt_ingest: bool,
}

#[derive(Debug)]
pub enum ConfigError {
    Help,
    Bad(String),
}

/// `0`, `false`, `off` and `no` are off; anything else (empty included) is on.
fn is_off(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "0" | "false" | "off" | "no"
    )
}

impl Config {
    /// Reads flags from `args` (without the program name) and variables through `env`.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let env_nonempty = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let mut c = Config {
            addr: env_nonempty("SEGOPS_EMULATOR_ADDR").unwrap_or_else(|| "127.0.0.1:8787".into()),
            db: env_nonempty("SEGOPS_EMULATOR_DB").unwrap_or_else(|| ".segops/emulator.db".into()),
            session_ttl: 900,
            static_dir: env_nonempty("SEGOPS_EMULATOR_STATIC").map(PathBuf::from),
            owner_email: env_nonempty("SEGOPS_EMULATOR_OWNER_EMAIL")
                .unwrap_or_else(|| "owner@acme.test".into()),
            owner_password: env_nonempty("SEGOPS_EMULATOR_OWNER_PASSWORD")
                .unwrap_or_else(|| "segops-dev".into()),
            dev_keys_out: env_nonempty("SEGOPS_EMULATOR_DEV_KEYS_OUT").map(PathBuf::from),
            dev_origins: env_nonempty("SEGOPS_EMULATOR_DEV_ORIGINS")
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            log: env_nonempty("SEGOPS_EMULATOR_LOG").is_some_and(|v| !is_off(&v)),
            owner_secret: env_nonempty("SECRET_KEY"),
            session_secret: env_nonempty("SEGOPS_SESSION_JWT_SECRET"),
            jwt_ingest: env("ENABLE_JWT_INGEST").is_none_or(|v| !is_off(&v)),
        };
        let mut ttl = env_nonempty("SEGOPS_EMULATOR_SESSION_TTL");
        let mut flag_origins: Vec<String> = Vec::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let mut value = |name: &str| -> Result<String, ConfigError> {
                match inline.clone().or_else(|| args.next()) {
                    Some(v) => Ok(v),
                    None => Err(ConfigError::Bad(format!("{name} needs a value"))),
                }
            };
            match name.as_str() {
                "-h" | "--help" => return Err(ConfigError::Help),
                "--addr" => c.addr = value(&name)?,
                "--db" => c.db = value(&name)?,
                "--session-ttl" => ttl = Some(value(&name)?),
                "--static" => c.static_dir = Some(PathBuf::from(value(&name)?)),
                "--owner-email" => c.owner_email = value(&name)?,
                "--owner-password" => c.owner_password = value(&name)?,
                "--dev-keys-out" => c.dev_keys_out = Some(PathBuf::from(value(&name)?)),
                "--dev-origin" => flag_origins.push(value(&name)?),
                "--log" => c.log = true,
                other => {
                    return Err(ConfigError::Bad(format!(
                        "unknown argument `{other}` (see --help)"
                    )))
                }
            }
        }
        if !flag_origins.is_empty() {
            c.dev_origins = flag_origins;
        }
        if let Some(t) = ttl {
            c.session_ttl = match t.trim().parse::<u64>() {
                Ok(n) if (1..=31_536_000).contains(&n) => n,
                _ => {
                    return Err(ConfigError::Bad(format!(
                        "--session-ttl: expected whole seconds from 1 to 31536000, got `{t}`"
                    )))
                }
            };
        }
        for o in &c.dev_origins {
            if crate::origin::parse_pattern(o).is_none() {
                return Err(ConfigError::Bad(format!(
                    "--dev-origin: `{o}` is not an origin like https://shop.example.com"
                )));
            }
        }
        if c.owner_email.trim().is_empty() || c.owner_password.is_empty() {
            return Err(ConfigError::Bad(
                "--owner-email and --owner-password may not be empty".into(),
            ));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::parse(args.iter().map(|s| s.to_string()), move |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn defaults_flags_and_env() {
        let c = parse(&[], &[]).unwrap();
        assert_eq!(c.addr, "127.0.0.1:8787");
        assert_eq!(c.db, ".segops/emulator.db");
        assert_eq!(c.session_ttl, 900);
        assert!(c.jwt_ingest);
        let c = parse(
            &[
                "--addr=127.0.0.1:0",
                "--db",
                ":memory:",
                "--session-ttl",
                "5",
            ],
            &[
                ("ENABLE_JWT_INGEST", "off"),
                ("SEGOPS_EMULATOR_SESSION_TTL", "7"),
            ],
        )
        .unwrap();
        assert_eq!(c.addr, "127.0.0.1:0");
        assert_eq!(c.db, ":memory:");
        assert_eq!(c.session_ttl, 5);
        assert!(!c.jwt_ingest);
        for off in ["0", "false", "OFF", " no "] {
            assert!(
                !parse(&[], &[("ENABLE_JWT_INGEST", off)])
                    .unwrap()
                    .jwt_ingest
            );
        }
        assert!(parse(&[], &[("ENABLE_JWT_INGEST", "")]).unwrap().jwt_ingest);
        let c = parse(
            &[],
            &[
                ("ENABLE_JWT_INGEST", "1"),
                (
                    "SEGOPS_EMULATOR_DEV_ORIGINS",
                    "https://a.com, http://b.com:3000",
                ),
            ],
        )
        .unwrap();
        assert!(c.jwt_ingest);
        assert_eq!(c.dev_origins, vec!["https://a.com", "http://b.com:3000"]);
        let c = parse(
            &["--dev-origin", "https://x.com"],
            &[("SEGOPS_EMULATOR_DEV_ORIGINS", "https://a.com")],
        )
        .unwrap();
        assert_eq!(c.dev_origins, vec!["https://x.com"]);
        assert!(matches!(parse(&["--help"], &[]), Err(ConfigError::Help)));
        assert!(matches!(parse(&["--nope"], &[]), Err(ConfigError::Bad(_))));
        assert!(matches!(parse(&["--db"], &[]), Err(ConfigError::Bad(_))));
        assert!(matches!(
            parse(&["--session-ttl", "x"], &[]),
            Err(ConfigError::Bad(_))
        ));
        assert!(matches!(
            parse(&["--dev-origin", "nope"], &[]),
            Err(ConfigError::Bad(_))
        ));
    }
}

//! The SegOps SDK's developer commands: `cargo xtask setup | test | demo | pkg | bench | soak`.
//! See the README for what each does. Standard library only, so it builds in seconds.

mod bench;
mod demo;
mod display;
mod emulator;
mod json;
mod parse;
mod pkg;
mod proc;
mod setup;
mod soak;
mod tiers;
mod ui;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "\
usage: cargo xtask <command>

  setup                  install or check every tool the commands need (idempotent)
  test [TIER...]         run the test tiers (default: all) and print `N passed, M failed`;
                         tiers: lint native wasm-node wasm-chromium wasm-firefox
                         wasm-webkit node-e2e browser-e2e size consumers soak
  demo [--addr H:P]      build the web package and serve the demo page and the emulator
                         (default address 127.0.0.1:8787); Ctrl-C stops it
  bench                  compare the SDK with five analytics SDKs in headless Chromium and
                         write docs/benchmarks.md
  soak [--short]         the fault-injection soak: 10,000 events per runtime (Node, Chromium,
                         Firefox) against emulators injecting faults, plus the key-revoked,
                         outage and clock-skew scenarios; prints the tables and writes them
                         to docs/reliability.md (--short: the 1,000-event test tier, no docs)
  pkg                    build the npm package @segops/sdk into pkg/ (web and Node builds,
                         exports map, types, minified browser glue)
";

/// Where things are.
pub struct Ctx {
    pub root: PathBuf,
    /// `<root>/target`, or `$CARGO_TARGET_DIR` when set: every build of every tier shares it.
    pub target_dir: PathBuf,
}

impl Ctx {
    fn new() -> Ctx {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives in a subfolder of the repository")
            .to_path_buf();
        let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(d) if !d.is_empty() => std::env::current_dir()
                .map(|cwd| cwd.join(&d))
                .unwrap_or_else(|_| PathBuf::from(d)),
            _ => root.join("target"),
        };
        Ctx { root, target_dir }
    }

    /// `cargo` run from the repository root with the shared target folder.
    pub fn cargo(&self) -> Command {
        let mut cmd = Command::new("cargo");
        cmd.current_dir(&self.root)
            .env("CARGO_TARGET_DIR", &self.target_dir);
        if std::io::stdout().is_terminal() {
            cmd.env("CARGO_TERM_COLOR", "always");
        }
        cmd
    }
}

fn main() -> ExitCode {
    ui::start_clock();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ctx = Ctx::new();
    let ok = match args.first().map(String::as_str) {
        Some("setup") if args.len() == 1 => {
            setup::setup(&ctx, setup::Needs::All).problems.is_empty()
        }
        Some("test") => {
            let selected = args[1..].to_vec();
            if let Some(bad) = selected
                .iter()
                .find(|t| !tiers::TIERS.contains(&t.as_str()))
            {
                eprintln!("unknown tier {bad:?}; tiers: {}", tiers::TIERS.join(" "));
                return ExitCode::from(2);
            }
            tiers::run(&ctx, &selected)
        }
        Some("demo") => {
            let addr = match &args[1..] {
                [] => demo::DEFAULT_ADDR.to_string(),
                [flag, addr] if flag == "--addr" => addr.clone(),
                [flag] if flag.starts_with("--addr=") => flag["--addr=".len()..].to_string(),
                _ => {
                    eprint!("{USAGE}");
                    return ExitCode::from(2);
                }
            };
            return ExitCode::from(demo::run(&ctx, &addr).clamp(0, 255) as u8);
        }
        Some("pkg") if args.len() == 1 => pkg_command(&ctx),
        Some("bench") if args.len() == 1 => bench::run(&ctx),
        Some("soak") => soak::command(&ctx, &args[1..]),
        Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            true
        }
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn pkg_command(ctx: &Ctx) -> bool {
    let tools = setup::setup(ctx, setup::Needs::Build);
    if tools.wasm_pack.is_none() || !tools.has_npm("esbuild") {
        ui::problem(
            "pkg",
            "no wasm-pack or esbuild; fix the setup problems above",
        );
        return false;
    }
    match pkg::Builds::default().package(ctx) {
        Ok(dir) => {
            ui::step("pkg", format!("ready in {}", dir.display()));
            true
        }
        Err(e) => {
            ui::problem("pkg", e);
            false
        }
    }
}

//! `cargo xtask soak`: the fault-injection soak, and its short variant (the `soak` tier of
//! `cargo xtask test`).
//!
//! xtask builds the emulator and the wasm-pack web and Node builds, then runs
//! `tests/soak/soak.mjs`, which starts its own emulators (it stops and restarts one for the
//! outage scenario), drives the Node build in a child process and the three browsers
//! (Chromium, Firefox, and WebKitGTK's MiniBrowser on the X display this run passes) through
//! their WebDriver drivers, prints the tables and writes `results.json` and `tables.md` to the
//! work folder (`<target>/xtask/soak-<variant>/`). The full run also puts the tables in
//! `docs/reliability.md`, between the markers below.
//!
//! `SOAK_RUNTIMES`, `SOAK_SCENARIOS`, `SOAK_EVENTS` and `SOAK_SEED` pass through to the script
//! (see its header) for partial runs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::display::Display;
use crate::json::{self, Json};
use crate::proc::run_tee;
use crate::setup::{self, Needs, Tools};
use crate::{emulator, pkg, ui, Ctx};

/// The soak script, relative to the repository root.
pub const SCRIPT: &str = "tests/soak/soak.mjs";
/// The report whose tables the full run rewrites, relative to the repository root.
pub const REPORT: &str = "docs/reliability.md";
const BEGIN: &str = "<!-- soak tables: written by `cargo xtask soak` -->";
const END: &str = "<!-- end of soak tables -->";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// 1,000 events per runtime: the `soak` test tier.
    Short,
    /// 10,000 events per runtime: `cargo xtask soak`.
    Full,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Short => "short",
            Variant::Full => "full",
        }
    }
}

/// What a soak run reported.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub passed: u64,
    pub failed: u64,
    /// Checks that fail because of a known SDK bug (reported, not failures).
    pub known: u64,
    /// The script exited 0.
    pub success: bool,
    pub tables: String,
    pub dir: PathBuf,
}

/// What the soak needs that setup did not find, if anything.
pub fn missing_tools(tools: &Tools) -> Option<String> {
    let mut missing = Vec::new();
    for (name, found) in [
        ("node", tools.node.is_some()),
        ("wasm-pack", tools.wasm_pack.is_some()),
        ("chromium", tools.chromium.is_some()),
        ("chromedriver", tools.chromedriver.is_some()),
        ("firefox-esr", tools.firefox.is_some()),
        ("geckodriver", tools.geckodriver.is_some()),
        ("webkit2gtk-driver", tools.webkit_driver.is_some()),
        ("MiniBrowser", tools.minibrowser.is_some()),
    ] {
        if !found {
            missing.push(name);
        }
    }
    (!missing.is_empty()).then(|| format!("no {} (see setup)", missing.join(", ")))
}

/// Builds what the soak drives and runs it. `Err` when it could not run or crashed; a run that
/// finished with failed checks is an `Ok` with `failed > 0`.
pub fn run(
    ctx: &Ctx,
    tools: &Tools,
    builds: &mut pkg::Builds,
    variant: Variant,
    display: Option<&str>,
) -> Result<Outcome, String> {
    if let Some(m) = missing_tools(tools) {
        return Err(m);
    }
    let emulator_bin = emulator::build(ctx)?;
    let package = builds.package(ctx)?;
    let (web, node) = (package.join("web"), package.join("node"));
    let dir = ctx
        .target_dir
        .join("xtask")
        .join(format!("soak-{}", variant.name()));
    // Last run's logs and databases go; the folder is the run's.
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    ui::heading(format!("soak ({} variant)", variant.name()));
    let mut cmd = Command::new("node");
    cmd.arg(SCRIPT)
        .current_dir(&ctx.root)
        .env("SOAK_VARIANT", variant.name())
        .env("SOAK_DIR", &dir)
        .env("SEGOPS_EMULATOR_BIN", &emulator_bin)
        .env("SEGOPS_PKG_WEB", &web)
        .env("SEGOPS_PKG_NODE", &node)
        .envs(tools.browser_env(display));
    let out = run_tee(&mut cmd);
    let results = fs::read_to_string(dir.join("results.json")).map_err(|_| {
        format!(
            "{SCRIPT} wrote no results ({}); its logs are in {}",
            out.describe(),
            dir.display()
        )
    })?;
    let tables = fs::read_to_string(dir.join("tables.md")).unwrap_or_default();
    let (passed, failed, known) = counts(&results)?;
    Ok(Outcome {
        passed,
        failed,
        known,
        success: out.success(),
        tables,
        dir,
    })
}

/// `passed`, `failed` and `known` of the script's results.json.
pub fn counts(results: &str) -> Result<(u64, u64, u64), String> {
    let doc = json::parse(results)?;
    let num = |k: &str| match doc.get(k) {
        Some(Json::Num(n)) if *n >= 0.0 => Ok(*n as u64),
        _ => Err(format!("soak results.json: no count {k:?}")),
    };
    Ok((num("passed")?, num("failed")?, num("known")?))
}

/// `doc` with the text between the soak markers replaced by `tables`.
pub fn with_tables(doc: &str, tables: &str) -> Result<String, String> {
    let start = doc
        .find(BEGIN)
        .ok_or_else(|| format!("{REPORT} has no line {BEGIN:?}"))?;
    let body = start + BEGIN.len();
    let end = doc[body..]
        .find(END)
        .map(|i| body + i)
        .ok_or_else(|| format!("{REPORT} has no line {END:?} after the first marker"))?;
    Ok(format!(
        "{}\n\n{}\n\n{}",
        &doc[..body],
        tables.trim(),
        &doc[end..]
    ))
}

fn head_commit(root: &Path) -> String {
    crate::proc::output_of(
        Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .current_dir(root),
    )
    .map(|s| s.trim().to_string())
    .unwrap_or_else(|| "unknown".into())
}

/// `cargo xtask soak [--short]`.
pub fn command(ctx: &Ctx, args: &[String]) -> bool {
    let variant = match args {
        [] => Variant::Full,
        [flag] if flag == "--short" => Variant::Short,
        _ => {
            eprintln!("usage: cargo xtask soak [--short]");
            return false;
        }
    };
    let tools = setup::setup(ctx, Needs::All);
    let mut builds = pkg::Builds::default();
    // WebKit's MiniBrowser runs on an X display: this command's own Xvfb when there is none.
    let display = match Display::get(tools.xvfb.as_deref()) {
        Ok(d) => d,
        Err(e) => {
            ui::problem("soak", e);
            return false;
        }
    };
    let outcome = match run(ctx, &tools, &mut builds, variant, Some(&display.name)) {
        Ok(o) => o,
        Err(e) => {
            ui::problem("soak", e);
            return false;
        }
    };
    ui::heading("soak results");
    println!("{}", outcome.tables);
    let partial = ["SOAK_RUNTIMES", "SOAK_SCENARIOS", "SOAK_EVENTS"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
    if variant == Variant::Full && !partial {
        let path = ctx.root.join(REPORT);
        let stamp = format!(
            "Last full run: `cargo xtask soak` at commit `{}`: {} checks passed, {} failed, {} show a known SDK bug.",
            head_commit(&ctx.root),
            outcome.passed,
            outcome.failed,
            outcome.known
        );
        let written = fs::read_to_string(&path)
            .map_err(|e| format!("{}: {e}", path.display()))
            .and_then(|doc| with_tables(&doc, &format!("{stamp}\n\n{}", outcome.tables)))
            .and_then(|doc| fs::write(&path, doc).map_err(|e| format!("{}: {e}", path.display())));
        match written {
            Ok(()) => ui::step("soak", format!("wrote the tables to {REPORT}")),
            Err(e) => ui::problem("soak", e),
        }
    }
    ui::step(
        "soak",
        format!(
            "{} checks passed, {} failed, {} known SDK bug; logs in {}",
            outcome.passed,
            outcome.failed,
            outcome.known,
            outcome.dir.display()
        ),
    );
    outcome.success && outcome.failed == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_the_text_between_the_markers() {
        let doc = format!("# Reliability\n\nintro\n\n{BEGIN}\n\nold table\n\n{END}\n\n## How\n");
        let out = with_tables(&doc, "| new |\n").unwrap();
        assert_eq!(
            out,
            format!("# Reliability\n\nintro\n\n{BEGIN}\n\n| new |\n\n{END}\n\n## How\n")
        );
        // Idempotent: a second run finds its own markers.
        assert_eq!(with_tables(&out, "| new |").unwrap(), out);
        assert!(with_tables("no markers", "x").is_err());
        assert!(with_tables(&format!("{BEGIN} but no end"), "x").is_err());
    }

    #[test]
    fn reads_the_counts() {
        let text = r#"{"variant": "short", "passed": 110, "failed": 1, "known": 4, "results": []}"#;
        assert_eq!(counts(text).unwrap(), (110, 1, 4));
        assert!(counts(r#"{"passed": 1}"#).is_err());
    }

    #[test]
    fn names_what_is_missing() {
        let tools = Tools::default();
        let m = missing_tools(&tools).unwrap();
        assert!(m.contains("geckodriver") && m.contains("node"), "{m}");
    }
}

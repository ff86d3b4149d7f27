//! `cargo xtask setup`: installs the tools the other commands need, idempotently. Each step
//! checks first and skips what is present; whatever it cannot do is collected, with the exact
//! command that fixes it, so the caller can carry on with what is available.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::proc::{is_executable, output_of, run_tee, which};
use crate::{json, parse, ui, Ctx};

/// Pinned tool versions (see the README's "Tools" section).
pub const GECKODRIVER_VERSION: &str = "0.37.1";
pub const WASM_PACK_VERSION: &str = "0.15.1";
/// npm packages installed into the per-user tools folder (not into the repository).
pub const NPM_TOOLS: &[(&str, &str)] = &[
    ("binaryen", "132.0.0"),
    ("esbuild", "0.28.2"),
    ("playwright-core", "1.65.1"),
    ("typescript", "7.0.2"),
    ("vite", "8.3.8"),
    // The consumer tests' apps and package checks (tests/consumers/): frameworks and bundlers
    // an app of ours may use, and the ecosystem's linters of a package. Each fixture installs
    // the ones it needs from npm's cache, which this install fills.
    ("next", "16.4.6"),
    ("react", "19.3.1"),
    ("react-dom", "19.3.1"),
    // A TypeScript app needs these; Next.js checks it with `tsc` (TypeScript 7 has no JS API).
    ("@types/react", "19.3.3"),
    ("@types/react-dom", "19.3.0"),
    ("@types/node", "20.19.43"),
    ("webpack", "5.112.2"),
    ("webpack-cli", "7.3.1"),
    ("rollup", "4.68.8"),
    ("@rollup/plugin-node-resolve", "16.0.3"),
    // vitest 5 and jsdom 30 need Node 22; these are the newest for Node 20.
    ("vitest", "4.1.12"),
    ("jsdom", "29.1.1"),
    ("publint", "0.3.25"),
    ("@arethetypeswrong/cli", "0.18.5"),
];
/// Of [`NPM_TOOLS`], those `cargo xtask pkg` needs: wasm-opt, and esbuild to minify the glue.
const NPM_BUILD_TOOLS: &[&str] = &["binaryen", "esbuild"];
/// Debian packages and the program each one provides.
const APT_PACKAGES: &[(&str, &str)] = &[
    ("chromium", "chromium"),
    ("chromium-driver", "chromedriver"),
    ("firefox-esr", "firefox-esr"),
    // WebKitGTK's WebDriver and its MiniBrowser: WebKit, Safari's engine, as a third browser.
    ("webkit2gtk-driver", "WebKitWebDriver"),
    // MiniBrowser has no usable headless mode: the tests give it a virtual display.
    ("xvfb", "Xvfb"),
];
const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// The wasm-bindgen-cli 0.2.130 lock file pins webpki-roots 1.0.11, which the registry lacks.
const WEBPKI_ROOTS_PIN: &str = "1.0.10";

/// What a command needs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Needs {
    /// Building the npm package: Rust target, wasm-bindgen, wasm-pack, wasm-opt, esbuild.
    Build,
    /// Everything: also browsers, drivers, Xvfb and the consumer tests' npm tools.
    All,
}

/// What setup found; `None` means missing (and a problem says why).
#[derive(Debug, Default)]
pub struct Tools {
    pub chromedriver: Option<PathBuf>,
    pub chromium: Option<PathBuf>,
    pub firefox: Option<PathBuf>,
    pub geckodriver: Option<PathBuf>,
    pub webkit_driver: Option<PathBuf>,
    /// WebKitGTK's MiniBrowser (not on PATH: it lives in WebKitGTK's library folder).
    pub minibrowser: Option<PathBuf>,
    pub xvfb: Option<PathBuf>,
    pub wasm_bindgen: Option<PathBuf>,
    pub wasm_pack: Option<PathBuf>,
    pub wasm_target: bool,
    pub node: Option<PathBuf>,
    /// `<tools dir>/node_modules`, when npm's binaryen is installed there.
    pub node_modules: Option<PathBuf>,
    /// playwright-core at the pinned version is in `<tools dir>/node_modules`.
    pub playwright_core: bool,
    /// The pinned npm tools present in `<tools dir>/node_modules` at their pinned versions.
    pub npm_present: Vec<&'static str>,
    /// Things setup could not do, each with how to fix it.
    pub problems: Vec<String>,
}

impl Tools {
    /// The browsers and drivers for the Node scripts that drive them (the e2e tests, the
    /// soak), as `SEGOPS_*` variables, with the X display WebKit's MiniBrowser runs on.
    pub fn browser_env(&self, display: Option<&str>) -> Vec<(&'static str, std::ffi::OsString)> {
        let mut env = Vec::new();
        for (var, path) in [
            ("SEGOPS_CHROMIUM", &self.chromium),
            ("SEGOPS_CHROMEDRIVER", &self.chromedriver),
            ("SEGOPS_FIREFOX", &self.firefox),
            ("SEGOPS_GECKODRIVER", &self.geckodriver),
            ("SEGOPS_WEBKIT_DRIVER", &self.webkit_driver),
            ("SEGOPS_MINIBROWSER", &self.minibrowser),
        ] {
            if let Some(p) = path {
                env.push((var, p.clone().into_os_string()));
            }
        }
        if let Some(d) = display {
            env.push(("DISPLAY", d.into()));
        }
        env
    }

    /// The pinned npm tool `name` is installed (at its pinned version).
    pub fn has_npm(&self, name: &str) -> bool {
        self.npm_present.contains(&name)
    }

    fn problem(&mut self, what: &str, msg: String) {
        ui::problem(what, &msg);
        self.problems.push(format!("{what}: {msg}"));
    }
}

/// Runs every step `needs` calls for and returns what is available. Also puts cargo's bin
/// folder and npm's binaryen on PATH (binaryen first, so wasm-pack never picks up another
/// wasm-opt) for the rest of this process and its children.
pub fn setup(ctx: &Ctx, needs: Needs) -> Tools {
    ui::heading(format!(
        "setup ({})",
        if needs == Needs::All {
            "all tools"
        } else {
            "build tools"
        }
    ));
    let started = ui::elapsed();
    let mut tools = Tools::default();
    prepend_path(&cargo_home().join("bin"));

    if needs == Needs::All {
        apt_packages(&mut tools);
    }
    warn_about_debian_binaryen();
    rust_target(&mut tools);
    wasm_bindgen_cli(ctx, &mut tools);
    tools.wasm_pack = cargo_tool(&mut tools, "wasm-pack", "wasm-pack", WASM_PACK_VERSION);
    if needs == Needs::All {
        tools.geckodriver = cargo_tool(
            &mut tools,
            "geckodriver",
            "geckodriver",
            GECKODRIVER_VERSION,
        );
    }
    tools.node = which("node");
    if tools.node.is_none() {
        tools.problem(
            "node",
            "not found; install Node.js 20 or newer (Debian: apt-get install -y nodejs npm)"
                .to_string(),
        );
    }
    npm_tools(ctx, &mut tools, needs);

    let took = ui::elapsed() - started;
    if tools.problems.is_empty() {
        ui::step("setup", format!("all tools present ({took:.1}s)"));
    } else {
        ui::step(
            "setup",
            format!(
                "finished in {took:.1}s with {} problem(s):",
                tools.problems.len()
            ),
        );
        for p in &tools.problems {
            println!("    - {p}");
        }
    }
    tools
}

pub fn cargo_home() -> PathBuf {
    if let Some(h) = std::env::var_os("CARGO_HOME") {
        return PathBuf::from(h);
    }
    home().join(".cargo")
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The per-user folder for npm tools: `$XDG_CACHE_HOME/segops-tools` or
/// `~/.cache/segops-tools`. Outside the repository so clean clones share it.
pub fn tools_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SEGOPS_TOOLS_DIR") {
        return PathBuf::from(d);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".cache"));
    cache.join("segops-tools")
}

/// The program `name` of an npm tool in the tools folder (`node_modules/.bin/<name>`).
pub fn npm_bin(name: &str) -> PathBuf {
    tools_dir().join("node_modules").join(".bin").join(name)
}

/// Puts `dir` first on this process's PATH (children inherit it), unless it already is.
pub fn prepend_path(dir: &Path) {
    let old = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&old).collect();
    if dirs.first().map(PathBuf::as_path) == Some(dir) {
        return;
    }
    dirs.retain(|d| d != dir);
    dirs.insert(0, dir.to_path_buf());
    if let Ok(new) = std::env::join_paths(dirs) {
        std::env::set_var("PATH", new);
    }
}

fn is_root() -> bool {
    output_of(Command::new("id").arg("-u")).is_some_and(|s| s.trim() == "0")
}

fn apt_packages(tools: &mut Tools) {
    let mut missing = Vec::new();
    for (pkg, bin) in APT_PACKAGES {
        match which(bin) {
            Some(p) => ui::step(pkg, format!("present ({})", p.display())),
            None => missing.push(*pkg),
        }
    }
    if !missing.is_empty() {
        let list = missing.join(" ");
        let fix = format!(
            "sudo apt-get update && sudo apt-get install -y --no-install-recommends {list}"
        );
        if which("apt-get").is_none() {
            tools.problem(
                "apt",
                format!("missing {list} and there is no apt-get; install Chromium, ChromeDriver, Firefox ESR, WebKitGTK's WebKitWebDriver and Xvfb with your package manager"),
            );
        } else if !is_root() {
            tools.problem(
                "apt",
                format!("missing {list}, and apt-get needs root; run:\n        {fix}"),
            );
        } else {
            ui::step("apt", format!("installing {list}"));
            let updated = run_tee(Command::new("apt-get").arg("update")).success();
            let installed = updated
                && run_tee(
                    Command::new("apt-get")
                        .args(["install", "-y", "--no-install-recommends"])
                        .args(&missing)
                        .env("DEBIAN_FRONTEND", "noninteractive"),
                )
                .success();
            if !installed {
                tools.problem(
                    "apt",
                    format!("installing {list} failed (see above); retry with:\n        {fix}"),
                );
            }
            for (pkg, bin) in APT_PACKAGES {
                if missing.contains(pkg) {
                    if let Some(p) = which(bin) {
                        ui::step(pkg, format!("installed ({})", p.display()));
                    }
                }
            }
        }
    }
    tools.chromium = which("chromium");
    tools.chromedriver = which("chromedriver");
    tools.firefox = which("firefox-esr").or_else(|| which("firefox"));
    tools.webkit_driver = which("WebKitWebDriver");
    tools.xvfb = which("Xvfb");
    tools.minibrowser = minibrowser();
    if tools.webkit_driver.is_some() {
        match &tools.minibrowser {
            Some(p) => ui::step("MiniBrowser", format!("present ({})", p.display())),
            None => tools.problem(
                "MiniBrowser",
                "WebKitWebDriver is installed but WebKitGTK's MiniBrowser was not found under /usr/lib/*/webkit2gtk-4.1/".to_string(),
            ),
        }
    }
}

/// WebKitGTK's MiniBrowser, in its library folder (`/usr/lib/<arch>/webkit2gtk-4.1/`).
fn minibrowser() -> Option<PathBuf> {
    let lib = fs::read_dir("/usr/lib").ok()?;
    let mut dirs: Vec<PathBuf> = lib.filter_map(Result::ok).map(|e| e.path()).collect();
    dirs.push(PathBuf::from("/usr/lib"));
    dirs.sort();
    dirs.into_iter()
        .map(|d| d.join("webkit2gtk-4.1").join("MiniBrowser"))
        .find(|p| is_executable(p))
}

/// Debian's binaryen (wasm-opt 108) produces modules that fail to load; wasm-pack would pick
/// it up from /usr/bin if npm's were not first on PATH.
fn warn_about_debian_binaryen() {
    let system = Path::new("/usr/bin/wasm-opt");
    if is_executable(system) {
        ui::step(
            "binaryen",
            "WARNING: /usr/bin/wasm-opt exists (Debian's binaryen produces broken modules); \
             xtask puts npm's binaryen first on PATH, but consider: apt-get remove binaryen",
        );
    }
}

fn rust_target(tools: &mut Tools) {
    let Some(installed) = output_of(Command::new("rustup").args(["target", "list", "--installed"]))
    else {
        tools.problem(
            "rustup",
            format!("`rustup target list --installed` failed; install rustup, then: rustup target add {WASM_TARGET}"),
        );
        return;
    };
    if installed.lines().any(|l| l.trim() == WASM_TARGET) {
        ui::step(WASM_TARGET, "present");
        tools.wasm_target = true;
        return;
    }
    ui::step(WASM_TARGET, "installing");
    if run_tee(Command::new("rustup").args(["target", "add", WASM_TARGET])).success() {
        ui::step(WASM_TARGET, "installed");
        tools.wasm_target = true;
    } else {
        tools.problem(
            WASM_TARGET,
            format!("install failed; run: rustup target add {WASM_TARGET}"),
        );
    }
}

/// The version `bin --version` reports, if `bin` is on PATH.
fn installed_version(bin: &str) -> Option<String> {
    which(bin)?;
    parse::tool_version(&output_of(Command::new(bin).arg("--version"))?)
}

/// `cargo install`, with CARGO_TARGET_DIR unset (else ~1 GiB of build files land there).
fn cargo_install(args: &[&str], dir: Option<&Path>) -> bool {
    let mut cmd = Command::new("cargo");
    cmd.arg("install").args(args).env_remove("CARGO_TARGET_DIR");
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    run_tee(&mut cmd).success()
}

/// A binary crate at an exact version: skip when `bin --version` matches.
fn cargo_tool(tools: &mut Tools, bin: &str, krate: &str, version: &str) -> Option<PathBuf> {
    let have = installed_version(bin);
    if have.as_deref() == Some(version) {
        ui::step(bin, format!("present ({version})"));
        return which(bin);
    }
    ui::step(
        bin,
        match &have {
            Some(v) => format!("found {v}, installing {version} (about 2 minutes)"),
            None => format!("installing {version} (about 2 minutes)"),
        },
    );
    let args = ["--locked", "--force", krate, "--version", version];
    if cargo_install(&args, None) && installed_version(bin).as_deref() == Some(version) {
        ui::step(bin, format!("installed ({version})"));
        return which(bin);
    }
    tools.problem(
        bin,
        format!(
            "could not install {version} (see above); run: cargo install {krate} --version {version} --locked\n        \
             and make sure {} is on PATH",
            cargo_home().join("bin").display()
        ),
    );
    None
}

fn wasm_bindgen_cli(ctx: &Ctx, tools: &mut Tools) {
    let lock = fs::read_to_string(ctx.root.join("Cargo.lock")).unwrap_or_default();
    let Some(want) = parse::lock_versions(&lock, "wasm-bindgen")
        .into_iter()
        .next()
    else {
        tools.problem(
            "wasm-bindgen",
            "no wasm-bindgen in Cargo.lock; run `cargo generate-lockfile` first".to_string(),
        );
        return;
    };
    let matches = |v: &Option<String>| {
        v.as_deref() == Some(want.as_str()) && which("wasm-bindgen-test-runner").is_some()
    };
    let have = installed_version("wasm-bindgen");
    if matches(&have) {
        ui::step(
            "wasm-bindgen",
            format!("present ({want}, as in Cargo.lock)"),
        );
        tools.wasm_bindgen = which("wasm-bindgen");
        return;
    }
    ui::step(
        "wasm-bindgen",
        match &have {
            Some(v) => format!("found {v}, Cargo.lock has {want}: installing wasm-bindgen-cli {want} (2 to 5 minutes)"),
            None => format!("installing wasm-bindgen-cli {want} (2 to 5 minutes)"),
        },
    );
    // 1. the locked install
    if cargo_install(
        &[
            "--locked",
            "--force",
            "wasm-bindgen-cli",
            "--version",
            &want,
        ],
        None,
    ) && matches(&installed_version("wasm-bindgen"))
    {
        ui::step("wasm-bindgen", format!("installed ({want})"));
        tools.wasm_bindgen = which("wasm-bindgen");
        return;
    }
    // 2. the locked install from the unpacked crate with a repaired lock file
    ui::step(
        "wasm-bindgen",
        "the locked install failed; trying the crate from cargo's cache with a repaired lock file",
    );
    match prepare_wasm_bindgen_source(&want, &tools_dir().join("build")) {
        Ok(src) => {
            let ok = cargo_install(&["--locked", "--force", "--path", "."], Some(&src))
                && matches(&installed_version("wasm-bindgen"));
            let _ = fs::remove_dir_all(&src);
            if ok {
                ui::step(
                    "wasm-bindgen",
                    format!("installed ({want}, repaired lock file)"),
                );
                tools.wasm_bindgen = which("wasm-bindgen");
                return;
            }
        }
        Err(e) => ui::step("wasm-bindgen", format!("cannot use the cached crate: {e}")),
    }
    // 3. last resort: let cargo resolve dependencies afresh
    ui::step(
        "wasm-bindgen",
        "trying the unlocked install (about 5 minutes)",
    );
    if cargo_install(&["--force", "wasm-bindgen-cli", "--version", &want], None)
        && matches(&installed_version("wasm-bindgen"))
    {
        ui::step("wasm-bindgen", format!("installed ({want}, unlocked)"));
        tools.wasm_bindgen = which("wasm-bindgen");
        return;
    }
    tools.problem(
        "wasm-bindgen",
        format!(
            "could not install wasm-bindgen-cli {want} (see above). It must match Cargo.lock exactly; try:\n        \
             cargo install wasm-bindgen-cli --version {want}"
        ),
    );
}

/// Unpacks `wasm-bindgen-cli-<version>.crate` from cargo's registry cache into `scratch` and
/// pins webpki-roots to a version the registry has. Returns the unpacked folder.
pub fn prepare_wasm_bindgen_source(version: &str, scratch: &Path) -> Result<PathBuf, String> {
    let name = format!("wasm-bindgen-cli-{version}.crate");
    let cache = cargo_home().join("registry").join("cache");
    let krate = fs::read_dir(&cache)
        .map_err(|e| format!("{}: {e}", cache.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path().join(&name))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("{name} is not in cargo's registry cache"))?;
    fs::create_dir_all(scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let src = scratch.join(format!("wasm-bindgen-cli-{version}"));
    let _ = fs::remove_dir_all(&src);
    let unpacked = run_tee(
        Command::new("tar")
            .arg("-xzf")
            .arg(&krate)
            .arg("-C")
            .arg(scratch),
    );
    if !unpacked.success() || !src.join("Cargo.toml").is_file() {
        return Err(format!("could not unpack {}", krate.display()));
    }
    let lock = fs::read_to_string(src.join("Cargo.lock")).unwrap_or_default();
    if !parse::lock_versions(&lock, "webpki-roots").is_empty() {
        let updated = run_tee(
            Command::new("cargo")
                .args([
                    "update",
                    "-p",
                    "webpki-roots",
                    "--precise",
                    WEBPKI_ROOTS_PIN,
                ])
                .current_dir(&src)
                .env_remove("CARGO_TARGET_DIR"),
        );
        if !updated.success() {
            return Err(format!(
                "cargo update -p webpki-roots --precise {WEBPKI_ROOTS_PIN} failed"
            ));
        }
    }
    Ok(src)
}

/// The `version` field of an installed npm package.
fn npm_installed_version(node_modules: &Path, pkg: &str) -> Option<String> {
    let text = fs::read_to_string(node_modules.join(pkg).join("package.json")).ok()?;
    json::parse(&text)
        .ok()?
        .get("version")?
        .as_str()
        .map(str::to_string)
}

fn npm_tools(_ctx: &Ctx, tools: &mut Tools, needs: Needs) {
    let dir = tools_dir();
    let node_modules = dir.join("node_modules");
    let wanted: Vec<(&str, &str)> = NPM_TOOLS
        .iter()
        .copied()
        .filter(|(p, _)| needs == Needs::All || NPM_BUILD_TOOLS.contains(p))
        .collect();
    let stale: Vec<&str> = wanted
        .iter()
        .filter(|(pkg, v)| npm_installed_version(&node_modules, pkg).as_deref() != Some(*v))
        .map(|(pkg, _)| *pkg)
        .collect();
    if stale.is_empty() {
        for (pkg, v) in &wanted {
            ui::step(pkg, format!("present ({v}, npm)"));
        }
    } else if which("npm").is_none() {
        tools.problem(
            "npm",
            format!("not found, so {} cannot be installed; install npm (Debian: apt-get install -y npm)", stale.join(", ")),
        );
    } else {
        ui::step(
            "npm tools",
            format!("installing {} into {}", stale.join(", "), dir.display()),
        );
        // All pinned tools go in one package.json, so installing for `demo` keeps the others.
        let deps: Vec<String> = NPM_TOOLS
            .iter()
            .map(|(p, v)| format!("    {}: {}", json::quote(p), json::quote(v)))
            .collect();
        let manifest = format!(
            "{{\n  \"name\": \"segops-tools\",\n  \"private\": true,\n  \"description\": \"Tools for the SegOps SDK's cargo xtask (generated)\",\n  \"dependencies\": {{\n{}\n  }}\n}}\n",
            deps.join(",\n")
        );
        let written =
            fs::create_dir_all(&dir).and_then(|_| fs::write(dir.join("package.json"), manifest));
        let ok = written.is_ok()
            && run_tee(
                Command::new("npm")
                    .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
                    .current_dir(&dir)
                    .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1"),
            )
            .success();
        for (pkg, v) in &wanted {
            if npm_installed_version(&node_modules, pkg).as_deref() == Some(*v) {
                ui::step(pkg, format!("installed ({v}, npm)"));
            } else if ok {
                tools.problem(pkg, format!("npm install did not produce {pkg} {v}"));
            }
        }
        if !ok {
            tools.problem(
                "npm tools",
                format!(
                    "npm install failed (see above); run: cd {} && npm install",
                    dir.display()
                ),
            );
        }
    }
    tools.npm_present = NPM_TOOLS
        .iter()
        .filter(|(pkg, v)| npm_installed_version(&node_modules, pkg).as_deref() == Some(*v))
        .map(|(pkg, _)| *pkg)
        .collect();
    tools.playwright_core = tools.has_npm("playwright-core");
    let bin = node_modules.join(".bin");
    if is_executable(&bin.join("wasm-opt")) {
        prepend_path(&bin);
        tools.node_modules = Some(node_modules);
    } else {
        tools.problem(
            "binaryen",
            format!(
                "no wasm-opt in {}; wasm-pack builds will fail",
                bin.display()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fallback's unpack and lock repair, in a scratch folder. Needs the crate in cargo's
    /// cache and the registry: `cargo test -p xtask -- --ignored`.
    #[test]
    #[ignore]
    fn wasm_bindgen_fallback_prepares_source() {
        let scratch = std::env::temp_dir().join(format!("xtask-wbg-{}", std::process::id()));
        let src = prepare_wasm_bindgen_source("0.2.130", &scratch).unwrap();
        let lock = fs::read_to_string(src.join("Cargo.lock")).unwrap();
        assert_eq!(
            parse::lock_versions(&lock, "webpki-roots"),
            vec![WEBPKI_ROOTS_PIN]
        );
        fs::remove_dir_all(&scratch).unwrap();
    }
}

//! The npm package: the wasm-pack builds, the assembly of `@segops/sdk` in `pkg/` from them,
//! `js/` and `pkg-template/`, `npm pack`, and the size report.
//!
//! Layout of `pkg/` (see `pkg-template/package.json` for the `exports` map):
//!
//! ```text
//! package.json, README.md     from pkg-template/, version from Cargo.toml; LICENSE-* from the root
//! index.d.ts, index.d.cts     the types, for import and require (js/types/)
//! server.d.ts, server.d.cts   the types of "./server"
//! web/index.js    "." in browsers and bundlers: the loader alone (js/entries/web.js), minified;
//!                 what the page waits for
//! web/engine.js   imported by the loader when the first client is created: the runtime and
//!                 wasm-bindgen's glue (js/entries/engine.js), minified
//! web/segops_sdk_bg.wasm      fetched by the loader, streaming-compiled
//! web/server.js   "./server" in browser bundles: signUserId throws
//! node/index.mjs, node/index.cjs    "." in Node: loader, runtime, glue and the module's bytes
//!                 (js/entries/node.js, the `server` build), compiled synchronously on first use
//! node/server.mjs, node/server.cjs  "./server" in Node
//! server/package.json         "./server" for TypeScript's node10 resolution
//! cdn/segops.js   one <script> for pages without a bundler (js/entries/cdn.js), and its .wasm
//! cdn/snippet.js  the inline snippet that records calls until cdn/segops.js arrives
//! ```

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::proc::{output_of, run_tee};
use crate::{json, setup, ui, Ctx};

/// The assembled package, relative to the repository root.
pub const PKG_DIR: &str = "pkg";
/// The files merged into the package, relative to the repository root.
pub const TEMPLATE_DIR: &str = "pkg-template";
/// The JavaScript sources (loader, runtime, entries, types), relative to the repository root.
pub const JS_DIR: &str = "js";
/// The browser entry, relative to the package; the size report follows its imports.
pub const BROWSER_ENTRY: &str = "web/index.js";
/// What `pkg-template/package.json` has as its version; replaced by Cargo.toml's.
const VERSION_PLACEHOLDER: &str = "\"version\": \"0.0.0-from-cargo-toml\"";
/// The config the README's snippet shows; the build puts it after the snippet's function.
pub const SNIPPET_CONFIG: &str = r#"{apiUrl:"https://api.segops.example",apiKey:"pk_live_...",getUser:function(){return window.currentUser?{userId:window.currentUser.id}:null}}"#;

/// Where the wasm-pack build for `name` (`web` or `node`) goes: `<target dir>/npm/<name>`.
pub fn build_dir(ctx: &Ctx, name: &str) -> PathBuf {
    ctx.target_dir.join("npm").join(name)
}

/// `wasm-pack build --release --target web --out-dir <out_dir>`, from the repository root (a
/// relative `out_dir` is relative to the crate root, which is the repository root). Both
/// builds go without the crate's default `std` feature (core + alloc, the trapping panic
/// handler and the small allocator of `src/bare.rs`); with `server`, the crate's `server`
/// feature (`signUserId`), which browser builds never get. Both use the web target's glue: the
/// JS entries say where the module comes from.
pub fn wasm_pack_build(
    ctx: &Ctx,
    server: bool,
    out_dir: impl AsRef<Path>,
) -> Result<PathBuf, String> {
    let out_dir = ctx.root.join(out_dir);
    let mut cmd = Command::new("wasm-pack");
    cmd.args(["build", "--release", "--target", "web", "--out-dir"])
        .arg(&out_dir);
    cmd.args(["--", "--no-default-features"]);
    if server {
        cmd.args(["--features", "server"]);
    }
    let out = run_tee(
        cmd.current_dir(&ctx.root)
            .env("CARGO_TARGET_DIR", &ctx.target_dir),
    );
    if out.success() {
        return Ok(out_dir);
    }
    let mut msg = format!(
        "wasm-pack build{} failed ({})",
        if server { " --features server" } else { "" },
        out.describe()
    );
    if let Some(hint) = wasm_opt_hint(&out.output) {
        ui::problem("wasm-pack", hint);
        msg.push_str(": wasm-opt rejected the module's wasm features (see the hint above)");
    }
    Err(msg)
}

fn build(ctx: &Ctx, name: &str) -> Result<PathBuf, String> {
    let dir = build_dir(ctx, name);
    ui::heading(format!("wasm-pack ({name}) -> {}", dir.display()));
    wasm_pack_build(ctx, name == "node", dir)
}

/// Both wasm-pack builds and the package, each made at most once per xtask run (the test
/// tiers share them).
#[derive(Default)]
pub struct Builds {
    web: Option<Result<PathBuf, String>>,
    node: Option<Result<PathBuf, String>>,
    package: Option<Result<PathBuf, String>>,
}

impl Builds {
    /// The browser build (no `server` feature).
    pub fn web(&mut self, ctx: &Ctx) -> Result<PathBuf, String> {
        self.web.get_or_insert_with(|| build(ctx, "web")).clone()
    }

    /// The Node build (with the `server` feature).
    pub fn node(&mut self, ctx: &Ctx) -> Result<PathBuf, String> {
        self.node.get_or_insert_with(|| build(ctx, "node")).clone()
    }

    /// Both builds, assembled into `pkg/`.
    pub fn package(&mut self, ctx: &Ctx) -> Result<PathBuf, String> {
        if let Some(done) = &self.package {
            return done.clone();
        }
        let result = self.web(ctx).and_then(|web| {
            let node = self.node(ctx)?;
            ui::heading(format!("assemble {PKG_DIR}/"));
            assemble(ctx, &web, &node)
        });
        self.package = Some(result.clone());
        result
    }
}

/// Assembles the package in `<root>/pkg` from the two wasm-pack builds, `js/` and
/// `pkg-template/`.
pub fn assemble(ctx: &Ctx, web: &Path, node: &Path) -> Result<PathBuf, String> {
    let esbuild = setup::npm_bin("esbuild");
    if !esbuild.is_file() {
        return Err(format!(
            "no esbuild at {}; run `cargo xtask setup`",
            esbuild.display()
        ));
    }
    let template = ctx.root.join(TEMPLATE_DIR);
    let js = ctx.root.join(JS_DIR);
    let out = ctx.root.join(PKG_DIR);
    if out.exists() {
        fs::remove_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    copy_tree(&template, &out)?;
    for license in ["LICENSE-MIT", "LICENSE-APACHE"] {
        copy(&ctx.root.join(license), &out.join(license))?;
    }

    // package.json: the version from Cargo.toml
    let cargo_toml = read(&ctx.root.join("Cargo.toml"))?;
    let version = cargo_version(&cargo_toml).ok_or("no version in Cargo.toml's [package]")?;
    let manifest = read(&out.join("package.json"))?;
    if !manifest.contains(VERSION_PLACEHOLDER) {
        return Err(format!(
            "{TEMPLATE_DIR}/package.json must have {VERSION_PLACEHOLDER} (xtask fills it in)"
        ));
    }
    let manifest = manifest.replacen(
        VERSION_PLACEHOLDER,
        &format!("\"version\": {}", json::quote(&version)),
        1,
    );
    write(&out.join("package.json"), &manifest)?;

    // The types, the same for every build; .d.cts twins for require().
    for name in ["index", "server"] {
        let text = read(&js.join("types").join(format!("{name}.d.ts")))?;
        write(&out.join(format!("{name}.d.ts")), &text)?;
        write(
            &out.join(format!("{name}.d.cts")),
            &text.replace("from \"./index.js\"", "from \"./index.cjs\""),
        )?;
    }
    write(
        &out.join("server/package.json"),
        "{\n  \"main\": \"../node/server.cjs\",\n  \"types\": \"../server.d.cts\"\n}\n",
    )?;

    let define = format!("--define:SEGOPS_VERSION={}", json::quote(&version));
    let alias = |name: &str, path: &Path| format!("--alias:{name}={}", path.display());
    let browser = [
        "--bundle",
        "--minify",
        "--format=esm",
        "--target=es2020",
        "--platform=browser",
    ];
    let web_glue = alias("segops-glue", &web.join("segops_sdk.js"));

    // web/: the loader alone; the engine chunk (its import stays a separate file)
    let web_out = out.join("web");
    esbuild_run(
        &esbuild,
        &js.join("entries/web.js"),
        &web_out.join("index.js"),
        &[&browser[..], &["--external:./engine.js", &define]].concat(),
    )?;
    esbuild_run(
        &esbuild,
        &js.join("entries/engine.js"),
        &web_out.join("engine.js"),
        &[&browser[..], &[web_glue.as_str(), &define]].concat(),
    )?;
    copy(
        &web.join("segops_sdk_bg.wasm"),
        &web_out.join("segops_sdk_bg.wasm"),
    )?;
    copy(
        &js.join("entries/server.browser.js"),
        &web_out.join("server.js"),
    )?;

    // node/: everything in one file per format, the module's bytes included
    let node_out = out.join("node");
    let wasm = fs::read(node.join("segops_sdk_bg.wasm"))
        .map_err(|e| format!("{}: {e}", node.display()))?;
    let wasm_js = node.join("wasm-base64.js");
    write(
        &wasm_js,
        &format!(
            "// The module's bytes, base64 (generated by `cargo xtask pkg`).\nexport const WASM = \"{}\";\n",
            base64(&wasm)
        ),
    )?;
    let node_glue = alias("segops-glue", &node.join("segops_sdk.js"));
    let node_wasm = alias("segops-wasm", &wasm_js);
    for (format, ext) in [("esm", "mjs"), ("cjs", "cjs")] {
        let flags = [
            "--bundle",
            "--platform=node",
            "--target=node20",
            &format!("--format={format}"),
            &node_glue,
            &node_wasm,
            &define,
        ];
        esbuild_run(
            &esbuild,
            &js.join("entries/node.js"),
            &node_out.join(format!("index.{ext}")),
            &flags,
        )?;
    }
    write(
        &node_out.join("server.mjs"),
        "// @segops/sdk/server in Node: signUserId, from the Node build.\nexport { signUserId } from \"./index.mjs\";\n",
    )?;
    write(
        &node_out.join("server.cjs"),
        "// @segops/sdk/server in Node (require): signUserId, from the Node build.\n\"use strict\";\nmodule.exports = { signUserId: require(\"./index.cjs\").signUserId };\n",
    )?;

    // cdn/: one script with its .wasm, and the inline snippet
    let cdn_out = out.join("cdn");
    esbuild_run(
        &esbuild,
        &js.join("entries/cdn.js"),
        &cdn_out.join("segops.js"),
        &[
            "--bundle",
            "--minify",
            "--format=iife",
            "--target=es2020",
            &web_glue,
            &define,
        ],
    )?;
    copy(
        &web.join("segops_sdk_bg.wasm"),
        &cdn_out.join("segops_sdk_bg.wasm"),
    )?;
    let snippet_body = node.join("snippet-body.js");
    esbuild_run(
        &esbuild,
        &js.join("entries/snippet.js"),
        &snippet_body,
        &["--bundle", "--minify", "--format=esm", "--target=es2020"],
    )?;
    write(
        &cdn_out.join("snippet.js"),
        &snippet(&read(&snippet_body)?, SNIPPET_CONFIG),
    )?;

    let missing = missing_targets(&out)?;
    if !missing.is_empty() {
        return Err(format!(
            "package.json names files the package lacks: {}",
            missing.join(", ")
        ));
    }
    ui::step("pkg", format!("assembled {PKG_DIR}/ ({version})"));
    Ok(out)
}

/// Where the wasm-bindgen test suites find the SDK's JS (see `js/entries/test.js`).
pub const TEST_BUNDLE: &str = "tests/support/sdk.js";

/// Bundles `js/entries/test.js` into [`TEST_BUNDLE`] (readable, not minified), for the
/// wasm-bindgen test suites, which import it.
pub fn test_bundle(ctx: &Ctx) -> Result<PathBuf, String> {
    let esbuild = setup::npm_bin("esbuild");
    let out = ctx.root.join(TEST_BUNDLE);
    esbuild_run(
        &esbuild,
        &ctx.root.join(JS_DIR).join("entries/test.js"),
        &out,
        &[
            "--bundle",
            "--format=esm",
            "--target=es2020",
            "--define:SEGOPS_VERSION=\"test\"",
        ],
    )?;
    Ok(out)
}

/// The inline snippet: the minified body as a function of the config, called with `config`.
pub fn snippet(body: &str, config: &str) -> String {
    format!("!function(segopsConfig){{{}}}({config});\n", body.trim())
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Files `package.json` names (`main`, `module`, `types`, every `exports` target) that are
/// not in the package.
pub fn missing_targets(pkg: &Path) -> Result<Vec<String>, String> {
    let manifest = json::parse(&read(&pkg.join("package.json"))?)
        .map_err(|e| format!("pkg/package.json: {e}"))?;
    let mut targets = BTreeSet::new();
    for key in ["main", "module", "types"] {
        if let Some(s) = manifest.get(key).and_then(json::Json::as_str) {
            targets.insert(s.to_string());
        }
    }
    fn walk(v: &json::Json, out: &mut BTreeSet<String>) {
        match v {
            json::Json::Str(s) => {
                out.insert(s.clone());
            }
            json::Json::Obj(fields) => fields.iter().for_each(|(_, v)| walk(v, out)),
            json::Json::Arr(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    if let Some(exports) = manifest.get("exports") {
        walk(exports, &mut targets);
    }
    Ok(targets
        .into_iter()
        .filter(|t| !pkg.join(t.trim_start_matches("./")).is_file())
        .collect())
}

/// The version in Cargo.toml's `[package]` (or `[workspace.package]` when it is inherited).
pub fn cargo_version(toml: &str) -> Option<String> {
    let mut section = String::new();
    let mut package = None;
    let mut workspace = None;
    for line in toml.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line
                .trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_string();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim() != "version" {
            continue;
        }
        let value = value.trim();
        let quoted = value
            .strip_prefix('"')
            .and_then(|v| v.split_once('"'))
            .map(|(v, _)| v.to_string());
        match section.as_str() {
            "package" => package = quoted,
            "workspace.package" => workspace = quoted,
            _ => {}
        }
    }
    package.or(workspace)
}

/// `npm pack` of the package into `<target dir>/npm/`. Returns the tarball.
pub fn npm_pack(ctx: &Ctx, pkg: &Path) -> Result<PathBuf, String> {
    let dest = ctx.target_dir.join("npm");
    fs::create_dir_all(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    let manifest = json::parse(&read(&pkg.join("package.json"))?)
        .map_err(|e| format!("pkg/package.json: {e}"))?;
    let field = |k: &str| {
        manifest
            .get(k)
            .and_then(json::Json::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("pkg/package.json has no {k}"))
    };
    // npm's tarball name: the scope's @ dropped and its / made a -
    let tarball = dest.join(format!(
        "{}-{}.tgz",
        field("name")?.trim_start_matches('@').replace('/', "-"),
        field("version")?
    ));
    let _ = fs::remove_file(&tarball);
    let out = run_tee(
        Command::new("npm")
            .args(["pack", "--no-audit", "--no-fund", "--pack-destination"])
            .arg(&dest)
            .arg(pkg)
            .current_dir(&dest),
    );
    if !out.success() {
        return Err(format!("npm pack failed ({})", out.describe()));
    }
    if !tarball.is_file() {
        return Err(format!("npm pack did not write {}", tarball.display()));
    }
    Ok(tarball)
}

/// `esbuild <input> <flags> --outfile=<output>`, quietly unless it fails.
fn esbuild_run(esbuild: &Path, input: &Path, output: &Path, flags: &[&str]) -> Result<(), String> {
    let out = Command::new(esbuild)
        .arg(input)
        .args(flags)
        .args(["--log-level=warning", "--legal-comments=none"])
        // wasm-bindgen lists a snippet once per import in the wasm imports object
        .arg("--log-override:duplicate-object-key=silent")
        .arg(format!("--outfile={}", output.display()))
        .output()
        .map_err(|e| format!("could not start esbuild: {e}"))?;
    let log = String::from_utf8_lossy(&out.stderr);
    if !log.trim().is_empty() {
        print!("{log}");
    }
    if !out.status.success() {
        return Err(format!("esbuild {} failed", input.display()));
    }
    Ok(())
}

fn read(p: &Path) -> Result<String, String> {
    fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn write(p: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = p.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    fs::write(p, text).map_err(|e| format!("{}: {e}", p.display()))
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("copy {} -> {}: {e}", from.display(), to.display()))
}

/// Replaces `to` with a copy of the folder `from`.
pub fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    if to.exists() {
        fs::remove_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    }
    copy_tree(from, to)
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    for f in files_under(from, "") {
        let rel = f.strip_prefix(from).map_err(|e| e.to_string())?;
        copy(&f, &to.join(rel))?;
    }
    Ok(())
}

/// Files under `dir` whose names end with `suffix`, sorted.
fn files_under(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(suffix) {
                found.push(p);
            }
        }
    }
    found.sort();
    found
}

/// Recognises wasm-opt refusing features that rustc enables by default for wasm32 (bulk memory,
/// non-trapping float-to-int since Rust 1.87), which happens when the `target_features` section
/// wasm-opt reads them from was stripped (`strip = true` in the release profile).
pub fn wasm_opt_hint(output: &str) -> Option<&'static str> {
    let refused = output.contains("wasm-validator error")
        && (output.contains("bulk memory")
            || output.contains("all used features should be allowed"));
    refused.then_some(
        "wasm-opt does not know the module's wasm features because `strip = true` in \
         [profile.release] removed its target_features section. Fix in Cargo.toml: drop \
         `strip = true` (wasm-opt removes the name section anyway), or add\n        \
         [package.metadata.wasm-pack.profile.release]\n        \
         wasm-opt = [\"-Oz\", \"--enable-bulk-memory\", \"--enable-nontrapping-float-to-int\"]",
    )
}

/// Sizes of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Size {
    pub name: String,
    pub raw: u64,
    pub gzip: u64,
    pub brotli: u64,
}

/// What a browser downloads for `import "@segops/sdk"`: the entry and every `.js` or `.wasm`
/// it names by a relative path (imports and `new URL(..., import.meta.url)`), transitively.
/// The .wasm first, then the JavaScript, each sorted.
pub fn browser_files(pkg: &Path) -> Vec<PathBuf> {
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    let mut todo = vec![pkg.join(BROWSER_ENTRY)];
    while let Some(f) = todo.pop() {
        if !f.is_file() || !seen.insert(f.clone()) {
            continue;
        }
        if f.extension().and_then(|x| x.to_str()) != Some("js") {
            continue;
        }
        let text = fs::read_to_string(&f).unwrap_or_default();
        let dir = f.parent().unwrap_or(pkg);
        for rel in relative_refs(&text) {
            todo.push(normalize(&dir.join(rel)));
        }
    }
    let mut found: Vec<PathBuf> = seen.into_iter().collect();
    found.sort_by_key(|p| {
        (
            p.extension().and_then(|x| x.to_str()) != Some("wasm"),
            p.clone(),
        )
    });
    found
}

/// The part of [`browser_files`] a page fetches before the code that imports the SDK can go on:
/// the entry and what it imports statically, transitively (not `import()`, not the `.wasm`).
pub fn critical_files(pkg: &Path) -> Vec<PathBuf> {
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    let mut todo = vec![pkg.join(BROWSER_ENTRY)];
    while let Some(f) = todo.pop() {
        if !f.is_file() || !seen.insert(f.clone()) {
            continue;
        }
        let text = fs::read_to_string(&f).unwrap_or_default();
        let dir = f.parent().unwrap_or(pkg);
        for rel in static_imports(&text) {
            todo.push(normalize(&dir.join(rel)));
        }
    }
    seen.into_iter().collect()
}

/// The relative `.js` paths a module imports statically: `import … from "./x.js"`,
/// `export … from "./x.js"`, `import "./x.js"`; not `import("./x.js")`.
pub fn static_imports(js: &str) -> Vec<String> {
    let mut out = Vec::new();
    for quote in ['"', '\''] {
        for (i, part) in js.split(quote).enumerate() {
            if i % 2 == 0 || !(part.starts_with("./") || part.starts_with("../")) {
                continue;
            }
            // What comes before the opening quote of this literal.
            let before: String = js
                .split(quote)
                .take(i)
                .collect::<Vec<_>>()
                .join(&quote.to_string());
            let before = before.trim_end();
            if part.ends_with(".js") && (before.ends_with("from") || before.ends_with("import")) {
                out.push(part.to_string());
            }
        }
    }
    out
}

/// String literals in JavaScript source that name a `.js` or `.wasm` file: relative ones
/// (`"./a.js"`, `'../b.js'`) and bare `.wasm` names (`new URL("x_bg.wasm", import.meta.url)`).
pub fn relative_refs(js: &str) -> Vec<String> {
    let mut refs = Vec::new();
    let b = js.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let q = b[i];
        if q == b'"' || q == b'\'' || q == b'`' {
            if let Some(len) = b[i + 1..].iter().position(|&c| c == q || c == b'\n') {
                let lit = &js[i + 1..i + 1 + len];
                let named = lit.ends_with(".js") || lit.ends_with(".wasm");
                let simple = !lit.is_empty()
                    && lit
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
                if named
                    && simple
                    && (lit.starts_with("./")
                        || lit.starts_with("../")
                        || (lit.ends_with(".wasm") && !lit.contains('/')))
                {
                    refs.push(lit.to_string());
                }
                i += len + 2;
                continue;
            }
        }
        i += 1;
    }
    refs
}

/// `a/./b/../c` -> `a/c`, without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// gzip -9 and brotli quality 11 through Node's zlib (no extra tools).
const MEASURE_JS: &str = r#"
const fs = require('fs'), zlib = require('zlib');
for (const f of process.argv.slice(1)) {
  const b = fs.readFileSync(f);
  const gz = zlib.gzipSync(b, { level: 9 }).length;
  const br = zlib.brotliCompressSync(b, { params: {
    [zlib.constants.BROTLI_PARAM_QUALITY]: zlib.constants.BROTLI_MAX_QUALITY,
    [zlib.constants.BROTLI_PARAM_SIZE_HINT]: b.length } }).length;
  console.log(`${b.length} ${gz} ${br}`);
}
"#;

pub fn measure(dir: &Path, files: &[PathBuf]) -> Result<Vec<Size>, String> {
    let out = output_of(Command::new("node").arg("-e").arg(MEASURE_JS).args(files))
        .ok_or("node could not measure the files")?;
    let sizes = parse_measurements(&out);
    if sizes.len() != files.len() {
        return Err(format!("unexpected output from node: {out:?}"));
    }
    Ok(files
        .iter()
        .zip(sizes)
        .map(|(f, (raw, gzip, brotli))| Size {
            name: f
                .strip_prefix(dir)
                .unwrap_or(f)
                .to_string_lossy()
                .into_owned(),
            raw,
            gzip,
            brotli,
        })
        .collect())
}

/// Lines of `raw gzip brotli`.
fn parse_measurements(out: &str) -> Vec<(u64, u64, u64)> {
    out.lines()
        .filter_map(|l| {
            let n: Vec<u64> = l
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            match n.as_slice() {
                [a, b, c] => Some((*a, *b, *c)),
                _ => None,
            }
        })
        .collect()
}

/// `1234567` -> `1,234,567`
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let groups: Vec<&str> = digits
        .as_bytes()
        .rchunks(3)
        .rev()
        .map(|g| std::str::from_utf8(g).unwrap_or(""))
        .collect();
    groups.join(",")
}

/// A table of the sizes with a total row.
pub fn size_table(rows: &[Size]) -> String {
    let total = Size {
        name: "total".to_string(),
        raw: rows.iter().map(|r| r.raw).sum(),
        gzip: rows.iter().map(|r| r.gzip).sum(),
        brotli: rows.iter().map(|r| r.brotli).sum(),
    };
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(5);
    let mut out = format!(
        "    {:<width$}  {:>10}  {:>10}  {:>10}\n",
        "file", "raw", "gzip -9", "brotli 11"
    );
    for r in rows.iter().chain(std::iter::once(&total)) {
        out.push_str(&format!(
            "    {:<width$}  {:>10}  {:>10}  {:>10}\n",
            r.name,
            thousands(r.raw),
            thousands(r.gzip),
            thousands(r.brotli)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-pkg-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn reads_the_crate_version() {
        let toml = "[workspace]\nmembers = [\".\"]\n\n[workspace.package]\nversion = \"9.9.9\"\n\n\
                    [package]\nname = \"segops-sdk\"\nversion = \"0.3.1\" # the SDK\n\n\
                    [dependencies]\nfoo = { version = \"1\" }\n";
        assert_eq!(cargo_version(toml).as_deref(), Some("0.3.1"));
        let inherited =
            "[workspace.package]\nversion = \"2.0.0\"\n[package]\nversion.workspace = true\n";
        assert_eq!(cargo_version(inherited).as_deref(), Some("2.0.0"));
        let real = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"));
        assert!(cargo_version(&real.unwrap()).is_some());
    }

    #[test]
    fn the_template_manifest_matches_cargo_toml() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let text = fs::read_to_string(root.join(TEMPLATE_DIR).join("package.json")).unwrap();
        assert!(text.contains(VERSION_PLACEHOLDER));
        let manifest = json::parse(&text).unwrap();
        let cargo = fs::read_to_string(root.join("Cargo.toml")).unwrap();
        let license = manifest
            .get("license")
            .and_then(json::Json::as_str)
            .unwrap();
        assert!(
            cargo.contains(&format!("license = \"{license}\"")),
            "license {license}"
        );
        let url = manifest
            .get("repository")
            .and_then(|r| r.get("url"))
            .and_then(json::Json::as_str)
            .unwrap();
        let repo = url.trim_start_matches("git+").trim_end_matches(".git");
        assert!(
            cargo.contains(&format!("repository = \"{repo}\"")),
            "repository {url}"
        );
        // every file the exports map names from the template is in the template
        let mut from_template = Vec::new();
        missing_targets(&root.join(TEMPLATE_DIR))
            .unwrap()
            .into_iter()
            .filter(|t| {
                !["./web/", "./node/", "./index.d", "./server.d"]
                    .iter()
                    .any(|p| t.starts_with(p))
            })
            .for_each(|t| from_template.push(t));
        assert_eq!(from_template, Vec::<String>::new());
    }

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn the_snippet_is_a_call_of_its_body() {
        let s = snippet("let a=segopsConfig;\n", "{apiKey:\"pk\"}");
        assert_eq!(
            s,
            "!function(segopsConfig){let a=segopsConfig;}({apiKey:\"pk\"});\n"
        );
    }

    #[test]
    fn static_imports_leave_out_dynamic_ones() {
        let js = r#"import{a as b}from"./x.js";import"./y.js";export*from'./z.js';let e=()=>import("./engine.js"),u=new URL("./w.wasm",import.meta.url),s="./notes.js";"#;
        let mut found = static_imports(js);
        found.sort();
        assert_eq!(found, ["./x.js", "./y.js", "./z.js"]);
    }

    #[test]
    fn finds_relative_references_in_minified_js() {
        let js = r#"import t from"./segops_sdk.js";await t();export*from"./segops_sdk.js";
let u=new URL("segops_sdk_bg.wasm",import.meta.url),v='../x/y.js',w=`https://cdn.test/z.js`,
s="a b.js",n="./notes.txt";"#;
        assert_eq!(
            relative_refs(js),
            [
                "./segops_sdk.js",
                "./segops_sdk.js",
                "segops_sdk_bg.wasm",
                "../x/y.js"
            ]
        );
    }

    #[test]
    fn browser_files_follow_the_entry() {
        let pkg = scratch("browser");
        fs::create_dir_all(pkg.join("web")).unwrap();
        fs::create_dir_all(pkg.join("node")).unwrap();
        fs::write(
            pkg.join("web/index.js"),
            r#"import t from"./glue.js";await t();"#,
        )
        .unwrap();
        fs::write(
            pkg.join("web/glue.js"),
            r#"import"./glue.js";new URL("x_bg.wasm",import.meta.url);"#,
        )
        .unwrap();
        fs::write(pkg.join("web/x_bg.wasm"), b"\0asm").unwrap();
        fs::write(pkg.join("web/unused.js"), "").unwrap();
        fs::write(pkg.join("node/x_bg.wasm"), b"\0asm").unwrap();
        let names: Vec<String> = browser_files(&pkg)
            .iter()
            .map(|p| p.strip_prefix(&pkg).unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["web/x_bg.wasm", "web/glue.js", "web/index.js"]);
        fs::remove_dir_all(&pkg).unwrap();
    }

    #[test]
    fn names_missing_export_targets() {
        let pkg = scratch("targets");
        fs::write(
            pkg.join("package.json"),
            r#"{"main": "./a.cjs", "types": "./a.d.ts",
               "exports": {".": {"node": {"import": "./a.mjs", "require": "./a.cjs"}, "default": "./b.js"},
                           "./package.json": "./package.json"}}"#,
        )
        .unwrap();
        fs::write(pkg.join("a.cjs"), "").unwrap();
        fs::write(pkg.join("a.mjs"), "").unwrap();
        assert_eq!(missing_targets(&pkg).unwrap(), ["./a.d.ts", "./b.js"]);
        fs::remove_dir_all(&pkg).unwrap();
    }

    #[test]
    fn recognises_wasm_opt_feature_errors() {
        let out = "[wasm-validator error in function 217] unexpected false: memory.copy operations \
                   require bulk memory operations [--enable-bulk-memory-opt], on\nFatal: error validating input";
        assert!(wasm_opt_hint(out).is_some());
        assert!(wasm_opt_hint("error[E0308]: mismatched types").is_none());
    }

    #[test]
    fn formats_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(143227), "143,227");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn parses_node_measurements() {
        assert_eq!(
            parse_measurements("10 5 4\nnoise\n200 100 90\n"),
            vec![(10, 5, 4), (200, 100, 90)]
        );
    }

    #[test]
    fn table_has_a_total() {
        let rows = [
            Size {
                name: "a_bg.wasm".into(),
                raw: 1000,
                gzip: 500,
                brotli: 400,
            },
            Size {
                name: "a.js".into(),
                raw: 10,
                gzip: 5,
                brotli: 4,
            },
        ];
        let t = size_table(&rows);
        let last = t.lines().last().unwrap();
        assert!(
            last.contains("total") && last.contains("1,010") && last.contains("505"),
            "{t}"
        );
    }
}

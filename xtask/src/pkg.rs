//! The npm package builds (wasm-pack) and the size report.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::proc::{output_of, run_tee};
use crate::{ui, Ctx};

/// Where `cargo xtask pkg` and the test tiers put the two builds (relative to the repo root).
pub const NODE_OUT: &str = "target/npm/nodejs";
pub const WEB_OUT: &str = "target/npm/web";

/// `wasm-pack build --release --target <target> --out-dir <out_dir>`, from the repository root
/// (wasm-pack's `--out-dir` is relative to the crate root, which is the repository root).
/// The Node build gets the crate's `server` feature (`signUserId`); browser builds never do.
pub fn wasm_pack_build(ctx: &Ctx, target: &str, out_dir: &str) -> Result<PathBuf, String> {
    let mut args = vec![
        "build",
        "--release",
        "--target",
        target,
        "--out-dir",
        out_dir,
    ];
    if target == "nodejs" {
        args.extend(["--", "--features", "server"]);
    }
    let out = run_tee(
        Command::new("wasm-pack")
            .args(&args)
            .current_dir(&ctx.root)
            .env("CARGO_TARGET_DIR", &ctx.target_dir),
    );
    if out.success() {
        return Ok(ctx.root.join(out_dir));
    }
    let mut msg = format!(
        "wasm-pack build --target {target} failed ({})",
        out.describe()
    );
    if let Some(hint) = wasm_opt_hint(&out.output) {
        ui::problem("wasm-pack", hint);
        msg.push_str(": wasm-opt rejected the module's wasm features (see the hint above)");
    }
    Err(msg)
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

/// The `.wasm` and `.js` files of a wasm-pack output folder (snippets included), sorted.
pub fn package_files(dir: &Path) -> Vec<PathBuf> {
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
            } else if matches!(p.extension().and_then(|x| x.to_str()), Some("wasm" | "js")) {
                found.push(p);
            }
        }
    }
    // the .wasm first, then the glue
    found.sort_by_key(|p| {
        (
            p.extension().and_then(|x| x.to_str()) != Some("wasm"),
            p.clone(),
        )
    });
    found
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

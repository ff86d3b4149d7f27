//! Pure parsers for the output of the tools xtask drives. Everything here is unit-tested.

/// Removes ANSI escape sequences (colours), so parsing works on terminal output too.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // CSI: parameters and intermediates, then one final byte in @..~
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Sums of every libtest-style `test result:` line (cargo test, wasm-bindgen-test-runner).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TestCounts {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
    /// How many `test result:` lines were seen (one per test binary that ran to the end).
    pub results: u64,
}

impl TestCounts {
    /// Adds the counts of another run of the same tier.
    pub fn add(&mut self, other: TestCounts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.ignored += other.ignored;
        self.results += other.results;
    }
}

/// Parses `test result: ok. 5 passed; 1 failed; 2 ignored; 0 measured; 0 filtered out; ...`
/// lines anywhere in `output` and sums them.
pub fn cargo_test_counts(output: &str) -> TestCounts {
    let mut counts = TestCounts::default();
    for line in strip_ansi(output).lines() {
        let Some(at) = line.find("test result:") else {
            continue;
        };
        let rest = &line[at + "test result:".len()..];
        let mut seen = false;
        for part in rest.split(';') {
            let words: Vec<&str> = part.split_whitespace().collect();
            let [.., number, label] = words.as_slice() else {
                continue;
            };
            let Ok(n) = number.parse::<u64>() else {
                continue;
            };
            match *label {
                "passed" => counts.passed += n,
                "failed" => counts.failed += n,
                "ignored" => counts.ignored += n,
                _ => continue,
            }
            seen = true;
        }
        if seen {
            counts.results += 1;
        }
    }
    counts
}

/// The final counts of Node's TAP reporter (`# pass N`, `# fail M`, `# cancelled K`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TapCounts {
    pub pass: u64,
    pub fail: u64,
    pub cancelled: u64,
}

/// Reads the summary comments at the end of `node --test --test-reporter=tap` output. Only
/// unindented lines count (indented ones belong to subtests); the last value of each wins.
/// `None` when there is no `# pass` line at all (the runner did not get to the end).
pub fn tap_counts(output: &str) -> Option<TapCounts> {
    let mut counts = TapCounts::default();
    let mut seen = false;
    for line in strip_ansi(output).lines() {
        let Some(rest) = line.strip_prefix("# ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let (Some(label), Some(number), None) = (words.next(), words.next(), words.next()) else {
            continue;
        };
        let Ok(n) = number.parse::<u64>() else {
            continue;
        };
        match label {
            "pass" => {
                counts.pass = n;
                seen = true;
            }
            "fail" => counts.fail = n,
            "cancelled" => counts.cancelled = n,
            _ => {}
        }
    }
    seen.then_some(counts)
}

/// Every version of package `name` in a Cargo.lock, in file order.
pub fn lock_versions(lock: &str, name: &str) -> Vec<String> {
    let mut versions = Vec::new();
    let mut current_name: Option<String> = None;
    for line in lock.lines() {
        let line = line.trim();
        if line == "[[package]]" {
            current_name = None;
            continue;
        }
        if let Some(v) = toml_string_field(line, "name") {
            current_name = Some(v);
        } else if let Some(v) = toml_string_field(line, "version") {
            if current_name.as_deref() == Some(name) {
                versions.push(v);
            }
        }
    }
    versions
}

/// `key = "value"` -> `value`
fn toml_string_field(line: &str, key: &str) -> Option<String> {
    let rest = line.strip_prefix(key)?.trim_start();
    let rest = rest.strip_prefix('=')?.trim();
    let inner = rest.strip_prefix('"')?.strip_suffix('"')?;
    Some(inner.to_string())
}

/// The emulator's first stdout line, `listening on http://HOST:PORT`, as `http://HOST:PORT`.
pub fn listening_url(line: &str) -> Option<String> {
    let line = strip_ansi(line);
    let rest = line.trim().strip_prefix("listening on")?.trim();
    let url = rest.split_whitespace().next()?;
    let hostport = url.strip_prefix("http://")?.trim_end_matches('/');
    let (host, port) = hostport.rsplit_once(':')?;
    if host.is_empty() || host.contains('/') || port.parse::<u16>().ok()? == 0 {
        return None;
    }
    Some(format!("http://{hostport}"))
}

/// The version in a tool's `--version` output: `wasm-pack 0.15.1` / `geckodriver 0.37.1 (...)`
/// / `v20.1.0` -> `0.15.1` / `0.37.1` / `20.1.0`: the first word on the first line that starts
/// with a digit (after an optional `v`).
pub fn tool_version(output: &str) -> Option<String> {
    let first = output.lines().find(|l| !l.trim().is_empty())?;
    first.split_whitespace().find_map(|w| {
        let w = w.strip_prefix('v').unwrap_or(w);
        w.starts_with(|c: char| c.is_ascii_digit())
            .then(|| w.trim_end_matches(',').to_string())
    })
}

/// The port of a `HOST:PORT` socket address (`127.0.0.1:8787`, `[::1]:8787`).
pub fn addr_port(addr: &str) -> Option<u16> {
    addr.rsplit_once(':')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_cargo_test_results() {
        let out = "\
running 3 tests
test a ... ok
test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s

     Running tests/api.rs (target/debug/deps/api-123)
test result: FAILED. 10 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.20s
   Doc-tests segops_sdk
test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";
        assert_eq!(
            cargo_test_counts(out),
            TestCounts {
                passed: 13,
                failed: 2,
                ignored: 1,
                results: 3
            }
        );
    }

    #[test]
    fn parses_wasm_bindgen_test_runner_and_coloured_output() {
        let out = "Running headless tests in Chrome on `http://127.0.0.1:9515/`\n\
            test result: \u{1b}[32mok\u{1b}[0m. 4 passed; 0 failed; 0 ignored; 0 filtered out; finished in 0.12s\n";
        let c = cargo_test_counts(out);
        assert_eq!((c.passed, c.failed, c.results), (4, 0, 1));
    }

    #[test]
    fn no_result_lines_means_nothing_ran() {
        let out = "error[E0425]: cannot find value `x`\nerror: could not compile `segops-sdk`\n";
        assert_eq!(cargo_test_counts(out), TestCounts::default());
    }

    #[test]
    fn reads_node_tap_summary() {
        let out = "\
TAP version 13
# Subtest: tracks
    # Subtest: inner
    ok 1 - inner
    # pass 1
ok 1 - tracks
not ok 2 - fails
# tests 3
# suites 0
# pass 2
# fail 1
# cancelled 1
# skipped 0
# todo 0
# duration_ms 95.1
";
        assert_eq!(
            tap_counts(out),
            Some(TapCounts {
                pass: 2,
                fail: 1,
                cancelled: 1
            })
        );
        assert_eq!(tap_counts("TAP version 13\nnode: bad option\n"), None);
    }

    #[test]
    fn extracts_versions_from_cargo_lock() {
        let lock = r#"
version = 4

[[package]]
name = "wasm-bindgen"
version = "0.2.130"
source = "registry+https://index.example"
dependencies = [
 "wasm-bindgen-macro",
]

[[package]]
name = "wasm-bindgen-macro"
version = "0.2.130"

[[package]]
name = "syn"
version = "1.0.109"

[[package]]
name = "syn"
version = "2.0.100"
"#;
        assert_eq!(lock_versions(lock, "wasm-bindgen"), vec!["0.2.130"]);
        assert_eq!(lock_versions(lock, "syn"), vec!["1.0.109", "2.0.100"]);
        assert!(lock_versions(lock, "serde").is_empty());
        // the lock file's own `version = 4` is not attributed to any package
        assert!(lock_versions(lock, "").is_empty());
    }

    #[test]
    fn parses_the_listening_line() {
        assert_eq!(
            listening_url("listening on http://127.0.0.1:43117\n").as_deref(),
            Some("http://127.0.0.1:43117")
        );
        assert_eq!(
            listening_url("listening on http://[::1]:8787/").as_deref(),
            Some("http://[::1]:8787")
        );
        for bad in [
            "",
            "starting up",
            "listening on 127.0.0.1:80",
            "listening on http://127.0.0.1",
            "listening on http://127.0.0.1:0",
            "listening on http://:80",
        ] {
            assert_eq!(listening_url(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reads_tool_versions() {
        assert_eq!(
            tool_version("wasm-bindgen 0.2.130\n").as_deref(),
            Some("0.2.130")
        );
        assert_eq!(
            tool_version("geckodriver 0.37.1 (abc 2025-01-01)\n\nThis program...").as_deref(),
            Some("0.37.1")
        );
        assert_eq!(tool_version("v20.20.2").as_deref(), Some("20.20.2"));
        assert_eq!(tool_version("").as_deref(), None);
    }

    #[test]
    fn reads_ports() {
        assert_eq!(addr_port("127.0.0.1:8787"), Some(8787));
        assert_eq!(addr_port("[::1]:9000"), Some(9000));
        assert_eq!(addr_port("localhost"), None);
    }
}

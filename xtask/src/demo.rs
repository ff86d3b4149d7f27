//! `cargo xtask demo`: the package's browser build (`pkg/web/`) copied to www-demo/pkg, the
//! emulator serving the API and the demo page on one origin, with dev keys printed and written
//! for the page.

use std::ffi::OsString;
use std::fs;

use crate::emulator::{self, Emulator, Output};
use crate::json::quote;
use crate::setup::{self, Needs};
use crate::{parse, pkg, ui, Ctx};

pub const DEFAULT_ADDR: &str = "127.0.0.1:8787";

/// Returns the process exit code.
pub fn run(ctx: &Ctx, addr: &str) -> i32 {
    let tools = setup::setup(ctx, Needs::Build);
    if tools.wasm_pack.is_none() || tools.wasm_bindgen.is_none() || !tools.wasm_target {
        ui::problem(
            "demo",
            "cannot build the web package; fix the setup problems above",
        );
        return 1;
    }
    let built = pkg::Builds::default().package(ctx).and_then(|dir| {
        ui::heading("pkg/web -> www-demo/pkg");
        pkg::copy_dir(&dir.join("web"), &ctx.root.join("www-demo/pkg"))
    });
    if let Err(e) = built {
        ui::problem("demo", e);
        return 1;
    }
    ui::heading("emulator");
    let bin = match emulator::build(ctx) {
        Ok(b) => b,
        Err(e) => {
            ui::problem("demo", e);
            return 1;
        }
    };
    let state = ctx.root.join(".segops");
    if let Err(e) = fs::create_dir_all(&state) {
        ui::problem("demo", format!("{}: {e}", state.display()));
        return 1;
    }
    let mut args: Vec<OsString> = [
        "--addr",
        addr,
        "--db",
        ".segops/demo.db",
        "--static",
        "www-demo",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    // The page is served by the emulator itself, so its origin must be allowed.
    for origin in demo_origins(addr) {
        args.push("--dev-origin".into());
        args.push(origin.into());
    }
    let mut emu = match Emulator::start(
        "emulator",
        &bin,
        &ctx.root,
        &args,
        &state.join("dev-keys.json"),
        Output::Console,
    ) {
        Ok(e) => e,
        Err(e) => {
            ui::problem("demo", e);
            println!(
                "    Is {addr} already in use? Pick another address: cargo xtask demo --addr 127.0.0.1:8788"
            );
            return 1;
        }
    };
    crate::proc::ignore_sigint();
    let k = &emu.keys;
    let config = format!(
        "{{\n  \"apiUrl\": {},\n  \"publicKey\": {},\n  \"signedPublicKey\": {},\n  \"signedPublicKeyId\": {}\n}}\n",
        quote(&emu.url),
        quote(&k.public_key),
        quote(&k.signed_public_key),
        quote(&k.signed_public_key_id)
    );
    if let Err(e) = fs::write(ctx.root.join("www-demo/dev-config.json"), config) {
        ui::problem("demo", format!("www-demo/dev-config.json: {e}"));
    }
    let page = format!("{}/", browser_url(&emu.url));
    println!();
    println!("==================== SegOps demo ====================");
    println!("  Demo page:          {page}");
    if !ctx.root.join("www-demo/index.html").is_file() {
        println!("                      (www-demo/index.html does not exist yet: only the API and");
        println!("                      www-demo/pkg are served)");
    }
    println!("  API:                {}", emu.url);
    println!(
        "  Owner login:        {} / {}",
        k.owner_email, k.owner_password
    );
    println!("  Tenant:             {}", k.tenant);
    println!(
        "  Secret key:         {}  (id {})",
        k.secret_key, k.secret_key_id
    );
    println!(
        "  Public key:         {}  (id {})",
        k.public_key, k.public_key_id
    );
    println!(
        "  Signed public key:  {}  (id {})",
        k.signed_public_key, k.signed_public_key_id
    );
    println!("  Its HMAC secret:    {}", k.signed_hmac_secret);
    println!("  Allowed origins:    {}", k.allowed_origins.join(", "));
    println!("  Keys file:          .segops/dev-keys.json (page config: www-demo/dev-config.json)");
    println!("  Data:               .segops/demo.db (delete it to start afresh)");
    println!("  Press Ctrl-C to stop.");
    println!("=====================================================");
    println!();
    match emu.wait() {
        Ok(s) if s.success() => 0,
        Ok(s) => {
            ui::step("emulator", format!("exited: {s}"));
            s.code().unwrap_or(1)
        }
        Err(e) => {
            ui::problem("emulator", e);
            1
        }
    }
}

/// The origins a browser uses for a page served at `addr`.
fn demo_origins(addr: &str) -> Vec<String> {
    let Some(port) = parse::addr_port(addr) else {
        return Vec::new();
    };
    let host = &addr[..addr.len() - port.to_string().len() - 1];
    let mut origins = vec![
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
    ];
    if !matches!(host, "127.0.0.1" | "localhost" | "0.0.0.0" | "[::]" | "") {
        origins.push(format!("http://{host}:{port}"));
    }
    origins
}

/// A listening URL a browser can open (`0.0.0.0` is not one).
fn browser_url(url: &str) -> String {
    url.replace("://0.0.0.0:", "://127.0.0.1:")
        .replace("://[::]:", "://127.0.0.1:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_for_the_demo_address() {
        assert_eq!(
            demo_origins("127.0.0.1:8787"),
            vec!["http://127.0.0.1:8787", "http://localhost:8787"]
        );
        assert_eq!(demo_origins("192.168.1.5:9000").len(), 3);
        assert!(demo_origins("nonsense").is_empty());
        assert_eq!(browser_url("http://0.0.0.0:8787"), "http://127.0.0.1:8787");
    }
}

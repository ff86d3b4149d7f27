//! segops-emulator: a local SegOps API server implementing docs/protocol.md.

mod api;
mod auth;
mod config;
mod db;
mod error;
mod origin;
mod server;
mod sign;
mod util;

use config::{Config, ConfigError};
use serde_json::json;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TENANT: &str = "acme";

fn main() -> ExitCode {
    let cfg = match Config::parse(std::env::args().skip(1), |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(ConfigError::Help) => {
            print!("{}", config::HELP);
            return ExitCode::SUCCESS;
        }
        Err(ConfigError::Bad(m)) => {
            eprintln!("segops-emulator: {m}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("segops-emulator: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(m) => {
            eprintln!("segops-emulator: {m}");
            ExitCode::FAILURE
        }
    }
}

fn secret_or_generated(value: Option<String>, name: &str, what: &str) -> String {
    value.unwrap_or_else(|| {
        eprintln!(
            "{name} is not set: generated a random one for this run ({what} will not survive a restart)"
        );
        util::random_alnum(48)
    })
}

async fn run(cfg: Config) -> Result<(), String> {
    let owner_secret = secret_or_generated(cfg.owner_secret.clone(), "SECRET_KEY", "owner tokens");
    let session_secret = secret_or_generated(
        cfg.session_secret.clone(),
        "SEGOPS_SESSION_JWT_SECRET",
        "session tokens",
    );
    let store = db::Store::open(&cfg.db)?;
    let tenant_id = store
        .ensure_tenant(TENANT)
        .map_err(|e| format!("creating tenant {TENANT}: {e}"))?;
    store
        .upsert_owner(tenant_id, cfg.owner_email.trim(), &cfg.owner_password)
        .map_err(|e| format!("creating the owner: {e}"))?;

    let listener = tokio::net::TcpListener::bind(&cfg.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.addr))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;

    let app = Arc::new(server::App {
        store,
        signers: auth::Signers::new(&owner_secret, &session_secret),
        session_ttl: cfg.session_ttl,
        jwt_ingest: cfg.jwt_ingest,
        static_dir: cfg.static_dir.clone(),
        log: cfg.log,
        stats: Mutex::new(server::Stats::default()),
        faults: Mutex::new(server::FaultBook::default()),
    });

    // Dev keys are written before the listening line, so that a tool which waits for that
    // line finds the file complete.
    let dev_lines = match &cfg.dev_keys_out {
        Some(path) => dev_keys(&app, &cfg, addr, tenant_id, path)?,
        None => Vec::new(),
    };

    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on http://{addr}");
    let _ = out.flush();
    for line in dev_lines {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
    drop(out);

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serve = axum::serve(listener, server::router(app)).with_graceful_shutdown(async {
        let _ = stop_rx.await;
    });
    let mut serve = tokio::spawn(async move { serve.await });
    tokio::select! {
        r = &mut serve => {
            return match r {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(format!("server error: {e}")),
                Err(e) => Err(format!("server task failed: {e}")),
            };
        }
        _ = shutdown_signal() => {}
    }
    eprintln!("shutting down");
    let _ = stop_tx.send(());
    // Open keep-alive connections get a few seconds to finish.
    let _ = tokio::time::timeout(Duration::from_secs(5), serve).await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Creates a fresh set of dev keys, writes them to `path`, and returns lines to print.
fn dev_keys(
    app: &server::Shared,
    cfg: &Config,
    addr: SocketAddr,
    tenant_id: i64,
    path: &std::path::Path,
) -> Result<Vec<String>, String> {
    let port = addr.port();
    let api_host = if addr.ip().is_unspecified() {
        format!("127.0.0.1:{port}")
    } else {
        addr.to_string()
    };
    let api_url = format!("http://{api_host}");
    let origins = if cfg.dev_origins.is_empty() {
        vec![
            format!("http://127.0.0.1:{port}"),
            format!("http://localhost:{port}"),
        ]
    } else {
        cfg.dev_origins.clone()
    };
    let err = |e: error::ApiError| format!("creating dev keys: {}", e.message);
    let (secret, secret_k) = api::new_key(
        app,
        tenant_id,
        TENANT,
        "dev secret key",
        "secret",
        vec![],
        vec!["ingest".into(), "read".into()],
        false,
    )
    .map_err(err)?;
    let (public, public_k) = api::new_key(
        app,
        tenant_id,
        TENANT,
        "dev public key",
        "public",
        origins.clone(),
        vec!["ingest".into()],
        false,
    )
    .map_err(err)?;
    let (signed, signed_k) = api::new_key(
        app,
        tenant_id,
        TENANT,
        "dev signed public key",
        "public",
        origins.clone(),
        vec!["ingest".into()],
        true,
    )
    .map_err(err)?;
    let hmac = signed_k.hmac_secret.clone().unwrap_or_default();
    let doc = json!({
        "api_url": api_url,
        "owner_email": cfg.owner_email.trim(),
        "owner_password": cfg.owner_password,
        "tenant": TENANT,
        "secret_key": secret,
        "secret_key_id": secret_k.id,
        "public_key": public,
        "public_key_id": public_k.id,
        "signed_public_key": signed,
        "signed_public_key_id": signed_k.id,
        "signed_hmac_secret": hmac,
        "allowed_origins": origins,
    });
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
    }
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n";
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(vec![
        format!("api url: {api_url}"),
        format!(
            "owner login: {} / {}",
            cfg.owner_email.trim(),
            cfg.owner_password
        ),
        format!("tenant: {TENANT}"),
        format!("secret key (servers): {secret}  (id {})", secret_k.id),
        format!("public key (browsers): {public}  (id {})", public_k.id),
        format!(
            "signed public key (browsers, signed user ids): {signed}  (id {})",
            signed_k.id
        ),
        format!("hmac secret of the signed public key: {hmac}"),
        format!("allowed origins: {}", origins.join(", ")),
        format!("dev keys written to {}", path.display()),
    ])
}

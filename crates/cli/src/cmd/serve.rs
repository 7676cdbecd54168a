//! `kizuna serve`: the TAXII 2.1 hub over HTTPS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use kizuna_store::Store;
use kizuna_sync::state::SyncDb;
use kizuna_taxii::{AppState, ServerConfig, TlsMode};

use crate::config::Config;
use crate::hub;
use crate::live::{self, LivePartners};

/// Arguments of `kizuna serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:9443; port 0 picks a free one).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// PEM certificate chain. Without one, a self-signed certificate for localhost is made in the
    /// data directory.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// PEM CA bundle for client certificates (mutual TLS).
    #[arg(long, value_name = "PEM")]
    client_ca: Option<PathBuf>,
    /// Serve plain HTTP: passwords and intelligence cross the network in clear.
    #[arg(long)]
    danger_plaintext_http: bool,
    /// Once listening, write {url, discovery, api_root, collection, cert, fingerprint} as JSON
    /// to this file (for scripts and tests that start the hub on port 0).
    #[arg(long, value_name = "FILE")]
    ready_file: Option<PathBuf>,
}

/// Runs `kizuna serve` until Ctrl-C or SIGTERM. `config_path` is the `--config` given, if any:
/// its `[[partner]]` tables are re-read on SIGHUP and at every sync round.
pub fn run(
    config: &Config,
    config_path: Option<&Path>,
    args: ServeArgs,
) -> anyhow::Result<ExitCode> {
    let store = hub::open_initialised(config)?;
    let listen = args.listen.unwrap_or(config.server.listen);
    let plaintext = args.danger_plaintext_http || config.server.danger_plaintext_http;
    let client_ca = args.client_ca.or_else(|| config.server.client_ca.clone());
    let tls = if plaintext {
        if args.tls_cert.is_some() || client_ca.is_some() {
            bail!("--danger-plaintext-http cannot be combined with TLS settings");
        }
        TlsMode::DangerPlaintextHttp
    } else {
        match (
            args.tls_cert.or_else(|| config.server.tls_cert.clone()),
            args.tls_key.or_else(|| config.server.tls_key.clone()),
        ) {
            (Some(cert), Some(key)) => TlsMode::Tls {
                cert,
                key,
                client_ca,
            },
            (None, None) => TlsMode::SelfSigned {
                dir: config.data.clone(),
                client_ca,
            },
            _ => bail!("tls_cert and tls_key must be set together"),
        }
    };
    let default_collection = default_collection(store.as_ref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        kizuna_taxii::tls::install_crypto_provider();
        let store: Arc<dyn Store> = store;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let federation = start_federation(config, config_path, store.clone(), stop_rx)?;
        let mut service = config.service();
        service.default_api_root = default_collection.as_ref().map(|(root, _)| root.clone());
        service.egress = federation.partners.egress();
        service.ledger = Some(federation.db.clone());
        let readers = service.egress.accounts();
        if !readers.is_empty() {
            eprintln!("  egress policy on TAXII reads by: {}", readers.join(", "));
        }
        let state = AppState::new(store, service)?;
        let watch = crate::watch::start(config, state.store.clone())?;
        let watch_metrics = watch.as_ref().map(crate::watch::Watch::metrics);
        // The federation status and the watched directories in /metrics.
        let federation_metrics = federation.metrics();
        state.metrics.set_extra(Arc::new(move |out: &mut String| {
            federation_metrics(out);
            if let Some(m) = &watch_metrics {
                m.render(out);
            }
        }));
        let server = kizuna_taxii::start(ServerConfig::new(listen, tls), state).await?;
        let url = server.url();
        let discovery = format!("{url}/taxii2/");
        tracing::info!(%discovery, "kizuna hub listening");
        eprintln!("Kizuna hub listening: {discovery}");
        if let Some(path) = server.certificate_path() {
            let fp = server
                .certificate_fingerprint()
                .map(|f| f.to_string())
                .unwrap_or_default();
            eprintln!("  TLS certificate: {} (SHA-256 {fp})", path.display());
        } else {
            eprintln!("  WARNING: plain HTTP (--danger-plaintext-http): everything is sent in clear");
        }
        if let Some((root, id)) = &default_collection {
            eprintln!("  collection: {url}/{root}/collections/{id}/objects/");
        }
        eprintln!(
            "  try: curl --cacert {} -u admin:PASSWORD {discovery}",
            server
                .certificate_path()
                .map_or_else(|| "-".to_owned(), |p| p.display().to_string())
        );
        if let Some(path) = &args.ready_file {
            let ready = serde_json::json!({
                "url": url,
                "discovery": discovery,
                "api_root": default_collection.as_ref().map(|c| &c.0),
                "collection": default_collection.as_ref().map(|c| &c.1),
                "cert": server.certificate_path().map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())),
                "fingerprint": server.certificate_fingerprint().map(|f| f.to_string()),
            });
            // Written to a temporary name and renamed, so a reader never sees half a file.
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, serde_json::to_vec_pretty(&ready)?)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            std::fs::rename(&tmp, path)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        shutdown_signal().await;
        eprintln!("shutting down");
        let _ = stop_tx.send(true);
        server.shutdown().await;
        for task in federation.tasks {
            let _ = task.await;
        }
        if let Some(watch) = watch {
            let _ = tokio::task::spawn_blocking(move || watch.stop()).await;
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// What `kizuna serve` runs beside the TAXII server for federation.
struct Federation {
    /// The sync database, which is also the egress ledger every exit writes (push, TAXII reads by
    /// partner accounts, export).
    db: Arc<SyncDb>,
    /// The `[[partner]]` tables in force, and the TAXII server's egress map built from them.
    partners: Arc<LivePartners>,
    engine: Arc<kizuna_sync::SyncEngine>,
    /// The sync rounds and the SIGHUP reloads; both end when `stop` turns true.
    tasks: [tokio::task::JoinHandle<()>; 2],
}

impl Federation {
    /// The federation status in /metrics, for the partners in force (nothing without partners).
    fn metrics(&self) -> Arc<dyn Fn(&mut String) + Send + Sync> {
        let (engine, partners) = (self.engine.clone(), self.partners.clone());
        Arc::new(move |out: &mut String| {
            let names: Vec<String> = partners.partners().iter().map(|p| p.name.clone()).collect();
            if !names.is_empty() {
                engine.render_metrics(&names, out);
            }
        })
    }
}

/// Opens the sync database, loads the partners (checked as `kizuna sync` and every later reload
/// check them, so that a file accepted now is not refused at the first reload), and starts the
/// sync rounds (every `[sync] interval_seconds`, each re-reading the `[[partner]]` tables first,
/// see [`crate::live`]) and the SIGHUP reloads, until `stop` turns true.
fn start_federation(
    config: &Config,
    config_path: Option<&Path>,
    store: Arc<dyn Store>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Federation> {
    let interval = config.sync.interval_seconds;
    if !(interval.is_finite() && interval > 0.0) {
        bail!("[sync] interval_seconds must be a positive number of seconds, not {interval}");
    }
    let db = Arc::new(
        SyncDb::open(&config.data)
            .with_context(|| format!("cannot open the sync state in {}", config.data.display()))?,
    );
    let config_file = live::config_file(config_path);
    let initial = match &config_file {
        Some(path) => kizuna_sync::config::load_partners(path)?,
        None => config.partners.clone(),
    };
    if !initial.is_empty() {
        eprintln!(
            "  federation: {} partner(s), every {interval} s",
            initial.len()
        );
    }
    let partners = Arc::new(LivePartners::new(config_file, initial));
    let engine = Arc::new(kizuna_sync::SyncEngine::new(
        store,
        db.clone(),
        kizuna_sync::SyncOptions::default(),
    ));
    let reload_task = live::spawn_reload_on_sighup(partners.clone(), stop.clone());
    let mut stop = stop;
    let round_partners = partners.clone();
    let sync_task = tokio::spawn(engine.clone().run_rounds(
        move || {
            let partners = round_partners.clone();
            async move {
                let reloaded = partners.clone();
                if let Err(e) = tokio::task::spawn_blocking(move || reloaded.reload()).await {
                    tracing::error!(error = %e, "partner configuration reload failed");
                }
                partners.partners()
            }
        },
        std::time::Duration::from_secs_f64(interval),
        async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        },
    ));
    Ok(Federation {
        db,
        partners,
        engine,
        tasks: [sync_task, reload_task],
    })
}

/// The first collection of the first API root, to show how to connect.
fn default_collection(store: &dyn Store) -> anyhow::Result<Option<(String, String)>> {
    for root in store.api_roots()? {
        if let Some(c) = store.collections(&root.name)?.into_iter().next() {
            return Ok(Some((root.name, c.id)));
        }
    }
    Ok(None)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
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

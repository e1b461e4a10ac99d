//! istiod (Istio's `pilot-discovery`) against the local control plane: the real consumer of the Gateway and
//! VirtualServices, serving the Envoy configuration a proxy would get on a plaintext xDS port.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cfnet_testenv::Error> {
//! use cfnet_testenv::{ControlPlane, Istiod, IstiodOptions};
//! let cp = ControlPlane::start().await?;
//! let istiod = Istiod::start(&cp, IstiodOptions::default()).await?;
//! let xds = istiod.xds_addr(); // plaintext gRPC (ADS)
//! # let _ = xds; Ok(()) }
//! ```
//!
//! Recipe (verified-facts.md): namespace istio-system first; env `POD_NAMESPACE=istio-system POD_NAME=…
//! INJECTION_WEBHOOK_CONFIG_NAME= VALIDATION_WEBHOOK_CONFIG_NAME= ENABLE_CA_SERVER=false`; `discovery
//! --kubeconfig … --meshConfig … --httpAddr … --grpcAddr … --monitoringAddr … --secureGRPCAddr ""`; ready when
//! `GET /ready` on the HTTP address is 200. Every listener is on 127.0.0.1, including ControlZ and the webhook
//! server, whose defaults (`localhost:9876`, `:15017`) would collide between parallel tests.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};

mod launch;

use crate::process::Server;
use crate::{ControlPlane, Error, binaries, install, istio_webhook, mesh_config};
use launch::{CertFiles, Plan};

/// istiod's namespace (`POD_NAMESPACE`): it reads its mesh-wide settings and writes its leases here.
pub const ISTIO_NAMESPACE: &str = "istio-system";

/// How to run istiod. `IstiodOptions::default()`: Gateway API off, Istio's validating webhook on.
#[derive(Clone, Debug)]
pub struct IstiodOptions {
    /// `PILOT_ENABLE_GATEWAY_API=true`: istiod also translates Gateway API objects. Their CRDs come from a
    /// control-plane option; without them istiod starts all the same and waits for them (docs/istio.md).
    pub gateway_api: bool,
    /// Register Istio's validating webhook with the API server (served by this istiod over HTTPS on
    /// 127.0.0.1 with a fresh certificate), so invalid Istio objects are refused as on a real cluster. It is
    /// removed again when the `Istiod` is stopped or dropped. The configuration has one fixed name, like Istio's:
    /// at most one `Istiod` per control plane should have it on.
    pub validation_webhook: bool,
    /// Extra environment of istiod, set after ours (so it may override), e.g. `PILOT_DEBOUNCE_AFTER=10ms`.
    pub env: Vec<(String, String)>,
    /// Give up when istiod is not ready (and the webhook not in effect) after this long.
    pub ready_timeout: Duration,
    /// When pilot-discovery is missing, build it (`cfnet dev install`; 10-20 minutes the first time) instead
    /// of failing at once. On by default, like [`crate::Options::install_missing`].
    pub install_missing: bool,
}

impl Default for IstiodOptions {
    fn default() -> Self {
        IstiodOptions {
            gateway_api: false,
            validation_webhook: true,
            env: Vec::new(),
            ready_timeout: Duration::from_secs(60),
            install_missing: true,
        }
    }
}

/// A running istiod. Dropping it removes its webhook configuration and stops it (see `process.rs`: it also
/// dies with our process).
pub struct Istiod {
    server: Server,
    client: Client,
    kubeconfig: PathBuf,
    webhook_registered: bool,
    http_addr: SocketAddr,
    xds_addr: SocketAddr,
    monitoring_addr: SocketAddr,
    webhook_addr: Option<SocketAddr>,
    mesh_config: PathBuf,
    version: String,
    startup: Duration,
}

impl std::fmt::Debug for Istiod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Istiod")
            .field("pid", &self.server.pid())
            .field("xds_addr", &self.xds_addr)
            .field("http_addr", &self.http_addr)
            .field("webhook_addr", &self.webhook_addr)
            .field("log", &self.server.log())
            .finish()
    }
}

impl Istiod {
    /// Starts istiod against `cp` (creating namespace istio-system if needed) and waits until it is ready and,
    /// with [`IstiodOptions::validation_webhook`], until the API server calls its webhook.
    pub async fn start(cp: &ControlPlane, options: IstiodOptions) -> Result<Istiod, Error> {
        let started = Instant::now();
        let binary = match binaries::locate_istiod() {
            Err(Error::MissingIstiod { .. }) if options.install_missing => {
                install_missing_istiod().await?
            }
            located => located?,
        };
        let version = installed_version(&binary);
        ensure_namespace(cp.client(), ISTIO_NAMESPACE).await?;

        let dir = cp.state_dir();
        let mesh_config = dir.join("istiod-mesh.yaml");
        crate::write_private(&mesh_config, &mesh_config::mesh_config_yaml()?)?;
        let certs = if options.validation_webhook {
            Some(launch::write_certs(&dir.join("istiod-certs"))?)
        } else {
            None
        };
        let plan = Plan {
            binary: &binary,
            kubeconfig: cp.kubeconfig_path(),
            mesh_config: &mesh_config,
            certs: certs.as_ref(),
            log: dir.join("istiod.log"),
            graceful: cp.keeps_state(),
            options: &options,
        };
        let deadline = started + options.ready_timeout;
        let (server, ports) =
            crate::retry_on_port_taken(|| launch::start_once(&plan, deadline)).await?;
        let loopback = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut istiod = Istiod {
            server,
            client: cp.client(),
            kubeconfig: cp.kubeconfig_path().to_path_buf(),
            webhook_registered: false,
            http_addr: loopback(ports.http),
            xds_addr: loopback(ports.grpc),
            monitoring_addr: loopback(ports.monitoring),
            webhook_addr: certs.as_ref().map(|_| loopback(ports.webhook)),
            mesh_config,
            version,
            startup: Duration::ZERO,
        };
        if let Some(certs) = &certs {
            istiod
                .register_webhook(cp, certs, started, deadline)
                .await?;
        }
        istiod.startup = started.elapsed();
        tracing::info!(xds = %istiod.xds_addr, pid = istiod.pid(), startup = ?istiod.startup, webhook = ?istiod.webhook_addr, "istiod ready");
        Ok(istiod)
    }

    /// Registers Istio's validating webhook pointing at this istiod and waits until the API server calls it.
    async fn register_webhook(
        &mut self,
        cp: &ControlPlane,
        certs: &CertFiles,
        started: Instant,
        deadline: Instant,
    ) -> Result<(), Error> {
        let Some(addr) = self.webhook_addr else {
            return Ok(());
        };
        // From here on, a failure drops `self`, which removes the configuration again.
        self.webhook_registered = true;
        let url = format!("https://{addr}/validate");
        istio_webhook::register(
            cp.client(),
            &istio_webhook::configuration(&url, &certs.ca_pem),
        )
        .await?;
        let deadline = deadline.max(Instant::now() + Duration::from_secs(10));
        if let Err(last) = istio_webhook::wait_effective(cp.client(), deadline).await {
            return Err(Error::WebhookNotEffective {
                timeout: started.elapsed(),
                webhook_url: url,
                last,
                log: self.log_path().to_path_buf(),
                log_tail: crate::process::log_tail(self.log_path()),
            });
        }
        Ok(())
    }

    /// The plaintext gRPC address serving ADS (xDS), `127.0.0.1:<port>`.
    pub fn xds_addr(&self) -> SocketAddr {
        self.xds_addr
    }

    /// The HTTP address: `/ready`, `/debug/...` (e.g. `/debug/configz`, `/debug/syncz`).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The monitoring address: `/metrics` (Prometheus).
    pub fn monitoring_addr(&self) -> SocketAddr {
        self.monitoring_addr
    }

    /// The HTTPS address serving `/validate`, when the validating webhook is on.
    pub fn webhook_addr(&self) -> Option<SocketAddr> {
        self.webhook_addr
    }

    /// istiod's process id.
    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    /// istiod's log, `<state dir>/istiod.log`.
    pub fn log_path(&self) -> &Path {
        self.server.log()
    }

    /// The mesh config istiod reads (`<state dir>/istiod-mesh.yaml`).
    pub fn mesh_config_path(&self) -> &Path {
        &self.mesh_config
    }

    /// The istio.io/istio module version of the binary, from `pilot-discovery.version` next to it.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Time from the call to `start` until istiod was ready (and its webhook in effect).
    pub fn startup_duration(&self) -> Duration {
        self.startup
    }

    /// `Err` naming istiod and its log tail if it has exited.
    pub fn check_running(&mut self) -> Result<(), Error> {
        match self.server.exit_status() {
            Some(status) => Err(self.server.exited_error(status)),
            None => Ok(()),
        }
    }

    /// `GET http://<http_addr><path>`: status and body, e.g. of `/ready` or `/debug/configz`.
    pub async fn http_get(&self, path: &str) -> Result<(http::StatusCode, String), Error> {
        get(self.http_addr, path).await
    }

    /// Removes the webhook configuration (the API server is still up: an async client works), then stops
    /// istiod (also done on drop).
    pub async fn stop(&mut self) -> Result<(), Error> {
        let removed = if self.webhook_registered {
            self.webhook_registered = false;
            istio_webhook::remove(self.client.clone()).await
        } else {
            Ok(())
        };
        self.server.stop();
        removed
    }
}

impl Drop for Istiod {
    fn drop(&mut self) {
        // Before istiod stops: with `failurePolicy: Fail` a configuration pointing at a dead server would
        // refuse every Istio write.
        if self.webhook_registered {
            istio_webhook::remove_blocking(&self.kubeconfig);
        }
        self.server.stop();
    }
}

/// The version recorded by the installer next to the binary.
fn installed_version(binary: &Path) -> String {
    std::fs::read_to_string(binary.with_file_name("pilot-discovery.version"))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

async fn ensure_namespace(client: Client, name: &str) -> Result<(), Error> {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        ..Default::default()
    };
    match Api::<Namespace>::all(client)
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(()),
        Err(e) => Err(Error::kube(format!("creating namespace {name}"))(e)),
    }
}

/// `GET http://<addr><path>` (e.g. `/metrics` on [`Istiod::monitoring_addr`]): status and body.
pub async fn get(addr: SocketAddr, path: &str) -> Result<(http::StatusCode, String), Error> {
    launch::http_get(&launch::http_client(), addr, path).await
}

/// Builds istiod once per process (the script itself locks the cache against other processes).
async fn install_missing_istiod() -> Result<PathBuf, Error> {
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    crate::install_once(&INSTALLING, "the istiod installer", binaries::locate_istiod, || {
        eprintln!("cfnet-testenv: istiod (pilot-discovery) missing; building it (first run: 10-20 minutes)");
        let report = install::install_istiod()?;
        eprintln!(
            "cfnet-testenv: installed istiod {} at {}",
            report.version,
            report.path.display()
        );
        Ok(())
    })
    .await
}

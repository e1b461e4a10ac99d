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

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};

use crate::process::Server;
use crate::{ControlPlane, Error, binaries, install, istio_webhook, mesh_config, secrets};

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

/// The listeners of one istiod.
#[derive(Clone, Copy, Debug)]
struct Ports {
    http: u16,
    grpc: u16,
    monitoring: u16,
    webhook: u16,
}

/// What every start attempt shares.
struct Plan<'a> {
    binary: &'a Path,
    kubeconfig: &'a Path,
    mesh_config: &'a Path,
    certs: Option<&'a CertFiles>,
    log: PathBuf,
    graceful: bool,
    options: &'a IstiodOptions,
}

struct CertFiles {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    ca_pem: String,
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
            Some(write_certs(&dir.join("istiod-certs"))?)
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

        // Free ports are picked by binding port 0 and releasing it: another process may grab one in between.
        const ATTEMPTS: usize = 3;
        let mut attempt = 1;
        let (server, ports) = loop {
            match start_once(&plan, deadline).await {
                Err(Error::ServerExited {
                    server,
                    status,
                    log,
                    log_tail,
                }) if attempt < ATTEMPTS && log_tail.contains("address already in use") => {
                    tracing::warn!(server, %status, log = %log.display(), attempt, "port taken during start-up; retrying");
                    attempt += 1;
                }
                other => break other?,
            }
        };
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
        if let (Some(certs), Some(addr)) = (&certs, istiod.webhook_addr) {
            // From here on, a failure drops `istiod`, which removes the configuration again.
            istiod.webhook_registered = true;
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
                    log: istiod.log_path().to_path_buf(),
                    log_tail: crate::process::log_tail(istiod.log_path()),
                });
            }
        }
        istiod.startup = started.elapsed();
        tracing::info!(xds = %istiod.xds_addr, pid = istiod.pid(), startup = ?istiod.startup, webhook = ?istiod.webhook_addr, "istiod ready");
        Ok(istiod)
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

/// Spawns istiod on fresh ports and waits until `/ready` is 200 and the xDS port accepts connections.
async fn start_once(plan: &Plan<'_>, deadline: Instant) -> Result<(Server, Ports), Error> {
    let [http, grpc, monitoring, webhook] = crate::free_ports()?;
    let ports = Ports {
        http,
        grpc,
        monitoring,
        webhook,
    };
    let mut server = Server::spawn_with_env(
        "istiod",
        plan.binary,
        &args(plan, ports),
        &env(plan.options),
        &plan.log,
        plan.graceful,
    )?;
    let client = http_client();
    let http_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, ports.http));
    let xds_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, ports.grpc));
    loop {
        if let Some(status) = server.exit_status() {
            return Err(server.exited_error(status));
        }
        let last = match http_get(&client, http_addr, "/ready").await {
            Ok((status, _)) if status.is_success() => {
                match tokio::net::TcpStream::connect(xds_addr).await {
                    Ok(_) => return Ok((server, ports)),
                    Err(e) => format!("/ready is 200 but the xDS port {xds_addr}: {e}"),
                }
            }
            Ok((status, body)) => format!("{status} {}", body.trim()),
            Err(e) => e.to_string(),
        };
        if Instant::now() > deadline {
            return Err(Error::IstiodNotReady {
                timeout: plan.options.ready_timeout,
                url: format!("http://{http_addr}/ready"),
                last,
                log: plan.log.clone(),
                log_tail: crate::process::log_tail(&plan.log),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// pilot-discovery's command line.
fn args(plan: &Plan<'_>, ports: Ports) -> Vec<String> {
    let mut args = vec![
        "discovery".to_string(),
        format!("--kubeconfig={}", plan.kubeconfig.display()),
        format!("--meshConfig={}", plan.mesh_config.display()),
        format!("--httpAddr=127.0.0.1:{}", ports.http),
        format!("--grpcAddr=127.0.0.1:{}", ports.grpc),
        format!("--monitoringAddr=127.0.0.1:{}", ports.monitoring),
        // No CA, so no mTLS xDS.
        "--secureGRPCAddr=".to_string(),
        // ControlZ defaults to localhost:9876, which parallel istiods would fight over.
        "--ctrlz_address=127.0.0.1".to_string(),
        "--ctrlz_port=0".to_string(),
        // Connections are not drained on shutdown (default 10 s): nothing here needs it.
        "--shutdownDuration=1s".to_string(),
    ];
    match plan.certs {
        Some(certs) => args.extend([
            format!("--httpsAddr=127.0.0.1:{}", ports.webhook),
            format!("--tlsCertFile={}", certs.cert.display()),
            format!("--tlsKeyFile={}", certs.key.display()),
            format!("--caCertFile={}", certs.ca.display()),
        ]),
        // Webhooks move onto the plain HTTP address instead of a listener on :15017.
        None => args.push("--httpsAddr=".to_string()),
    }
    args
}

/// pilot-discovery's environment: ours, then the caller's extra variables.
fn env(options: &IstiodOptions) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("POD_NAMESPACE", ISTIO_NAMESPACE),
        ("POD_NAME", "istiod-cfnet-testenv"),
        // istiod must not look for (and patch) webhook configurations of its own: we register ours.
        ("INJECTION_WEBHOOK_CONFIG_NAME", ""),
        ("VALIDATION_WEBHOOK_CONFIG_NAME", ""),
        (
            "PILOT_ENABLE_GATEWAY_API",
            if options.gateway_api { "true" } else { "false" },
        ),
        ("ENABLE_CA_SERVER", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.extend(options.env.iter().cloned());
    env
}

fn write_certs(dir: &Path) -> Result<CertFiles, Error> {
    std::fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    let serving = secrets::loopback_serving_cert("istiod cfnet-testenv webhook")?;
    let files = CertFiles {
        ca: dir.join("ca.crt"),
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
        ca_pem: serving.ca_pem,
    };
    crate::write_private(&files.ca, &files.ca_pem)?;
    crate::write_private(&files.cert, &serving.cert_pem)?;
    crate::write_private(&files.key, &serving.key_pem)?;
    Ok(files)
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
    http_get(&http_client(), addr, path).await
}

fn http_client() -> HttpClient<HttpConnector, Empty<Bytes>> {
    HttpClient::builder(TokioExecutor::new()).build_http()
}

async fn http_get(
    client: &HttpClient<HttpConnector, Empty<Bytes>>,
    addr: SocketAddr,
    path: &str,
) -> Result<(http::StatusCode, String), Error> {
    let url = format!("http://{addr}{path}");
    let err = |message: String| Error::Http {
        url: url.clone(),
        message,
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| err(e.to_string()))?;
    let response = tokio::time::timeout(Duration::from_secs(5), client.get(uri))
        .await
        .map_err(|_| err("no answer within 5 s".into()))?
        .map_err(|e| err(e.to_string()))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| err(e.to_string()))?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Builds istiod once per process (the script itself locks the cache against other processes).
async fn install_missing_istiod() -> Result<PathBuf, Error> {
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let installed = tokio::task::spawn_blocking(|| {
        let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Ok(found) = binaries::locate_istiod() {
            return Ok(found);
        }
        eprintln!("cfnet-testenv: istiod (pilot-discovery) missing; building it (first run: 10-20 minutes)");
        let report = install::install_istiod()?;
        eprintln!(
            "cfnet-testenv: installed istiod {} at {}",
            report.version,
            report.path.display()
        );
        binaries::locate_istiod()
    })
    .await;
    installed.map_err(|e| Error::InstallerFailed {
        installer: "the istiod installer",
        status: e.to_string(),
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan<'a>(options: &'a IstiodOptions, certs: Option<&'a CertFiles>) -> Plan<'a> {
        Plan {
            binary: Path::new("/bin/pilot-discovery"),
            kubeconfig: Path::new("/s/kubeconfig"),
            mesh_config: Path::new("/s/istiod-mesh.yaml"),
            certs,
            log: PathBuf::from("/s/istiod.log"),
            graceful: false,
            options,
        }
    }

    const PORTS: Ports = Ports {
        http: 1,
        grpc: 2,
        monitoring: 3,
        webhook: 4,
    };

    #[test]
    fn every_listener_is_on_loopback() {
        let options = IstiodOptions::default();
        let certs = CertFiles {
            ca: "/c/ca.crt".into(),
            cert: "/c/tls.crt".into(),
            key: "/c/tls.key".into(),
            ca_pem: String::new(),
        };
        for certs in [None, Some(&certs)] {
            let args = args(&plan(&options, certs), PORTS);
            for flag in [
                "--httpAddr=",
                "--grpcAddr=",
                "--monitoringAddr=",
                "--ctrlz_address=",
            ] {
                let value = args.iter().find_map(|a| a.strip_prefix(flag)).unwrap();
                assert!(value.starts_with("127.0.0.1"), "{flag}{value}");
            }
            let https = args
                .iter()
                .find_map(|a| a.strip_prefix("--httpsAddr="))
                .unwrap();
            assert!(https.is_empty() || https == "127.0.0.1:4", "{https}");
            assert!(args.contains(&"--secureGRPCAddr=".to_string()));
        }
    }

    #[test]
    fn the_webhook_server_gets_the_certificate_files() {
        let options = IstiodOptions::default();
        let certs = CertFiles {
            ca: "/c/ca.crt".into(),
            cert: "/c/tls.crt".into(),
            key: "/c/tls.key".into(),
            ca_pem: String::new(),
        };
        let args = args(&plan(&options, Some(&certs)), PORTS);
        for expected in [
            "--httpsAddr=127.0.0.1:4",
            "--tlsCertFile=/c/tls.crt",
            "--tlsKeyFile=/c/tls.key",
            "--caCertFile=/c/ca.crt",
        ] {
            assert!(
                args.contains(&expected.to_string()),
                "{expected} in {args:?}"
            );
        }
    }

    #[test]
    fn extra_env_comes_last_and_gateway_api_is_an_option() {
        let env_of = |options: &IstiodOptions, key: &str| {
            env(options)
                .into_iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
        };
        let mut options = IstiodOptions::default();
        assert_eq!(
            env_of(&options, "PILOT_ENABLE_GATEWAY_API").as_deref(),
            Some("false")
        );
        assert_eq!(
            env_of(&options, "VALIDATION_WEBHOOK_CONFIG_NAME").as_deref(),
            Some("")
        );
        options.gateway_api = true;
        options
            .env
            .push(("PILOT_DEBOUNCE_AFTER".into(), "10ms".into()));
        options.env.push(("ENABLE_CA_SERVER".into(), "true".into()));
        assert_eq!(
            env_of(&options, "PILOT_ENABLE_GATEWAY_API").as_deref(),
            Some("true")
        );
        assert_eq!(
            env_of(&options, "PILOT_DEBOUNCE_AFTER").as_deref(),
            Some("10ms")
        );
        assert_eq!(
            env_of(&options, "ENABLE_CA_SERVER").as_deref(),
            Some("true")
        );
    }
}

//! A real local Kubernetes control plane — etcd and kube-apiserver as plain processes on loopback, like
//! controller-runtime's envtest — for integration tests, the benchmark and `cfnet dev up`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cfnet_testenv::Error> {
//! let cp = cfnet_testenv::ControlPlane::start().await?; // Route + Istio CRDs installed and Established
//! let ns = cp.create_namespace("my-test").await?;
//! let client = cp.client(); // admin (system:masters)
//! # let _ = (ns, client); Ok(()) }
//! ```
//!
//! Dropping the [`ControlPlane`] stops both servers and removes the temp dir; the servers also die with the
//! process if it is killed (see `process.rs`). [`Istiod`] adds istiod against it (`istiod.rs`).

mod binaries;
pub mod chart;
mod crds;
mod error;
pub mod install;
pub mod istio_webhook;
pub mod istiod;
mod kubeconfig;
pub mod mesh_config;
mod process;
mod secrets;
mod state;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};

pub use binaries::{Binaries, cache_bin_dir, locate as locate_binaries, locate_istiod};
pub use crds::{all_crds, gateway_api_crds};
pub use error::Error;
pub use istiod::{Istiod, IstiodOptions};

use process::Server;
use state::{free_ports, write_private};

/// How to start a control plane. `Options::default()` is what [`ControlPlane::start`] uses.
#[derive(Clone, Debug)]
pub struct Options {
    /// Keep all state (etcd data, certificates, logs, kubeconfig) in this directory and do not delete it on
    /// drop. `None`: a fresh temp dir, removed on drop.
    pub state_dir: Option<PathBuf>,
    /// Install the Route and Istio CRDs and wait until they are Established.
    pub install_crds: bool,
    /// Also install the Gateway API standard CRDs (sigs.k8s.io/gateway-api v1.6.3, with their CEL rules)
    /// and wait until they are Established. Off by default.
    pub gateway_api_crds: bool,
    /// Give up when kube-apiserver is not ready after this long.
    pub ready_timeout: Duration,
    /// Extra kube-apiserver flags (`--name=value`), appended after ours.
    pub extra_apiserver_args: Vec<String>,
    /// When etcd or kube-apiserver is missing, run the installer (`cfnet dev install`; minutes on the first
    /// run, then cached) instead of failing at once. On by default so that a test run on a fresh machine
    /// installs what it needs; `cfnet dev up` turns it off and names the command instead.
    pub install_missing: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            state_dir: None,
            install_crds: true,
            gateway_api_crds: false,
            ready_timeout: Duration::from_secs(60),
            extra_apiserver_args: Vec::new(),
            install_missing: true,
        }
    }
}

/// A running etcd + kube-apiserver pair. Dropping it stops both (SIGTERM, then SIGKILL) and removes the
/// temp dir.
pub struct ControlPlane {
    // Field order is drop order: the API server stops before etcd, the directory goes last.
    apiserver: Server,
    etcd: Server,
    dir: state::StateDir,
    client: Client,
    server_url: String,
    etcd_url: String,
    ca_path: PathBuf,
    kubeconfig_path: PathBuf,
    version: String,
    startup: Duration,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("server_url", &self.server_url)
            .field("etcd_url", &self.etcd_url)
            .field("dir", &self.dir.path())
            .field("apiserver_pid", &self.apiserver.pid())
            .field("etcd_pid", &self.etcd.pid())
            .finish()
    }
}

/// Admin identity of the static token file: member of `system:masters`.
const ADMIN_USER: &str = "cfnet-admin";
/// Prefix of temp dirs, followed by the owning pid: lets a later start clean up after a killed process.
const TEMP_PREFIX: &str = "cfnet-testenv-";

impl ControlPlane {
    /// Starts a fresh control plane in a temp dir with the Route and Istio CRDs installed.
    pub async fn start() -> Result<ControlPlane, Error> {
        Self::start_with(Options::default()).await
    }

    /// Starts a control plane as configured by `options`.
    pub async fn start_with(options: Options) -> Result<ControlPlane, Error> {
        let binaries = match binaries::locate() {
            Err(Error::MissingBinary { .. }) if options.install_missing => {
                install_missing_binaries().await?
            }
            located => located?,
        };
        retry_on_port_taken(|| Self::start_once(&binaries, &options)).await
    }

    async fn start_once(binaries: &Binaries, options: &Options) -> Result<ControlPlane, Error> {
        let started = Instant::now();
        let dir = state::StateDir::prepare(options.state_dir.as_deref())?;
        let root = dir.path().to_path_buf();
        let kubeconfig_path = root.join("kubeconfig");
        // A kubeconfig from an earlier run would point at dead ports: it appears again only once we are ready.
        state::remove_if_present(&kubeconfig_path)?;
        let secrets = state::Secrets::write(&root)?;
        let ca_path = secrets.cert_dir.join("apiserver.crt");

        let [etcd_port, peer_port, api_port] = free_ports()?;
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let server_url = format!("https://127.0.0.1:{api_port}");

        // A kept state dir gets a clean shutdown; a temp dir is deleted anyway, so its servers are SIGKILLed
        // (tests tear down in milliseconds instead of seconds).
        let graceful = matches!(dir, state::StateDir::Kept(_));
        let mut etcd = Server::spawn(
            "etcd",
            &binaries.etcd,
            &state::etcd_args(&binaries.etcd, &root, &etcd_url, &peer_url),
            &root.join("etcd.log"),
            graceful,
        )?;
        let mut apiserver_args = state::apiserver_args(&etcd_url, api_port, &server_url, &secrets);
        apiserver_args.extend(options.extra_apiserver_args.iter().cloned());
        let mut apiserver = spawn_apiserver(binaries, &apiserver_args, &root, graceful)?;

        let admin_yaml =
            kubeconfig::kubeconfig_yaml(&server_url, &ca_path, ADMIN_USER, &secrets.admin_token)?;
        let deadline = started + options.ready_timeout;
        let (client, crd_apply) = wait_until_ready(
            &mut etcd,
            &mut apiserver,
            &ca_path,
            &admin_yaml,
            deadline,
            options.ready_timeout,
            crds::Selection {
                route_and_istio: options.install_crds,
                gateway_api: options.gateway_api_crds,
            },
        )
        .await?;
        let version = client
            .apiserver_version()
            .await
            .map_err(Error::kube("reading the kube-apiserver version"))?
            .git_version;
        tracing::debug!(elapsed = ?started.elapsed(), "kube-apiserver ready");
        if let Some(apply) = crd_apply {
            crds_established(&client, apply, deadline).await?;
            tracing::debug!(elapsed = ?started.elapsed(), "CRDs Established");
        }
        if graceful {
            // A kept state dir may hold the Istio webhook configuration of a run that was killed: pointing at
            // a dead istiod with `failurePolicy: Fail`, it would refuse every Istio write.
            istio_webhook::remove(client.clone()).await?;
        }
        kubeconfig::write_atomically(&kubeconfig_path, &admin_yaml)?;
        let startup = started.elapsed();
        tracing::info!(%server_url, %version, ?startup, dir = %root.display(), "local control plane ready");
        Ok(ControlPlane {
            apiserver,
            etcd,
            dir,
            client,
            server_url,
            etcd_url,
            ca_path,
            kubeconfig_path,
            version,
            startup,
        })
    }

    /// A client authenticated as the admin (group `system:masters`). Cheap to clone.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The admin kubeconfig file (`<state dir>/kubeconfig`), usable by kubectl and by a controller process.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// `https://127.0.0.1:<port>` of kube-apiserver.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// `http://127.0.0.1:<port>` of etcd.
    pub fn etcd_url(&self) -> &str {
        &self.etcd_url
    }

    /// kube-apiserver's gitVersion, e.g. `v1.37.2`.
    pub fn apiserver_version(&self) -> &str {
        &self.version
    }

    /// The directory holding certificates, etcd data, logs (`etcd.log`, `kube-apiserver.log`) and kubeconfigs.
    pub fn state_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Time from the call to `start` until the API server was ready and the CRDs were Established.
    pub fn startup_duration(&self) -> Duration {
        self.startup
    }

    /// Whether the state dir is kept (`Options::state_dir`): servers then get SIGTERM before SIGKILL.
    pub(crate) fn keeps_state(&self) -> bool {
        matches!(self.dir, state::StateDir::Kept(_))
    }

    /// Process ids of (etcd, kube-apiserver).
    pub fn pids(&self) -> (u32, u32) {
        (self.etcd.pid(), self.apiserver.pid())
    }

    /// `Err` naming the server and its log tail if etcd or kube-apiserver has exited.
    pub fn check_running(&mut self) -> Result<(), Error> {
        for server in [&mut self.etcd, &mut self.apiserver] {
            if let Some(status) = server.exit_status() {
                return Err(server.exited_error(status));
            }
        }
        Ok(())
    }

    /// Stops both servers now (also done on drop).
    pub fn stop(&mut self) {
        self.apiserver.stop();
        self.etcd.stop();
    }

    /// Creates a fresh namespace `<prefix>-<unique suffix>` and returns its name. Namespaces never finish
    /// deleting without a controller-manager, so every test should use its own.
    pub async fn create_namespace(&self, prefix: &str) -> Result<String, Error> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = namespace_name(prefix, n, &secrets::random_hex(3)?);
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .map_err(Error::kube(format!("creating namespace {name}")))?;
        Ok(name)
    }

    /// A client authenticated as ServiceAccount `namespace/name` (created if missing) with a token from the
    /// TokenRequest API, so that tests can run the controller under the RBAC the project ships.
    pub async fn service_account_client(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Client, Error> {
        let yaml = self
            .service_account_kubeconfig_yaml(namespace, name)
            .await?;
        kubeconfig::client_from_yaml(&yaml, &format!("for ServiceAccount {namespace}/{name}")).await
    }

    /// Like [`Self::service_account_client`] but writes a kubeconfig file (in the state dir) and returns its
    /// path, for running the controller as a separate process.
    pub async fn service_account_kubeconfig(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<PathBuf, Error> {
        let yaml = self
            .service_account_kubeconfig_yaml(namespace, name)
            .await?;
        let path = self
            .dir
            .path()
            .join(format!("kubeconfig-sa-{namespace}-{name}"));
        kubeconfig::write_atomically(&path, &yaml)?;
        Ok(path)
    }

    async fn service_account_kubeconfig_yaml(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<String, Error> {
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..Default::default()
            },
            ..Default::default()
        };
        match api.create(&PostParams::default(), &sa).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_already_exists() => {}
            Err(e) => {
                return Err(Error::kube(format!(
                    "creating ServiceAccount {namespace}/{name}"
                ))(e));
            }
        }
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                expiration_seconds: Some(24 * 3600),
                ..Default::default()
            }),
            ..Default::default()
        };
        let response: TokenRequest = api
            .create_subresource("token", name, &PostParams::default(), &request)
            .await
            .map_err(Error::kube(format!(
                "requesting a token for ServiceAccount {namespace}/{name}"
            )))?;
        let token = response.status.and_then(|s| s.token).unwrap_or_default();
        let user = format!("system:serviceaccount:{namespace}:{name}");
        kubeconfig::kubeconfig_yaml(&self.server_url, &self.ca_path, &user, &token)
    }
}

type CrdApplied = Result<Vec<String>, Error>;

/// Aborts the task when dropped (a failed or cancelled start must not leave it retrying).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Polls until the serving certificate exists and `/readyz` answers `ok`; fails fast if a server exits.
async fn wait_until_ready(
    etcd: &mut Server,
    apiserver: &mut Server,
    ca_path: &Path,
    admin_yaml: &str,
    deadline: Instant,
    timeout: Duration,
    crds: crds::Selection,
) -> Result<(Client, Option<AbortOnDrop<CrdApplied>>), Error> {
    let mut client: Option<Client> = None;
    let mut crd_apply = None;
    let mut last = String::from("no answer yet");
    loop {
        for server in [&mut *etcd, &mut *apiserver] {
            if let Some(status) = server.exit_status() {
                return Err(server.exited_error(status));
            }
        }
        if client.is_none() && ca_path.metadata().is_ok_and(|m| m.len() > 0) {
            // The server may still be writing the certificate: a failure here is retried until the deadline.
            match kubeconfig::client_from_yaml(admin_yaml, "for the admin").await {
                Ok(c) => {
                    if !crds.is_empty() {
                        // Runs while the server finishes starting: CRD establishment overlaps the wait.
                        let apply = crds::apply_all(c.clone(), crds, deadline);
                        crd_apply = Some(AbortOnDrop(tokio::spawn(apply)));
                    }
                    client = Some(c);
                }
                Err(e) => last = e.to_string(),
            }
        }
        if let Some(c) = &client {
            let request = http::Request::get("/readyz").body(Vec::new());
            match request {
                Ok(request) => match c.request_text(request).await {
                    Ok(body) if body.trim() == "ok" => return Ok((c.clone(), crd_apply)),
                    Ok(body) => last = body,
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
        }
        if Instant::now() > deadline {
            return Err(Error::NotReady {
                timeout,
                last,
                log: apiserver.log().to_path_buf(),
                log_tail: process::log_tail(apiserver.log()),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `start` again (three attempts in all) while it fails because a server it spawned died on a port
/// taken: free ports are picked by binding port 0 and releasing it, and another process may grab one in
/// between.
pub(crate) async fn retry_on_port_taken<T, F, Fut>(mut start: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    const ATTEMPTS: usize = 3;
    let mut attempt = 1;
    loop {
        match start().await {
            Err(Error::ServerExited {
                server,
                status,
                log,
                log_tail,
            }) if attempt < ATTEMPTS && log_tail.contains("address already in use") => {
                tracing::warn!(server, %status, log = %log.display(), attempt, "port taken during start-up; retrying");
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Spawns kube-apiserver with `args`, logging to `<root>/kube-apiserver.log`.
fn spawn_apiserver(
    binaries: &Binaries,
    args: &[String],
    root: &Path,
    graceful: bool,
) -> Result<Server, Error> {
    Server::spawn(
        "kube-apiserver",
        &binaries.kube_apiserver,
        args,
        &root.join("kube-apiserver.log"),
        graceful,
    )
}

/// Waits for the CRD apply started during readiness, then until its CRDs are Established.
async fn crds_established(
    client: &Client,
    mut apply: AbortOnDrop<CrdApplied>,
    deadline: Instant,
) -> Result<(), Error> {
    let names = match (&mut apply.0).await {
        Ok(applied) => applied?,
        Err(e) => return Err(Error::CrdTask(e.to_string())),
    };
    let deadline = deadline.max(Instant::now() + Duration::from_secs(5));
    crds::wait_established(client.clone(), names, deadline).await
}

/// Runs the installer once per process (the script itself locks the cache against other processes).
async fn install_missing_binaries() -> Result<Binaries, Error> {
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    install_once(&INSTALLING, "the control-plane installer", binaries::locate, || {
        eprintln!("cfnet-testenv: etcd/kube-apiserver missing; installing them (first run: several minutes)");
        let report = install::install()?;
        eprintln!(
            "cfnet-testenv: installed kube-apiserver {} (source: {}) in {}",
            report.version,
            report.source,
            report.dir.display()
        );
        Ok(())
    })
    .await
}

/// On a blocking thread, one caller at a time (`lock`): `locate`, else `install` and `locate` again.
pub(crate) async fn install_once<T: Send + 'static>(
    lock: &'static std::sync::Mutex<()>,
    installer: &'static str,
    locate: fn() -> Result<T, Error>,
    install: fn() -> Result<(), Error>,
) -> Result<T, Error> {
    let installed = tokio::task::spawn_blocking(move || {
        let _one_at_a_time = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Ok(found) = locate() {
            return Ok(found);
        }
        install()?;
        locate()
    })
    .await;
    installed.map_err(|e| Error::InstallerFailed {
        installer,
        status: e.to_string(),
    })?
}

/// `<prefix>-<n>-<suffix>`, a valid DNS label (≤ 63 chars, lowercase alphanumerics and `-`).
fn namespace_name(prefix: &str, n: u64, suffix: &str) -> String {
    let mut clean: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let tail = format!("-{n}-{suffix}");
    clean.truncate(63 - tail.len());
    let clean = clean.trim_matches('-');
    let clean = if clean.is_empty() { "test" } else { clean };
    format!("{clean}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names_are_dns_labels() {
        assert_eq!(
            namespace_name("Route Test", 3, "abcdef"),
            "route-test-3-abcdef"
        );
        assert_eq!(namespace_name("--", 0, "aa"), "test-0-aa");
        let long = namespace_name(&"x".repeat(100), 12, "abcdef");
        assert!(long.len() <= 63, "{long}");
        assert!(long.ends_with("-12-abcdef"));
    }
}

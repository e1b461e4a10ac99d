//! The controller under test, run as a separate process from the same binary (`<cfnet> controller`), as it
//! is deployed: its own address space (so /proc measures only the controller), its own API client, and
//! its metrics read over HTTP.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::error::BenchError;
use crate::procfs::{self, ProcessSample};
use crate::prom::{self, Scrape};

/// How the controller is started.
#[derive(Clone, Debug)]
pub struct ControllerSettings {
    /// The `cfnet` binary; `controller` is passed as the subcommand.
    pub exe: PathBuf,
    pub kubeconfig: PathBuf,
    /// `ISTIO_GATEWAY_NAME`.
    pub gateway: String,
    /// `RESYNC_INTERVAL` in seconds.
    pub resync_seconds: u64,
    /// `--workers`: FQDN keys reconciled concurrently (the bare client uses the same concurrency).
    pub workers: usize,
    /// The controller's stdout and stderr go here.
    pub log: PathBuf,
    /// `--events`.
    pub events: cfnet_controller::Events,
}

pub struct ControllerProcess {
    // std Mutex: only try_wait runs under it, never across an await.
    child: Mutex<Child>,
    pid: u32,
    metrics_url: String,
    log: PathBuf,
    http: HttpClient<HttpConnector, Empty<Bytes>>,
    /// When the process was spawned.
    pub started_at: Instant,
}

fn free_port() -> Result<u16, std::io::Error> {
    // Bind to port 0 and release it: the kernel does not hand the same port out again right away.
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl ControllerProcess {
    /// Spawns the controller; returns right away (the bulk-add clock starts at the spawn, as upstream's
    /// started at `kubectl apply` of the Deployment).
    pub fn spawn(settings: &ControllerSettings) -> Result<Self, BenchError> {
        let fail = |detail: String| BenchError::ControllerStart {
            exe: settings.exe.clone(),
            detail,
        };
        if !settings.exe.is_file() {
            return Err(fail("the binary does not exist".to_string()));
        }
        let metrics_port = free_port().map_err(|e| fail(format!("no free port: {e}")))?;
        let health_port = free_port().map_err(|e| fail(format!("no free port: {e}")))?;
        let log = std::fs::File::create(&settings.log).map_err(|e| {
            fail(format!(
                "cannot create log file {}: {e}",
                settings.log.display()
            ))
        })?;
        let log_err = log.try_clone().map_err(|e| {
            fail(format!(
                "cannot reopen log file {}: {e}",
                settings.log.display()
            ))
        })?;
        let mut command = Command::new(&settings.exe);
        command
            .arg("controller")
            .arg("--kubeconfig")
            .arg(&settings.kubeconfig)
            .arg("--metrics-addr")
            .arg(format!("127.0.0.1:{metrics_port}"))
            .arg("--health-addr")
            .arg(format!("127.0.0.1:{health_port}"))
            .arg("--workers")
            .arg(settings.workers.to_string())
            .arg("--events")
            .arg(settings.events.as_str())
            .env("KUBECONFIG", &settings.kubeconfig)
            .env("ISTIO_GATEWAY_NAME", &settings.gateway)
            .env("RESYNC_INTERVAL", settings.resync_seconds.to_string())
            .env(
                "RUST_LOG",
                std::env::var("CFNET_BENCH_CONTROLLER_LOG").unwrap_or_else(|_| "info".to_string()),
            )
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .kill_on_drop(true);
        let started_at = Instant::now();
        let child = command.spawn().map_err(|e| fail(e.to_string()))?;
        let pid = child
            .id()
            .ok_or_else(|| fail("exited immediately".to_string()))?;
        Ok(Self {
            child: Mutex::new(child),
            pid,
            metrics_url: format!("http://127.0.0.1:{metrics_port}/metrics"),
            log: settings.log.clone(),
            http: HttpClient::builder(TokioExecutor::new()).build_http(),
            started_at,
        })
    }

    /// Fails if the controller has exited (a crash must not look like a slow phase).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn check_running(&self, phase: &str) -> Result<(), BenchError> {
        let mut child = self
            .child
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(BenchError::ControllerExited {
                phase: phase.to_string(),
                status: status.to_string(),
                log: self.log.display().to_string(),
            }),
            Err(e) => Err(BenchError::ControllerExited {
                phase: phase.to_string(),
                status: format!("cannot query: {e}"),
                log: self.log.display().to_string(),
            }),
        }
    }

    /// CPU and memory so far.
    pub fn sample(&self) -> Result<ProcessSample, BenchError> {
        procfs::sample(self.pid)
    }

    /// One scrape of `/metrics`.
    pub async fn scrape(&self) -> Result<Scrape, BenchError> {
        let fail = |detail: String| BenchError::Scrape {
            url: self.metrics_url.clone(),
            detail,
        };
        let uri: hyper::Uri = self.metrics_url.parse().map_err(|e| fail(format!("{e}")))?;
        let response = tokio::time::timeout(Duration::from_secs(10), self.http.get(uri))
            .await
            .map_err(|_| fail("no answer within 10 s".to_string()))?
            .map_err(|e| fail(e.to_string()))?;
        if !response.status().is_success() {
            return Err(fail(format!("HTTP {}", response.status())));
        }
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| fail(e.to_string()))?
            .to_bytes();
        let text = String::from_utf8_lossy(&body);
        prom::parse(&text)
    }

    /// Reads the final CPU and peak RSS, then stops the controller with SIGTERM (SIGKILL after 10 s).
    pub async fn stop(self) -> Result<ProcessSample, BenchError> {
        let sample = self.sample();
        // SAFETY: kill(2) with a pid we spawned and still own (the child has not been reaped: the
        // `Child` handle is alive), so the pid cannot have been reused.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        let mut child = self
            .child
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                pid = self.pid,
                "controller did not stop within 10 s of SIGTERM; killing it"
            );
            let _ = child.kill().await;
        }
        sample
    }
}

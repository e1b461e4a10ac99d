//! Launching pilot-discovery: its command line, environment and certificate files, and the wait until it
//! is ready.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::{ISTIO_NAMESPACE, IstiodOptions};
use crate::process::Server;
use crate::{Error, secrets};

/// The listeners of one istiod.
#[derive(Clone, Copy, Debug)]
pub(super) struct Ports {
    pub(super) http: u16,
    pub(super) grpc: u16,
    pub(super) monitoring: u16,
    pub(super) webhook: u16,
}

/// What every start attempt shares.
pub(super) struct Plan<'a> {
    pub(super) binary: &'a Path,
    pub(super) kubeconfig: &'a Path,
    pub(super) mesh_config: &'a Path,
    pub(super) certs: Option<&'a CertFiles>,
    pub(super) log: PathBuf,
    pub(super) graceful: bool,
    pub(super) options: &'a IstiodOptions,
}

pub(super) struct CertFiles {
    pub(super) ca: PathBuf,
    pub(super) cert: PathBuf,
    pub(super) key: PathBuf,
    pub(super) ca_pem: String,
}

/// Spawns istiod on fresh ports and waits until `/ready` is 200 and the xDS port accepts connections.
pub(super) async fn start_once(
    plan: &Plan<'_>,
    deadline: Instant,
) -> Result<(Server, Ports), Error> {
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

pub(super) fn write_certs(dir: &Path) -> Result<CertFiles, Error> {
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

pub(super) fn http_client() -> HttpClient<HttpConnector, Empty<Bytes>> {
    HttpClient::builder(TokioExecutor::new()).build_http()
}

pub(super) async fn http_get(
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

    fn certs() -> CertFiles {
        CertFiles {
            ca: "/c/ca.crt".into(),
            cert: "/c/tls.crt".into(),
            key: "/c/tls.key".into(),
            ca_pem: String::new(),
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
        let certs = certs();
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
        let certs = certs();
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

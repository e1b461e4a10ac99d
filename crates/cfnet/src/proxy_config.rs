//! `cfnet proxy-config routes|clusters|listeners`: the Envoy configuration istiod serves a proxy (by default
//! the CF ingress gateway), fetched over xDS by crates/xds and printed as a table or JSON. The model is
//! `istioctl proxy-config`, for a whole gateway and without a running Envoy.
//!
//! Exit codes: 0 printed; 1 istiod unreachable, refusing or incomplete, or the state dir has no istiod file
//! (one `cfnet proxy-config: …` line naming the address or file and what to do); 2 bad flags.
//!
//! Which proxy: Envoy configuration belongs to a workload (namespace + labels), not to a Gateway object.
//! `--proxy gateway:NS/NAME` (and, without --proxy, `$ISTIO_GATEWAY_NAME`, as the controller reads it) names a
//! Gateway object: its workload is read from the API server (gateway_workload.rs: labels = the Gateway's
//! selector, namespace = that of the Service selecting them). `--proxy gateway` (the default without
//! `ISTIO_GATEWAY_NAME`) needs no API server: the workload as the chart installs it, namespace `istio-system`,
//! labels `istio=ingressgateway`; `gateway:NS[:LABEL=VALUE,…]` and `sidecar:NS[:…]` name a workload directly.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use cfnet_xds::{Proxy, ProxyConfig, view};

use crate::gateway_workload;
use crate::kube_args::KubeArgs;
use crate::process::{self, LogFormat};
use crate::xds_args::{ISTIOD_FILE, XdsArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to list: `routes` (per route configuration and virtual host: domains, match, weighted clusters,
    /// headers added), `clusters` (with endpoint counts) or `listeners` (address, route configurations).
    #[arg(value_enum)]
    what: What,
    #[command(flatten)]
    xds: XdsArgs,
    /// --state-dir DIR of `cfnet dev up --istiod`: the xDS address is read from DIR/istiod; the kubeconfig
    /// (for `--proxy gateway:NS/NAME`) is DIR/kubeconfig unless --kubeconfig is given.
    #[command(flatten)]
    kube: KubeArgs,
    /// The proxy to ask for: `gateway` (the CF ingress gateway as the chart installs it: namespace
    /// istio-system, labels istio=ingressgateway), `gateway:NS/NAME` (the workload of that Istio Gateway, read
    /// from the API server), `gateway:NS[:LABEL=VALUE,...]` or `sidecar:NS[:LABEL=VALUE,...]`. Default:
    /// `gateway:$ISTIO_GATEWAY_NAME` when that is set, else `gateway`.
    #[arg(long, value_name = "PROXY")]
    proxy: Option<ProxyArg>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Give up when istiod has not served the whole configuration after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    timeout: u64,
    /// Also write the fetched configuration to FILE in the form `cfnet_xds::ProxyConfig::decode` reads
    /// (the fixtures of crates/xds/tests).
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
}

/// A `--proxy` value: a workload, or an Istio Gateway whose workload is looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyArg {
    Workload(Proxy),
    Gateway(String),
}

impl std::str::FromStr for ProxyArg {
    type Err = cfnet_xds::ParseProxyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.strip_prefix("gateway:") {
            Some(name) if name.contains('/') => Ok(ProxyArg::Gateway(name.to_owned())),
            _ => s.parse().map(ProxyArg::Workload),
        }
    }
}

/// `--proxy`, else the Gateway of `ISTIO_GATEWAY_NAME` (as the controller reads it: set and not empty), else
/// the chart's gateway workload.
fn proxy_arg(flag: Option<ProxyArg>, istio_gateway_name: Option<String>) -> ProxyArg {
    match (flag, istio_gateway_name) {
        (Some(p), _) => p,
        (None, Some(name)) if !name.is_empty() => ProxyArg::Gateway(name),
        (None, _) => ProxyArg::Workload(Proxy::default()),
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    Routes,
    Clusters,
    Listeners,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

pub fn run(args: Args) -> ExitCode {
    process::init_logging(LogFormat::Text, "warn");
    let addr = match resolve_address(&args.xds, args.kube.state_dir.as_deref()) {
        Ok(addr) => addr,
        Err((message, code)) => {
            eprintln!("cfnet proxy-config: {message}");
            return ExitCode::from(code);
        }
    };
    let proxy = proxy_arg(args.proxy.clone(), std::env::var("ISTIO_GATEWAY_NAME").ok());
    process::run_async("proxy-config", async move {
        let proxy = match proxy {
            ProxyArg::Workload(proxy) => proxy,
            ProxyArg::Gateway(name) => gateway_workload::resolve(&name, &args.kube)
                .await
                .map_err(|e| e.to_string())?,
        };
        let timeout = Duration::from_secs(args.timeout);
        let config = cfnet_xds::fetch(&addr, &proxy, timeout)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(path) = &args.save {
            std::fs::write(path, config.encode())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        if config.listeners.is_empty() {
            eprintln!(
                "cfnet proxy-config: istiod at {addr} serves {} no listener: for a gateway, a Service in its \
                 namespace must select its labels (the chart's istio-ingressgateway Service), and a Gateway must \
                 select them too",
                proxy
            );
        }
        print!("{}", output(args.what, args.output, &config));
        Ok::<(), String>(())
    })
}

/// The xDS address, or the message and exit status: 2 when neither `--xds` nor `--state-dir` is given (a
/// usage error), 1 when the state dir has no usable istiod file (`dev up` without `--istiod`, or stopped).
fn resolve_address(xds: &XdsArgs, state_dir: Option<&Path>) -> Result<String, (String, u8)> {
    match xds.address(state_dir) {
        Ok(Some(addr)) => Ok(addr),
        Err(e) => Err((e.to_string(), 1)),
        Ok(None) => match state_dir {
            Some(dir) => Err((
                format!(
                    "{} does not exist: istiod is not running for this state dir; start `cfnet dev up --istiod \
                     --state-dir {}` or pass --xds HOST:PORT",
                    dir.join(ISTIOD_FILE).display(),
                    dir.display()
                ),
                1,
            )),
            None => Err((
                "no istiod address: pass --xds HOST:PORT (istiod's plaintext gRPC port) or --state-dir DIR of \
                 `cfnet dev up --istiod`"
                    .to_owned(),
                2,
            )),
        },
    }
}

/// What is printed: one table, or a pretty JSON list (a trailing newline either way).
pub fn output(what: What, format: Format, config: &ProxyConfig) -> String {
    let json = |value: serde_json::Result<String>| {
        // The views are plain structs of strings and numbers: serializing them cannot fail.
        let mut text = value.unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string()));
        text.push('\n');
        text
    };
    match (what, format) {
        (What::Routes, Format::Table) => view::routes_table(&view::routes(config)),
        (What::Routes, Format::Json) => json(serde_json::to_string_pretty(&view::routes(config))),
        (What::Clusters, Format::Table) => view::clusters_table(&view::clusters(config)),
        (What::Clusters, Format::Json) => {
            json(serde_json::to_string_pretty(&view::clusters(config)))
        }
        (What::Listeners, Format::Table) => view::listeners_table(&view::listeners(config)),
        (What::Listeners, Format::Json) => {
            json(serde_json::to_string_pretty(&view::listeners(config)))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::Value;

    /// What istiod served the CF ingress gateway for the examples (crates/xds/tests/fixtures/README.md).
    fn gateway() -> ProxyConfig {
        ProxyConfig::decode(include_bytes!("../../xds/tests/fixtures/gateway.pb")).unwrap()
    }

    #[test]
    fn routes_json_has_the_contract_fields() {
        let out: Value =
            serde_json::from_str(&output(What::Routes, Format::Json, &gateway())).unwrap();
        let routes = out.as_array().unwrap();
        assert!(!routes.is_empty());
        for r in routes {
            for field in [
                "route_config",
                "domains",
                "match",
                "clusters",
                "request_headers_to_add",
            ] {
                assert!(r.get(field).is_some(), "{field} in {r}");
            }
            assert!(r["request_headers_to_add"].is_object(), "{r}");
            for c in r["clusters"].as_array().unwrap() {
                assert!(c["name"].is_string() && c["weight"].is_u64(), "{c}");
            }
        }
        // The weighted example: two clusters, 80/20 or the like, summing to 100.
        let weighted = routes
            .iter()
            .find(|r| r["clusters"].as_array().unwrap().len() == 2)
            .expect("a weighted route");
        let total: u64 = weighted["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["weight"].as_u64().unwrap())
            .sum();
        assert_eq!(total, 100, "{weighted}");
    }

    #[test]
    fn clusters_json_counts_endpoints() {
        let out: Value =
            serde_json::from_str(&output(What::Clusters, Format::Json, &gateway())).unwrap();
        let frontend = out
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"].as_str().unwrap().contains("s-dest-shop-frontend"))
            .expect("the frontend's cluster");
        assert_eq!(frontend["endpoints"], 2, "{frontend}");
    }

    #[test]
    fn tables_have_their_headers_and_are_deterministic() {
        let config = gateway();
        for (what, header) in [
            (What::Routes, "ROUTE CONFIG"),
            (What::Clusters, "CLUSTER"),
            (What::Listeners, "LISTENER"),
        ] {
            let table = output(what, Format::Table, &config);
            assert!(table.starts_with(header), "{table}");
            assert!(table.lines().count() > 1, "{table}");
            assert_eq!(table, output(what, Format::Table, &config));
        }
    }

    #[test]
    fn proxy_arg_table() {
        let gw = |s: &str| ProxyArg::Gateway(s.to_owned());
        let parse = |s: &str| s.parse::<ProxyArg>().unwrap();
        assert_eq!(parse("gateway"), ProxyArg::Workload(Proxy::default()));
        assert_eq!(
            parse("gateway:cf-system/istio-ingressgateway"),
            gw("cf-system/istio-ingressgateway")
        );
        assert_eq!(
            parse("sidecar:apps"),
            ProxyArg::Workload(Proxy::sidecar("apps", []))
        );
        assert!("router:x".parse::<ProxyArg>().is_err());
        let env = |s: &str| Some(s.to_owned());
        assert_eq!(proxy_arg(None, None), ProxyArg::Workload(Proxy::default()));
        assert_eq!(
            proxy_arg(None, env("")),
            ProxyArg::Workload(Proxy::default())
        );
        assert_eq!(proxy_arg(None, env("ns/gw")), gw("ns/gw"));
        assert_eq!(
            proxy_arg(Some(parse("gateway")), env("ns/gw")),
            ProxyArg::Workload(Proxy::default())
        );
    }

    #[test]
    fn address_resolution_and_exit_codes() {
        let none = XdsArgs::default();
        assert_eq!(resolve_address(&none, None).unwrap_err().1, 2);
        let dir = tempfile::tempdir().unwrap();
        let (message, code) = resolve_address(&none, Some(dir.path())).unwrap_err();
        assert_eq!(code, 1);
        assert!(message.contains("cfnet dev up --istiod"), "{message}");
        std::fs::write(dir.path().join(ISTIOD_FILE), "127.0.0.1:9\n").unwrap();
        assert_eq!(
            resolve_address(&none, Some(dir.path())).unwrap(),
            "127.0.0.1:9"
        );
    }
}

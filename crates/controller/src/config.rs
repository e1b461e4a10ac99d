//! The controller's configuration, compatible with the Go routecontroller's deployment (reference §2.1):
//! env `ISTIO_GATEWAY_NAME`, `LEADER_ELECTION_NAMESPACE`, `RESYNC_INTERVAL`, flags `--metrics-addr`,
//! `--enable-leader-election`. Parsing lives here (not in the binary) so that it is unit tested.
//! Beyond upstream: the routing API (`--routing-api istio|gateway-api`, env `CFNET_ROUTING_API`) and the
//! Gateway API parent (`--gateway-api-parent NS/NAME`, env `CFNET_GATEWAY_API_PARENT`), docs/gateway-api.md.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use cfnet_translate::{GatewayRef, RoutingApi};

/// Name of the Lease (and upstream's ConfigMap lock) the replicas elect a leader with.
pub const LEASE_NAME: &str = "cf-k8s-networking-routecontroller";
/// Upstream's default when `RESYNC_INTERVAL` is unset.
pub const DEFAULT_RESYNC_INTERVAL: Duration = Duration::from_secs(30);

/// Everything `run` needs besides a client.
#[derive(Clone, Debug)]
pub struct Config {
    /// `ISTIO_GATEWAY_NAME`: the gateway external routes are bound to (Istio mode).
    pub gateway: String,
    /// Which API the routes are programmed into; `Istio` (the default) is upstream's contract.
    pub routing_api: RoutingApi,
    /// The Gateway API Gateway the HTTPRoutes attach to in gateway-api mode.
    pub gateway_api_parent: GatewayRef,
    /// Every key is reconciled again after this long, as a backstop to the watches.
    pub resync_interval: Duration,
    /// Only these namespaces are watched; empty = all namespaces.
    pub namespaces: Vec<String>,
    /// `None`: this replica writes without electing a leader.
    pub leader_election: Option<LeaderElection>,
    /// Where `/metrics` is served; `None` disables the server (in-process users read [`crate::Metrics`]).
    pub metrics_addr: Option<SocketAddr>,
    /// Where `/healthz` and `/readyz` are served; `None` disables the server.
    pub health_addr: Option<SocketAddr>,
    /// Number of FQDN keys reconciled concurrently.
    pub workers: usize,
    /// Which Events are published on Routes (`--events`, `CFNET_EVENTS`).
    pub events: Events,
}

/// Which Events the controller publishes on Routes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Events {
    /// Every Event: `Created` / `Deleted` naming the children, `Programmed` on recovery, and the
    /// Warnings. Upstream's behaviour and the default.
    #[default]
    All,
    /// Only Warnings (a Route that is not programmed, and why). Saves one API write per programmed
    /// Route (the `Created` Event), a fifth of a bulk add's writes.
    Problems,
}

impl Events {
    pub fn as_str(self) -> &'static str {
        match self {
            Events::All => "all",
            Events::Problems => "problems",
        }
    }

    /// Is an Event of this type published?
    pub fn publishes(self, warning: bool) -> bool {
        warning || self == Events::All
    }
}

/// Parses `--events` / `CFNET_EVENTS`: `all` or `problems`.
pub fn parse_events(value: &str) -> Result<Events, ConfigError> {
    match value {
        "all" => Ok(Events::All),
        "problems" => Ok(Events::Problems),
        _ => Err(ConfigError::Events {
            value: value.to_string(),
        }),
    }
}

impl Config {
    /// A configuration with upstream's defaults, no servers and no leader election (tests, demo).
    pub fn new(gateway: impl Into<String>) -> Self {
        Config {
            gateway: gateway.into(),
            routing_api: RoutingApi::Istio,
            gateway_api_parent: GatewayRef::default(),
            resync_interval: DEFAULT_RESYNC_INTERVAL,
            namespaces: Vec::new(),
            leader_election: None,
            metrics_addr: None,
            health_addr: None,
            workers: 4,
            events: Events::All,
        }
    }
}

/// Leader election on a coordination.k8s.io Lease.
#[derive(Clone, Debug)]
pub struct LeaderElection {
    pub namespace: String,
    pub lease_name: String,
    /// Unique per replica (hostname + random suffix in the binary).
    pub identity: String,
    /// A holder that does not renew within this time loses the lease; a standby takes over after it.
    pub lease_duration: Duration,
    /// The holder renews this long before the lease expires.
    pub renew_before: Duration,
}

impl LeaderElection {
    /// Lease timings chosen so that a standby takes over within 15 s of the leader's death
    /// (lease 12 s + the standby's wake-up), like upstream's 15 s LeaseDuration.
    pub fn new(namespace: impl Into<String>, identity: impl Into<String>) -> Self {
        LeaderElection {
            namespace: namespace.into(),
            lease_name: LEASE_NAME.to_string(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(12),
            renew_before: Duration::from_secs(4),
        }
    }
}

/// A configuration problem; the message is the one line `cfnet controller` prints before exiting 1.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error(
        "ISTIO_GATEWAY_NAME not configured: set it to the gateway external routes are bound to, e.g. cf-system/istio-ingressgateway"
    )]
    GatewayMissing,
    #[error(
        "LEADER_ELECTION_NAMESPACE not configured: --enable-leader-election needs the namespace of the Lease {LEASE_NAME}"
    )]
    LeaderElectionNamespaceMissing,
    #[error(
        "could not parse the RESYNC_INTERVAL duration {value:?}: give a positive number of seconds, e.g. RESYNC_INTERVAL=900"
    )]
    ResyncInterval { value: String },
    #[error(
        "could not parse {flag} {value:?}: give host:port (e.g. 127.0.0.1:8080), :port for all interfaces, or 0 to disable"
    )]
    Address { flag: &'static str, value: String },
    #[error(
        "could not parse --events (CFNET_EVENTS) {value:?}: give all (every Event, the default) or problems (only Warnings)"
    )]
    Events { value: String },
}

/// The environment part of the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvConfig {
    pub gateway: String,
    pub leader_election_namespace: Option<String>,
    pub resync_interval: Duration,
}

impl EnvConfig {
    /// Reads the variables through `lookup` (e.g. `|k| std::env::var(k).ok()`), in upstream's order:
    /// gateway, leader-election namespace, resync.
    ///
    /// Unlike upstream, `LEADER_ELECTION_NAMESPACE` is required only when `leader_election` is on: the Go
    /// controller demanded it even when it never elected a leader (reference §6 limitation 7). And
    /// `ISTIO_GATEWAY_NAME` is required only in Istio mode: the gateway-api mode attaches to the Gateway
    /// API parent instead (and programs no internal route, the mesh gateway's).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        leader_election: bool,
        routing_api: RoutingApi,
    ) -> Result<Self, ConfigError> {
        // Upstream accepted an empty gateway name as long as the variable existed.
        let gateway = match (lookup("ISTIO_GATEWAY_NAME"), routing_api) {
            (Some(g), _) => g,
            (None, RoutingApi::GatewayApi) => String::new(),
            (None, RoutingApi::Istio) => return Err(ConfigError::GatewayMissing),
        };
        let leader_election_namespace = lookup("LEADER_ELECTION_NAMESPACE");
        if leader_election
            && leader_election_namespace
                .as_deref()
                .is_none_or(str::is_empty)
        {
            return Err(ConfigError::LeaderElectionNamespaceMissing);
        }
        let resync_interval = match lookup("RESYNC_INTERVAL") {
            None => DEFAULT_RESYNC_INTERVAL,
            Some(value) => parse_resync_interval(&value)?,
        };
        Ok(EnvConfig {
            gateway,
            leader_election_namespace,
            resync_interval,
        })
    }
}

/// Upstream parsed `time.ParseDuration(value + "s")`: integer or decimal seconds. We accept exactly
/// that and additionally reject zero and negative values, which would make every key spin.
pub fn parse_resync_interval(value: &str) -> Result<Duration, ConfigError> {
    let err = || ConfigError::ResyncInterval {
        value: value.to_string(),
    };
    let trimmed = value.strip_prefix('+').unwrap_or(value);
    let plain_decimal = !trimmed.is_empty()
        && trimmed.chars().all(|c| c.is_ascii_digit() || c == '.')
        && trimmed.chars().filter(|c| *c == '.').count() <= 1
        && trimmed != ".";
    if !plain_decimal {
        return Err(err());
    }
    let seconds: f64 = trimmed.parse().map_err(|_| err())?;
    if !(seconds > 0.0 && seconds.is_finite()) {
        return Err(err());
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| err())
}

/// Parses a listen address the way controller-runtime did: `:8080` = all interfaces, `0` = disabled.
pub fn parse_listen_addr(
    flag: &'static str,
    value: &str,
) -> Result<Option<SocketAddr>, ConfigError> {
    let err = || ConfigError::Address {
        flag,
        value: value.to_string(),
    };
    if value == "0" {
        return Ok(None);
    }
    if let Some(port) = value.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| err())?;
        return Ok(Some(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port,
        )));
    }
    if let Some(host_port) = value.strip_prefix("localhost:") {
        let port: u16 = host_port.parse().map_err(|_| err())?;
        return Ok(Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)));
    }
    value.parse().map(Some).map_err(|_| err())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn events_are_all_or_problems() {
        assert_eq!(Config::new("g").events, Events::All);
        assert_eq!(parse_events("all"), Ok(Events::All));
        assert_eq!(parse_events("problems"), Ok(Events::Problems));
        for bad in ["", "All", "none", "warnings"] {
            let e = parse_events(bad).unwrap_err();
            assert!(e.to_string().contains("give all"), "{e}");
        }
        assert!(Events::All.publishes(false) && Events::All.publishes(true));
        assert!(!Events::Problems.publishes(false) && Events::Problems.publishes(true));
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn c1_reads_all_three_variables() {
        let cfg = EnvConfig::from_lookup(
            env(&[
                ("ISTIO_GATEWAY_NAME", "some-gateway"),
                ("RESYNC_INTERVAL", "15"),
                ("LEADER_ELECTION_NAMESPACE", "my-good-namespace"),
            ]),
            true,
            RoutingApi::Istio,
        )
        .unwrap();
        assert_eq!(cfg.gateway, "some-gateway");
        assert_eq!(cfg.resync_interval, Duration::from_secs(15));
        assert_eq!(
            cfg.leader_election_namespace.as_deref(),
            Some("my-good-namespace")
        );
    }

    #[test]
    fn c2_gateway_is_required_with_upstream_wording() {
        let err = EnvConfig::from_lookup(
            env(&[
                ("RESYNC_INTERVAL", "15"),
                ("LEADER_ELECTION_NAMESPACE", "ns"),
            ]),
            true,
            RoutingApi::Istio,
        )
        .unwrap_err();
        assert_eq!(err, ConfigError::GatewayMissing);
        assert!(
            err.to_string()
                .starts_with("ISTIO_GATEWAY_NAME not configured")
        );
    }

    #[test]
    fn c3_leader_election_namespace_is_required_only_with_leader_election() {
        let vars = [("ISTIO_GATEWAY_NAME", "g"), ("RESYNC_INTERVAL", "15")];
        let err = EnvConfig::from_lookup(env(&vars), true, RoutingApi::Istio).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("LEADER_ELECTION_NAMESPACE not configured")
        );
        let cfg = EnvConfig::from_lookup(env(&vars), false, RoutingApi::Istio).unwrap();
        assert_eq!(cfg.leader_election_namespace, None);
    }

    #[test]
    fn c4_resync_defaults_to_30_seconds() {
        let cfg = EnvConfig::from_lookup(
            env(&[("ISTIO_GATEWAY_NAME", "g")]),
            false,
            RoutingApi::Istio,
        )
        .unwrap();
        assert_eq!(cfg.resync_interval, Duration::from_secs(30));
    }

    #[test]
    fn empty_gateway_is_accepted_like_upstream() {
        let cfg =
            EnvConfig::from_lookup(env(&[("ISTIO_GATEWAY_NAME", "")]), false, RoutingApi::Istio)
                .unwrap();
        assert_eq!(cfg.gateway, "");
    }

    #[test]
    fn the_istio_gateway_is_required_only_in_istio_mode() {
        let cfg = EnvConfig::from_lookup(env(&[]), false, RoutingApi::GatewayApi).unwrap();
        assert_eq!(cfg.gateway, "");
        assert_eq!(
            EnvConfig::from_lookup(env(&[]), false, RoutingApi::Istio).unwrap_err(),
            ConfigError::GatewayMissing
        );
        let cfg = EnvConfig::from_lookup(
            env(&[("ISTIO_GATEWAY_NAME", "g")]),
            false,
            RoutingApi::GatewayApi,
        )
        .unwrap();
        assert_eq!(cfg.gateway, "g");
    }

    #[test]
    fn resync_is_seconds_integer_or_decimal() {
        assert_eq!(
            parse_resync_interval("900").unwrap(),
            Duration::from_secs(900)
        );
        assert_eq!(
            parse_resync_interval("1.5").unwrap(),
            Duration::from_millis(1500)
        );
        for bad in ["15s", "", "abc", "-5", "0", "1.2.3", ".", "1e3"] {
            let err = parse_resync_interval(bad).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("could not parse the RESYNC_INTERVAL duration"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn listen_addresses_follow_controller_runtime() {
        assert_eq!(
            parse_listen_addr("--metrics-addr", ":8080").unwrap(),
            Some("0.0.0.0:8080".parse().unwrap())
        );
        assert_eq!(
            parse_listen_addr("--metrics-addr", "127.0.0.1:9000").unwrap(),
            Some("127.0.0.1:9000".parse().unwrap())
        );
        assert_eq!(parse_listen_addr("--metrics-addr", "0").unwrap(), None);
        assert!(
            parse_listen_addr("--health-addr", "nonsense")
                .unwrap_err()
                .to_string()
                .contains("--health-addr")
        );
    }
}

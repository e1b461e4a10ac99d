//! The `networking.cloudfoundry.org/v1alpha1` `Route`, as Cloud Controller writes it.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;

/// Finalizer the Go routecontroller put on Routes; kept so that an upgrade adopts existing Routes.
pub const FINALIZER: &str = "routes.networking.cloudfoundry.org";

/// RouteSpec defines the desired state of Route
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "networking.cloudfoundry.org",
    version = "v1alpha1",
    kind = "Route",
    plural = "routes",
    singular = "route",
    namespaced,
    derive = "PartialEq",
    status = "RouteStatus",
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".spec.url"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
pub struct RouteSpec {
    /// Host part of the FQDN; may be empty, in which case the FQDN is the domain name.
    pub host: String,
    /// Optional context path; when set it must start with `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `host.domain` + path, as Cloud Controller computes it. Used to order the routes of one FQDN.
    pub url: String,
    pub domain: RouteDomain,
    /// Where traffic goes; may be empty (the route then answers with the `no-destinations` placeholder).
    pub destinations: Vec<RouteDestination>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct RouteDomain {
    pub name: String,
    /// Internal domains are served on the `mesh` gateway instead of the ingress gateway.
    pub internal: bool,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct RouteDestination {
    /// Destination (route mapping) GUID; the Service is named `s-<guid>`.
    pub guid: String,
    /// Share of the route's traffic; set on all destinations of a route or on none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub weight: Option<i64>,
    /// Port of the app process.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i64,
    pub app: DestinationApp,
    pub selector: DestinationSelector,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct DestinationApp {
    pub guid: String,
    pub process: AppProcess,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct AppProcess {
    #[serde(rename = "type")]
    pub type_: String,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct DestinationSelector {
    #[serde(rename = "matchLabels")]
    pub match_labels: BTreeMap<String, String>,
}

/// RouteStatus defines the observed state of Route
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct RouteStatus {
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

impl RouteSpec {
    /// `host.domain`, or the domain alone when host is empty (upstream `Route.FQDN()`), in ASCII lower
    /// case. DNS names are case-insensitive, and Istio lower-cases VirtualService hosts into Envoy domains
    /// but binds a VirtualService to a Gateway server by comparing the strings as written, so a mixed-case
    /// host would get no HTTPS virtual host. Every key, name, host and annotation cfnet derives from the
    /// FQDN uses this form; for the lower-case FQDNs Cloud Controller writes it is upstream's exactly.
    pub fn fqdn(&self) -> String {
        let mut fqdn = if self.host.is_empty() {
            self.domain.name.clone()
        } else {
            format!("{}.{}", self.host, self.domain.name)
        };
        fqdn.make_ascii_lowercase();
        fqdn
    }

    /// The path, with an absent path read as empty.
    pub fn path(&self) -> &str {
        self.path.as_deref().unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use kube::Resource;

    use super::*;

    fn spec(host: &str, domain: &str) -> RouteSpec {
        RouteSpec {
            host: host.to_owned(),
            path: None,
            url: String::new(),
            domain: RouteDomain {
                name: domain.to_owned(),
                internal: false,
            },
            destinations: vec![],
        }
    }

    #[test]
    fn the_fqdn_is_lower_case() {
        assert_eq!(
            spec("shop", "Apps.Example.COM").fqdn(),
            "shop.apps.example.com"
        );
        assert_eq!(spec("", "*.Apps.Example.com").fqdn(), "*.apps.example.com");
        assert_eq!(spec("app", "apps.internal").fqdn(), "app.apps.internal");
        // Only ASCII is folded: anything else is refused by validation (punycode is ASCII).
        assert_eq!(spec("ÄPP", "Example.com").fqdn(), "Äpp.example.com");
    }

    /// The constants name what the derive generates.
    #[test]
    fn group_and_api_version_constants_match_the_type() {
        assert_eq!(Route::group(&()), crate::ROUTE_GROUP);
        assert_eq!(Route::api_version(&()), crate::ROUTE_API_VERSION);
    }
}

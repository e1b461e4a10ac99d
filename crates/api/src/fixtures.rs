//! Routes for tests and the benchmark (cargo feature `fixtures`): one builder instead of a JSON template
//! per test file. Defaults: domain `apps.example.com` (external), host = the route's name, no path, no
//! destinations, no namespace; `url` is always `host.domain` + path, as Cloud Controller computes it.
//!
//! ```
//! use cfnet_api::fixtures::{destination, route};
//! let r = route("r1")
//!     .namespace("ns")
//!     .path("/p")
//!     .destination(destination("d1", "app").weight(100))
//!     .build();
//! assert_eq!(r.spec.url, "r1.apps.example.com/p");
//! assert_eq!(r.spec.destinations[0].port, 8080);
//! ```

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::{
    APP_GUID_LABEL, AppProcess, DestinationApp, DestinationSelector, ORG_GUID_LABEL,
    PROCESS_TYPE_LABEL, ROUTE_GUID_LABEL, Route, RouteDestination, RouteDomain, RouteSpec,
    SPACE_GUID_LABEL,
};

/// Domain of a fixture Route unless [`RouteBuilder::domain`] says otherwise.
pub const DOMAIN: &str = "apps.example.com";

/// A Route named `name`, host `name` on [`DOMAIN`].
pub fn route(name: &str) -> RouteBuilder {
    let mut route = Route::new(
        name,
        RouteSpec {
            host: name.to_owned(),
            path: None,
            url: String::new(),
            domain: RouteDomain {
                name: DOMAIN.to_owned(),
                internal: false,
            },
            destinations: Vec::new(),
        },
    );
    route.metadata.namespace = None;
    RouteBuilder(route)
}

/// A destination `guid` of app `app`: port 8080, process type `web`, no weight, and the selector Cloud
/// Controller writes (app guid and process type).
pub fn destination(guid: &str, app: &str) -> DestinationBuilder {
    DestinationBuilder {
        destination: RouteDestination {
            guid: guid.to_owned(),
            weight: None,
            port: 8080,
            app: DestinationApp {
                guid: app.to_owned(),
                process: AppProcess {
                    type_: "web".to_owned(),
                },
            },
            selector: DestinationSelector {
                match_labels: BTreeMap::new(),
            },
        },
        selector: None,
    }
}

#[derive(Clone, Debug)]
pub struct RouteBuilder(Route);

impl RouteBuilder {
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.0.metadata.namespace = Some(namespace.to_owned());
        self
    }

    /// May be empty: the FQDN is then the domain alone.
    pub fn host(mut self, host: &str) -> Self {
        host.clone_into(&mut self.0.spec.host);
        self
    }

    /// An empty path is no path.
    pub fn path(mut self, path: &str) -> Self {
        self.0.spec.path = (!path.is_empty()).then(|| path.to_owned());
        self
    }

    pub fn domain(mut self, name: &str, internal: bool) -> Self {
        self.0.spec.domain = RouteDomain {
            name: name.to_owned(),
            internal,
        };
        self
    }

    pub fn destination(mut self, destination: impl Into<RouteDestination>) -> Self {
        self.0.spec.destinations.push(destination.into());
        self
    }

    pub fn uid(mut self, uid: &str) -> Self {
        self.0.metadata.uid = Some(uid.to_owned());
        self
    }

    /// `creationTimestamp`, RFC 3339 (e.g. `2024-01-01T00:00:00Z`).
    pub fn created(mut self, rfc3339: &str) -> Self {
        // A fixture's literal: an unparsable one is a mistake in the test, reported at once.
        #[allow(clippy::expect_used)]
        let time = rfc3339
            .parse()
            .expect("a fixture's creationTimestamp is RFC 3339");
        self.0.metadata.creation_timestamp = Some(Time(time));
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.0
            .metadata
            .labels
            .get_or_insert_default()
            .insert(key.to_owned(), value.to_owned());
        self
    }

    /// Space and organization labels (what the CF-Space-Id and CF-Organization-Id headers come from).
    pub fn space_and_org(self, space_guid: &str, org_guid: &str) -> Self {
        self.label(SPACE_GUID_LABEL, space_guid)
            .label(ORG_GUID_LABEL, org_guid)
    }

    /// Every label Cloud Controller puts on a Route (`route_guid` = the route's name).
    pub fn cloud_controller_labels(self, space_guid: &str, org_guid: &str) -> Self {
        let name = self.0.metadata.name.clone().unwrap_or_default();
        self.label("app.kubernetes.io/name", &name)
            .label("app.kubernetes.io/version", "cloud-controller-api-version")
            .label("app.kubernetes.io/managed-by", "cloudfoundry")
            .label("app.kubernetes.io/component", "cf-networking")
            .label("app.kubernetes.io/part-of", "cloudfoundry")
            .label("cloudfoundry.org/domain_guid", "domain-guid")
            .label(ROUTE_GUID_LABEL, &name)
            .space_and_org(space_guid, org_guid)
    }

    /// The Route, with `url` = `host.domain` + path as written (Cloud Controller keeps the case).
    pub fn build(mut self) -> Route {
        let spec = &mut self.0.spec;
        let host = if spec.host.is_empty() {
            String::new()
        } else {
            format!("{}.", spec.host)
        };
        spec.url = format!("{host}{}{}", spec.domain.name, spec.path());
        self.0
    }
}

#[derive(Clone, Debug)]
pub struct DestinationBuilder {
    destination: RouteDestination,
    /// `None`: Cloud Controller's selector (app guid and process type).
    selector: Option<BTreeMap<String, String>>,
}

impl DestinationBuilder {
    pub fn port(mut self, port: i64) -> Self {
        self.destination.port = port;
        self
    }

    pub fn weight(mut self, weight: i64) -> Self {
        self.destination.weight = Some(weight);
        self
    }

    pub fn weight_opt(mut self, weight: Option<i64>) -> Self {
        self.destination.weight = weight;
        self
    }

    pub fn process(mut self, process_type: &str) -> Self {
        process_type.clone_into(&mut self.destination.app.process.type_);
        self
    }

    /// Replaces the selector Cloud Controller would write.
    pub fn selector(mut self, match_labels: BTreeMap<String, String>) -> Self {
        self.selector = Some(match_labels);
        self
    }

    pub fn build(self) -> RouteDestination {
        let mut d = self.destination;
        d.selector.match_labels = self.selector.unwrap_or_else(|| {
            BTreeMap::from([
                (APP_GUID_LABEL.to_owned(), d.app.guid.clone()),
                (PROCESS_TYPE_LABEL.to_owned(), d.app.process.type_.clone()),
            ])
        });
        d
    }
}

impl From<DestinationBuilder> for RouteDestination {
    fn from(b: DestinationBuilder) -> Self {
        b.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_follows_host_domain_and_path() {
        let r = route("r")
            .host("")
            .domain("example.org", true)
            .path("/a")
            .build();
        assert_eq!(r.spec.url, "example.org/a");
        assert!(r.spec.domain.internal);
        assert_eq!(route("r").path("").build().spec.path, None);
    }

    #[test]
    fn destinations_carry_cloud_controllers_selector_unless_replaced() {
        let d = destination("d", "app").process("worker").port(9000).build();
        assert_eq!(
            d.selector.match_labels,
            BTreeMap::from([
                (APP_GUID_LABEL.to_owned(), "app".to_owned()),
                (PROCESS_TYPE_LABEL.to_owned(), "worker".to_owned()),
            ])
        );
        let d = destination("d", "app").selector(BTreeMap::new()).build();
        assert!(d.selector.match_labels.is_empty());
    }
}

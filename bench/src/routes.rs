//! The Routes the benchmark writes, after upstream's stress-test template
//! (`routecontroller/stress/fixtures/route_template.yml`, reference §4.2): name `route-<tag>-<i>`, host
//! `hostname-<tag>-<i>`, domain `apps.example.com`, path `/<tag>-<update>-<i>`, one destination with
//! weight 100 on port 8080, and the labels Cloud Controller puts on a Route.

use cfnet_api::{Route, fixtures};

/// Domain of every benchmark route.
pub const DOMAIN: &str = fixtures::DOMAIN;
/// Label that groups the routes of one scenario, as upstream's `tag` label.
pub const TAG_LABEL: &str = "tag";

/// Upstream's path: `/<tag>-<update>-<i>` (`/initial--7`, `/the100-stressfully-updated-7`).
pub fn path(tag: &str, update: &str, i: usize) -> String {
    format!("/{tag}-{update}-{i}")
}

/// Route `route-<tag>-<i>` with its own FQDN `hostname-<tag>-<i>.apps.example.com`.
pub fn route(namespace: &str, tag: &str, i: usize, path: &str) -> Route {
    build(namespace, tag, i, &format!("hostname-{tag}-{i}"), path)
}

/// Route `route-<tag>-<i>` sharing the FQDN `hostname-<tag>-<i mod fqdns>.apps.example.com` with the other
/// routes of its group, told apart by its context path.
pub fn shared_route(namespace: &str, tag: &str, i: usize, fqdns: usize, path: &str) -> Route {
    build(
        namespace,
        tag,
        i,
        &format!("hostname-{tag}-{}", i % fqdns.max(1)),
        path,
    )
}

/// The FQDN a route serves.
pub fn fqdn(route: &Route) -> String {
    route.spec.fqdn()
}

fn build(namespace: &str, tag: &str, i: usize, host: &str, path: &str) -> Route {
    fixtures::route(&format!("route-{tag}-{i}"))
        .namespace(namespace)
        .host(host)
        .domain(DOMAIN, false)
        .path(path)
        .cloud_controller_labels(&format!("space-guid-{tag}"), &format!("org-guid-{tag}"))
        .label(TAG_LABEL, tag)
        .destination(
            fixtures::destination(
                &format!("destination-guid-{tag}-{i}"),
                &format!("app-guid-{tag}-{i}"),
            )
            .weight(100),
        )
        .build()
}

/// The merge patch that moves a route to a new path (Cloud Controller never does this — CF routes are
/// immutable — but upstream's stress test did, by re-applying the route).
pub fn path_patch(route: &Route, new_path: &str) -> serde_json::Value {
    serde_json::json!({
        "spec": {
            "path": new_path,
            "url": format!("{}{}", route.spec.fqdn(), new_path),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_template() {
        let r = route("ns", "initial", 7, &path("initial", "", 7));
        assert_eq!(r.metadata.name.as_deref(), Some("route-initial-7"));
        assert_eq!(r.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(r.spec.host, "hostname-initial-7");
        assert_eq!(r.spec.path(), "/initial--7");
        assert_eq!(r.spec.url, "hostname-initial-7.apps.example.com/initial--7");
        assert_eq!(fqdn(&r), "hostname-initial-7.apps.example.com");
        let d = &r.spec.destinations[0];
        assert_eq!(
            (d.weight, d.port, d.guid.as_str()),
            (Some(100), 8080, "destination-guid-initial-7")
        );
        assert_eq!(d.app.guid, "app-guid-initial-7");
        let labels = r.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["tag"], "initial");
        assert!(labels.contains_key("cloudfoundry.org/space_guid"));
        assert!(labels.contains_key("cloudfoundry.org/org_guid"));
    }

    #[test]
    fn shared_routes_spread_over_fqdns() {
        let fqdns: std::collections::BTreeSet<String> = (0..1000)
            .map(|i| fqdn(&shared_route("ns", "shared", i, 50, &path("shared", "", i))))
            .collect();
        assert_eq!(fqdns.len(), 50);
        let r = shared_route("ns", "shared", 51, 50, "/p");
        assert_eq!(r.spec.host, "hostname-shared-1");
        assert_eq!(r.metadata.name.as_deref(), Some("route-shared-51"));
    }

    #[test]
    fn path_patch_keeps_url_consistent() {
        let r = route("ns", "the100", 3, &path("the100", "", 3));
        let p = path_patch(&r, "/the100-stressfully-updated-3");
        assert_eq!(
            p["spec"]["url"],
            "hostname-the100-3.apps.example.com/the100-stressfully-updated-3"
        );
    }
}

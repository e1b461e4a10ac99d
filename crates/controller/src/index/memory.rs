//! How much memory the index holds per route: the live heap and the number of allocations of 2,000
//! Routes as Cloud Controller writes them (guids for names) and of their Service and VirtualService as
//! the API server returns them. Counted by a test allocator on this test's own thread, so tests that
//! run in parallel do not disturb it. The bounds guard the memory work behind the controller's peak
//! RSS target (docs/performance.md); `--nocapture` prints the breakdown per map.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use cfnet_api::Route;
use cfnet_translate::{ClaimIndex, FqdnKey, Settings, translate_fqdn};
use kube::api::DynamicObject;
use serde_json::json;

use super::{Index, cached_route};
use crate::children::{CachedService, CachedVirtualService};
use crate::packed::PackedRoute;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static ALLOCATIONS: Cell<isize> = const { Cell::new(0) };
}

fn count(bytes: isize, allocations: isize) {
    // `try_with`: a thread being torn down has no counters left; nothing to count then.
    let _ = LIVE.try_with(|c| c.set(c.get() + bytes));
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + allocations));
}

fn live() -> (isize, isize) {
    (LIVE.with(Cell::get), ALLOCATIONS.with(Cell::get))
}

struct Counting;

// SAFETY: every call is forwarded to `System` with the same arguments; only counters change.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize, 1);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize), -1);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize, 0);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const ROUTES: usize = 2_000;

fn guid(what: &str, i: usize) -> String {
    format!("{what:0>8}-{i:04x}-4a1b-9c2d-0123456789ab")
}

/// A Route as the API server serves it after the controller programmed it.
fn cf_route(i: usize) -> Route {
    serde_json::from_value(json!({
        "apiVersion": "networking.cloudfoundry.org/v1alpha1", "kind": "Route",
        "metadata": {"namespace": "cf-workloads", "name": guid("route", i), "uid": guid("uid", i),
                     "generation": 1, "resourceVersion": format!("{}", 48_211 + i),
                     "creationTimestamp": "2026-11-26T01:14:29Z",
                     "finalizers": ["routes.networking.cloudfoundry.org"],
                     "labels": {"cloudfoundry.org/space_guid": guid("space", 1),
                                "cloudfoundry.org/org_guid": guid("org", 1),
                                "cloudfoundry.org/route_guid": guid("route", i),
                                "app.kubernetes.io/managed-by": "cloudfoundry"}},
        "spec": {"host": format!("app-{i}"), "url": format!("app-{i}.apps.example.com"),
                 "domain": {"name": "apps.example.com", "internal": false},
                 "destinations": [{"guid": guid("dest", i), "port": 8080, "weight": 100,
                                   "app": {"guid": guid("app", i), "process": {"type": "web"}},
                                   "selector": {"matchLabels": {
                                       "cloudfoundry.org/app_guid": guid("app", i),
                                       "cloudfoundry.org/process_type": "web"}}}]},
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Programmed",
            "message": "programmed in VirtualService cf-workloads/vs-23eae7945b37ad54e25ac076a742c82495d1d228f3a784a6992f98c90b432d93",
            "lastTransitionTime": "2026-11-26T01:14:55Z", "observedGeneration": 1}]}
    }))
    .unwrap()
}

/// The route packed, its Service and its VirtualService, with the metadata the API server adds.
fn watched(i: usize) -> (PackedRoute, CachedService, CachedVirtualService) {
    let route = cf_route(i);
    let key = FqdnKey {
        namespace: "cf-workloads".into(),
        fqdn: route.spec.fqdn().into(),
    };
    let settings = Settings {
        gateway: "cf-system/istio-ingressgateway".into(),
        ..Default::default()
    };
    let mut translation = translate_fqdn(&key, &[&route], &ClaimIndex::new(), &settings);
    let mut svc = translation.services.remove(0);
    svc.metadata.uid = Some(guid("svc-uid", i));
    svc.metadata.resource_version = Some(format!("{}", 60_000 + i));
    let mut vs: DynamicObject =
        serde_json::from_value(serde_json::to_value(translation.virtual_service.unwrap()).unwrap())
            .unwrap();
    vs.metadata.uid = Some(guid("vs-uid", i));
    vs.metadata.resource_version = Some(format!("{}", 70_000 + i));
    (
        PackedRoute::new(cached_route(route)),
        CachedService::new(svc),
        CachedVirtualService::new(vs),
    )
}

#[test]
fn the_index_holds_about_two_kilobytes_per_route() {
    let (base_bytes, base_allocations) = live();
    let mut index = Index::default();
    for i in 0..ROUTES {
        let (route, svc, vs) = watched(i);
        index.apply_packed_route(route);
        index.apply_service(svc);
        index.apply_virtual_service(vs);
    }
    assert_eq!(index.owned_counts(), (ROUTES, ROUTES));
    let (bytes, allocations) = live();
    let per_route = (bytes - base_bytes) as f64 / ROUTES as f64;
    let allocations_per_route = (allocations - base_allocations) as f64 / ROUTES as f64;
    eprintln!("index: {per_route:.0} B and {allocations_per_route:.1} allocations per route");

    // What each map holds, dropped one after the other (a string shared by several maps is counted
    // with the last of them).
    let mut last = live();
    let mut took = |what: &str| {
        let now = live();
        eprintln!(
            "{what:>18}: {:>5.0} B {:>5.1} allocations per route",
            (last.0 - now.0) as f64 / ROUTES as f64,
            (last.1 - now.1) as f64 / ROUTES as f64
        );
        last = now;
    };
    macro_rules! drop_maps {
        ($($map:ident),*) => {$(
            drop(std::mem::take(&mut index.$map));
            took(stringify!($map));
        )*};
    }
    drop_maps!(
        claims,
        vs_names,
        route_keys,
        services_by_key,
        services,
        virtual_services,
        routes
    );

    // Measured 2026-11-26: 2,290 B in 22 allocations per route. Before the compressed Routes
    // (80c5cbe) and the shared strings (f9e5be6, e96121f, c695718) the same Routes took 4,310 B
    // in 52 allocations.
    assert!(per_route < 2_500.0, "{per_route:.0} B per route");
    assert!(
        allocations_per_route < 25.0,
        "{allocations_per_route:.1} allocations per route"
    );
}

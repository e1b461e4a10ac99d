//! `cargo bench -p cfnet-translate`: translating 10,000 routes (what `cfnet render` and a controller
//! resync do), and one FQDN work item (what the controller does per event).

use std::collections::BTreeMap;

use cfnet_api::{
    AppProcess, DestinationApp, DestinationSelector, Route, RouteDestination, RouteDomain,
    RouteSpec,
};
use cfnet_translate::{ClaimIndex, FqdnKey, Settings, translate, translate_fqdn};
use criterion::{Criterion, criterion_group, criterion_main};

/// `n` routes in one namespace: 4 context paths per host, two destinations on every third route.
pub fn routes(n: usize) -> Vec<Route> {
    (0..n)
        .map(|i| {
            let host = format!("app-{}", i / 4);
            let path = ["", "/api", "/api/v2", "/static"][i % 4];
            let dests = if i % 3 == 0 { 2 } else { 1 };
            let mut r = Route::new(
                &format!("route-{i:05}"),
                RouteSpec {
                    url: format!("{host}.apps.example.com{path}"),
                    host,
                    path: (!path.is_empty()).then(|| path.to_owned()),
                    domain: RouteDomain {
                        name: "apps.example.com".to_owned(),
                        internal: false,
                    },
                    destinations: (0..dests)
                        .map(|d| RouteDestination {
                            guid: format!("dest-{i:05}-{d}"),
                            weight: None,
                            port: 8080,
                            app: DestinationApp {
                                guid: format!("app-guid-{i}"),
                                process: AppProcess {
                                    type_: "web".to_owned(),
                                },
                            },
                            selector: DestinationSelector {
                                match_labels: BTreeMap::from([
                                    (
                                        "cloudfoundry.org/app_guid".to_owned(),
                                        format!("app-guid-{i}"),
                                    ),
                                    ("cloudfoundry.org/process_type".to_owned(), "web".to_owned()),
                                ]),
                            },
                        })
                        .collect(),
                },
            );
            r.metadata.namespace = Some("cf-workloads".to_owned());
            r.metadata.uid = Some(format!("uid-{i}"));
            r.metadata.labels = Some(BTreeMap::from([
                ("cloudfoundry.org/space_guid".to_owned(), "space".to_owned()),
                ("cloudfoundry.org/org_guid".to_owned(), "org".to_owned()),
            ]));
            r
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let settings = Settings {
        gateway: "cf-system/istio-ingressgateway".to_owned(),
        ..Default::default()
    };
    let all = routes(10_000);
    c.bench_function("translate 10000 routes", |b| {
        b.iter(|| translate(std::hint::black_box(&all), &settings))
    });

    let claims = ClaimIndex::from_routes(&all);
    let key = FqdnKey {
        namespace: "cf-workloads".into(),
        fqdn: "app-7.apps.example.com".into(),
    };
    let group: Vec<&Route> = all.iter().filter(|r| r.spec.host == "app-7").collect();
    c.bench_function(
        "translate_fqdn one FQDN of 4 routes (index of 10000)",
        |b| b.iter(|| translate_fqdn(&key, std::hint::black_box(&group), &claims, &settings)),
    );
    c.bench_function("ClaimIndex build over 10000 routes", |b| {
        b.iter(|| ClaimIndex::from_routes(std::hint::black_box(&all)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

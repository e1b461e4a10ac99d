//! `cargo bench -p cfnet-translate`: translating 10,000 routes (what `cfnet render` and a controller
//! resync do), and one FQDN work item (what the controller does per event).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

use cfnet_api::{Route, fixtures};
use cfnet_translate::{ClaimIndex, FqdnKey, Settings, translate, translate_fqdn};
use criterion::{Criterion, criterion_group, criterion_main};

/// `n` routes in one namespace: 4 context paths per host, two destinations on every third route.
pub fn routes(n: usize) -> Vec<Route> {
    (0..n)
        .map(|i| {
            let host = format!("app-{}", i / 4);
            let path = ["", "/api", "/api/v2", "/static"][i % 4];
            let dests = if i % 3 == 0 { 2 } else { 1 };
            (0..dests)
                .fold(
                    fixtures::route(&format!("route-{i:05}"))
                        .namespace("cf-workloads")
                        .host(&host)
                        .path(path)
                        .uid(&format!("uid-{i}"))
                        .space_and_org("space", "org"),
                    |r, d| {
                        r.destination(fixtures::destination(
                            &format!("dest-{i:05}-{d}"),
                            &format!("app-guid-{i}"),
                        ))
                    },
                )
                .build()
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

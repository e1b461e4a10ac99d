//! The bare-client baseline against a real local control plane, observed through the benchmark's watches:
//! the baseline must leave every route exactly as the controller would (finalizer, one Service, one
//! VirtualService with the route's path, Ready=True), and the observer must see all of it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

use std::time::Duration;

use cfnet_api::{FINALIZER, Route};
use cfnet_bench::observe::Observer;
use cfnet_bench::{GATEWAY, baseline, routes};
use cfnet_translate::{service_name, virtual_service_name};
use kube::Api;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline_programs_every_route_and_the_observer_sees_it() {
    let cp = cfnet_testenv::ControlPlane::start().await.unwrap();
    let ns = cp.create_namespace("bench-baseline").await.unwrap();
    let client = cp.client();
    let observer = Observer::start(&client, &ns).await.unwrap();
    let n = 20;

    let run = baseline::run(
        &client,
        &ns,
        n,
        4,
        GATEWAY,
        cp.pids(),
        cfnet_controller::Events::All,
    )
    .await
    .unwrap();
    // Finalizer patch, Service and VirtualService create, status patch, Created Event.
    assert_eq!(run.writes, 5 * n);
    assert!(run.seconds > 0.0);
    assert!(run.apiserver_cpu_seconds > 0.0, "{run:?}");

    observer
        .wait(
            "test",
            Duration::from_secs(30),
            "everything programmed",
            |w| {
                (w.routes.len() == n
                    && w.routes.flagged == n
                    && w.services.len() == n
                    && w.virtual_services.len() == n)
                    .then_some(())
            },
        )
        .await
        .unwrap();
    {
        let world = observer.world();
        for i in 0..n {
            let route = routes::route(&ns, "baseline", i, &routes::path("baseline", "", i));
            let vs = world
                .virtual_services
                .get(&virtual_service_name(&routes::fqdn(&route)))
                .unwrap();
            assert_eq!(vs.view.prefixes, vec![format!("/baseline--{i}")]);
            assert_eq!(
                vs.view.host,
                format!("hostname-baseline-{i}.apps.example.com")
            );
            assert!(
                world
                    .services
                    .get(&service_name(&format!("destination-guid-baseline-{i}")))
                    .is_some()
            );
        }
    }

    let api: Api<Route> = Api::namespaced(client, &ns);
    let r = api.get("route-baseline-3").await.unwrap();
    assert_eq!(r.metadata.finalizers, Some(vec![FINALIZER.to_string()]));
}

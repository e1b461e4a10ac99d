//! Upstream's integration scenarios I1–I14 (reference §3.3) against the real local API server, with the
//! fixtures of Appendix A and upstream's observation model (VS gateways/hosts/match/destination hosts;
//! Service name/targetPort).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

mod common;

use common::*;
use kube::Client;

fn single_destination() -> cfnet_api::Route {
    route(
        "cc-route-guid-1",
        "cc-route-guid",
        "hostname",
        "/some/path",
        &[(Some(100), 8080, "destination-guid-1", "cc-app1-guid", "web")],
    )
}

fn updated_single_destination() -> cfnet_api::Route {
    route(
        "cc-route-guid-1",
        "cc-route-guid",
        "hostname",
        "/some/path",
        &[(Some(100), 9090, "destination-guid-1", "cc-app1-guid", "web")],
    )
}

fn multiple_destinations() -> cfnet_api::Route {
    route(
        "cc-route-guid-1",
        "cc-route-guid",
        "hostname",
        "/some/path",
        &[
            (Some(80), 8080, "destination-guid-1", "cc-app1-guid", "web"),
            (
                Some(20),
                9000,
                "destination-guid-2",
                "cc-app2-guid",
                "other-web",
            ),
        ],
    )
}

fn no_destination() -> cfnet_api::Route {
    route(
        "cc-route-guid-1",
        "cc-route-guid",
        "hostname",
        "/some/path",
        &[],
    )
}

fn same_fqdn() -> [cfnet_api::Route; 2] {
    [
        route(
            "cc-route-guid-1",
            "cc-route-guid-1",
            "hostname",
            "/some/path",
            &[
                (Some(50), 8080, "destination-guid-1", "cc-app1-guid", "web"),
                (
                    Some(50),
                    9090,
                    "additional-destination-for-route-1",
                    "cc-app1-guid",
                    "web",
                ),
            ],
        ),
        route(
            "cc-route-guid-2",
            "cc-route-guid-2",
            "hostname",
            "/some/different/path",
            &[(Some(100), 8080, "destination-guid-2", "cc-app2-guid", "web")],
        ),
    ]
}

fn different_fqdn() -> [cfnet_api::Route; 2] {
    [
        route(
            "cc-route-guid-1",
            "cc-route-guid-1",
            "hostname-1",
            "/some/path",
            &[(Some(100), 8080, "destination-guid-1", "cc-app1-guid", "web")],
        ),
        route(
            "cc-route-guid-2",
            "cc-route-guid-2",
            "hostname-2",
            "/some/different/path",
            &[(Some(100), 8080, "destination-guid-2", "cc-app2-guid", "web")],
        ),
    ]
}

const HOST: &str = "hostname.apps.example.com";

/// Runs `body` against a controller of its own in a namespace of its own, then stops the controller.
async fn scenario(prefix: &str, body: impl AsyncFnOnce(&Client, &str)) {
    let client = client().await;
    let ns = namespace(&client, prefix).await;
    let running = Running::in_namespace(&client, &ns).await;
    body(&client, &ns).await;
    running.stop().await;
}

async fn expect_vs(client: &Client, ns: &str, expected: Vec<serde_json::Value>) {
    eventually_eq("virtual services", T, expected, || {
        virtual_services(client, ns)
    })
    .await;
}

/// The one VirtualService of `HOST`, with these http entries.
async fn expect_host(client: &Client, ns: &str, http: &[(&[&str], &[&str])]) {
    expect_vs(client, ns, vec![vs(HOST, http)]).await;
}

async fn expect_services(client: &Client, ns: &str, expected: &[(&str, i64)]) {
    eventually_eq("services", T, svc(expected), || services(client, ns)).await;
}

async fn i2_state(client: &Client, ns: &str) {
    apply(client, ns, &single_destination()).await;
    expect_services(client, ns, &[("s-destination-guid-1", 8080)]).await;
    expect_host(client, ns, &[(&["/some/path"], &["s-destination-guid-1"])]).await;
}

async fn i6_state(client: &Client, ns: &str) {
    apply(client, ns, &multiple_destinations()).await;
    expect_host(
        client,
        ns,
        &[(
            &["/some/path"],
            &["s-destination-guid-1", "s-destination-guid-2"],
        )],
    )
    .await;
    expect_services(
        client,
        ns,
        &[
            ("s-destination-guid-1", 8080),
            ("s-destination-guid-2", 9000),
        ],
    )
    .await;
}

async fn i4_state(client: &Client, ns: &str) {
    for r in same_fqdn() {
        apply(client, ns, &r).await;
    }
    expect_host(
        client,
        ns,
        &[
            (
                &["/some/path"],
                &[
                    "s-destination-guid-1",
                    "s-additional-destination-for-route-1",
                ],
            ),
            (&["/some/different/path"], &["s-destination-guid-2"]),
        ],
    )
    .await;
    expect_services(
        client,
        ns,
        &[
            ("s-destination-guid-1", 8080),
            ("s-additional-destination-for-route-1", 9090),
            ("s-destination-guid-2", 8080),
        ],
    )
    .await;
}

#[tokio::test]
async fn i01_route_without_destinations_gets_the_no_destinations_virtual_service() {
    scenario("i01", async |client, ns| {
        apply(
            client,
            ns,
            &route(
                "cc-route-guid",
                "cc-route-guid",
                "hostname",
                "/some/path",
                &[],
            ),
        )
        .await;
        expect_host(client, ns, &[(&["/some/path"], &["no-destinations"])]).await;
        assert!(services(client, ns).await.is_empty());
        // Ready, but the status does not pretend that traffic reaches an app.
        eventually_eq("Ready says there are no destinations", T, true, || async {
            ready(client, ns, "cc-route-guid")
                .await
                .is_some_and(|(status, reason, message)| {
                    status == "True"
                        && reason == "Programmed"
                        && message.starts_with("no destinations")
                })
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn i02_single_route_with_a_single_destination() {
    scenario("i02", async |client, ns| {
        i2_state(client, ns).await;
    })
    .await;
}

#[tokio::test]
async fn i03_removing_the_destination_leaves_the_placeholder_and_deletes_the_service() {
    scenario("i03", async |client, ns| {
        i2_state(client, ns).await;
        apply(client, ns, &no_destination()).await;
        expect_host(client, ns, &[(&["/some/path"], &["no-destinations"])]).await;
        expect_services(client, ns, &[]).await;
    })
    .await;
}

#[tokio::test]
async fn i04_routes_with_the_same_fqdn_share_one_virtual_service() {
    scenario("i04", async |client, ns| {
        i4_state(client, ns).await;
    })
    .await;
}

#[tokio::test]
async fn i05_routes_with_different_fqdns_get_one_virtual_service_each() {
    scenario("i05", async |client, ns| {
        for r in different_fqdn() {
            apply(client, ns, &r).await;
        }
        expect_vs(
            client,
            ns,
            vec![
                vs(
                    "hostname-1.apps.example.com",
                    &[(&["/some/path"], &["s-destination-guid-1"])],
                ),
                vs(
                    "hostname-2.apps.example.com",
                    &[(&["/some/different/path"], &["s-destination-guid-2"])],
                ),
            ],
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn i06_single_route_with_multiple_destinations() {
    scenario("i06", async |client, ns| {
        i6_state(client, ns).await;
    })
    .await;
}

#[tokio::test]
async fn i07_routes_created_in_succession_for_one_fqdn_order_longest_path_first() {
    scenario("i07", async |client, ns| {
        let r1 = route(
            "context-path-route-guid-1",
            "context-path-route-guid-1",
            "hostname",
            "/hello",
            &[(Some(100), 8080, "destination-guid-1", "cc-app1-guid", "web")],
        );
        let r2 = route(
            "context-path-route-guid-2",
            "context-path-route-guid-2",
            "hostname",
            "/hello/world",
            &[(Some(100), 8080, "destination-guid-2", "cc-app2-guid", "web")],
        );
        apply(client, ns, &r1).await;
        expect_host(client, ns, &[(&["/hello"], &["s-destination-guid-1"])]).await;
        apply(client, ns, &r2).await;
        expect_host(
            client,
            ns,
            &[
                (&["/hello/world"], &["s-destination-guid-2"]),
                (&["/hello"], &["s-destination-guid-1"]),
            ],
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn i08_adding_a_destination() {
    scenario("i08", async |client, ns| {
        i2_state(client, ns).await;
        i6_state(client, ns).await;
    })
    .await;
}

#[tokio::test]
async fn i09_changing_the_destination_port() {
    scenario("i09", async |client, ns| {
        i2_state(client, ns).await;
        apply(client, ns, &updated_single_destination()).await;
        expect_services(client, ns, &[("s-destination-guid-1", 9090)]).await;
        expect_host(client, ns, &[(&["/some/path"], &["s-destination-guid-1"])]).await;
    })
    .await;
}

#[tokio::test]
async fn i10_deleting_the_only_route_of_an_fqdn_deletes_its_children_and_the_route() {
    scenario("i10", async |client, ns| {
        i2_state(client, ns).await;
        delete_route(client, ns, "cc-route-guid-1").await;
        let five = std::time::Duration::from_secs(5);
        eventually_eq("virtual services gone", five, vec![], || {
            virtual_services(client, ns)
        })
        .await;
        eventually_eq("services gone", five, svc(&[]), || services(client, ns)).await;
        let routes: kube::Api<cfnet_api::Route> = kube::Api::namespaced(client.clone(), ns);
        eventually_eq("route gone (finalizer removed)", five, true, || async {
            routes
                .get_opt("cc-route-guid-1")
                .await
                .map(|r| r.is_none())
                .unwrap_or(false)
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn i11_deleting_one_route_of_a_shared_fqdn_rebuilds_the_virtual_service() {
    scenario("i11", async |client, ns| {
        i4_state(client, ns).await;
        delete_route(client, ns, "cc-route-guid-1").await;
        expect_host(
            client,
            ns,
            &[(&["/some/different/path"], &["s-destination-guid-2"])],
        )
        .await;
        expect_services(client, ns, &[("s-destination-guid-2", 8080)]).await;
    })
    .await;
}

#[tokio::test]
async fn i12_removing_a_destination_keeps_services_of_other_routes() {
    scenario("i12", async |client, ns| {
        i4_state(client, ns).await;
        apply(client, ns, &single_destination()).await;
        expect_services(
            client,
            ns,
            &[
                ("s-destination-guid-1", 8080),
                ("s-destination-guid-2", 8080),
            ],
        )
        .await;
        expect_host(
            client,
            ns,
            &[
                (&["/some/path"], &["s-destination-guid-1"]),
                (&["/some/different/path"], &["s-destination-guid-2"]),
            ],
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn i13_children_deleted_unexpectedly_are_recreated_by_the_watch() {
    // RESYNC_INTERVAL is an hour here (upstream needed 5 s): the watch on the children repairs them.
    scenario("i13", async |client, ns| {
        i2_state(client, ns).await;
        let svcs: kube::Api<k8s_openapi::api::core::v1::Service> =
            kube::Api::namespaced(client.clone(), ns);
        svcs.delete_collection(&Default::default(), &Default::default())
            .await
            .expect("delete services");
        vs_api(client, ns)
            .delete_collection(&Default::default(), &Default::default())
            .await
            .expect("delete vs");
        expect_services(client, ns, &[("s-destination-guid-1", 8080)]).await;
        expect_host(client, ns, &[(&["/some/path"], &["s-destination-guid-1"])]).await;
    })
    .await;
}

#[tokio::test]
async fn i14_printer_columns_show_name_url_ready_and_age() {
    scenario("i14", async |client, ns| {
        for r in different_fqdn() {
            apply(client, ns, &r).await;
        }
        // What `kubectl get routes -o wide` asks for: the server-side Table.
        let req = http::Request::get(format!(
            "/apis/networking.cloudfoundry.org/v1alpha1/namespaces/{ns}/routes"
        ))
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Vec::new())
        .expect("request");
        let table: serde_json::Value = client.request(req).await.expect("table");
        let columns: Vec<&str> = table["columnDefinitions"]
            .as_array()
            .expect("columns")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(columns, ["Name", "URL", "Ready", "Age"]);
        let mut rows: Vec<(String, String)> = table["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| {
                (
                    r["cells"][0].as_str().unwrap_or("").to_string(),
                    r["cells"][1].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        rows.sort();
        assert_eq!(
            rows,
            [
                (
                    "cc-route-guid-1".to_string(),
                    "hostname-1.apps.example.com/some/path".to_string()
                ),
                (
                    "cc-route-guid-2".to_string(),
                    "hostname-2.apps.example.com/some/different/path".to_string()
                ),
            ]
        );
        // The Ready column is filled once the controller has written status.
        eventually_eq(
            "Ready=True on both routes",
            T,
            (Some("True".to_string()), Some("True".to_string())),
            || async {
                let a = ready(client, ns, "cc-route-guid-1").await.map(|r| r.0);
                let b = ready(client, ns, "cc-route-guid-2").await.map(|r| r.0);
                (a, b)
            },
        )
        .await;
    })
    .await;
}

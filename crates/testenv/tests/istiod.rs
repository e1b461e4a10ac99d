//! istiod against the local control plane: it starts, is ready, serves ADS on its xDS port, reads the chart's
//! mesh config, writes its log and is gone after drop; Istio's validating webhook refuses what a real cluster
//! refuses. These tests FAIL (never skip) when a binary is missing; they build istiod on first use
//! (`cfnet dev install` does it ahead of time).

mod common;

use common::alive;
use std::time::{Duration, Instant};

use cfnet_testenv::{ControlPlane, Istiod, IstiodOptions, istio_webhook, mesh_config};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};

async fn control_plane() -> ControlPlane {
    ControlPlane::start()
        .await
        .unwrap_or_else(|e| panic!("control plane must start: {e}"))
}

fn virtual_services(cp: &ControlPlane, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("networking.istio.io", "v1", "VirtualService");
    Api::namespaced_with(cp.client(), ns, &ApiResource::from_gvk(&gvk))
}

/// A VirtualService like the controller's, with `value` as the CF-App-Id request header of its destination.
fn virtual_service(name: &str, value: &str) -> DynamicObject {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name},
        "spec": {
            "hosts": ["shop.apps.example.com"],
            "gateways": ["cf-system/istio-ingressgateway"],
            "http": [{"route": [{
                "destination": {"host": "s-1"},
                "headers": {"request": {"set": {"CF-App-Id": value}}},
            }]}],
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn istiod_serves_xds_with_the_charts_mesh_config_and_stops_on_drop() {
    let cp = control_plane().await;
    let options = IstiodOptions {
        validation_webhook: false,
        ..IstiodOptions::default()
    };
    let mut istiod = Istiod::start(&cp, options)
        .await
        .unwrap_or_else(|e| panic!("istiod must start: {e}"));
    eprintln!(
        "istiod {} ready in {:?} (xDS {})",
        istiod.version(),
        istiod.startup_duration(),
        istiod.xds_addr()
    );
    istiod.check_running().unwrap();
    assert!(istiod.xds_addr().ip().is_loopback());
    assert_eq!(istiod.webhook_addr(), None);

    let (status, body) = istiod.http_get("/ready").await.unwrap();
    assert_eq!(status, 200, "{body}");
    // The plaintext gRPC port accepts connections (the ADS conversation itself is crates/xds's to test).
    tokio::net::TcpStream::connect(istiod.xds_addr())
        .await
        .expect("the xDS port accepts connections");
    let (status, metrics) = cfnet_testenv::istiod::get(istiod.monitoring_addr(), "/metrics")
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("pilot_"),
        "istiod's own metrics: {metrics:.300}"
    );

    // istiod runs with the chart's access-log settings.
    let (status, mesh) = istiod.http_get("/debug/mesh").await.unwrap();
    assert_eq!(status, 200, "{mesh}");
    let mesh: serde_json::Value = serde_json::from_str(&mesh).unwrap();
    assert_eq!(mesh["accessLogEncoding"], "JSON", "{mesh}");
    assert_eq!(
        mesh["accessLogFormat"],
        mesh_config::access_log_format().unwrap()
    );
    assert!(
        mesh["accessLogFormat"]
            .as_str()
            .unwrap()
            .contains("%REQ(CF-APP-PROCESS-TYPE)%")
    );

    let log = std::fs::read_to_string(cp.state_dir().join("istiod.log")).unwrap();
    assert_eq!(istiod.log_path(), cp.state_dir().join("istiod.log"));
    assert!(log.contains("info"), "istiod writes its log: {log:.500}");

    let pid = istiod.pid();
    assert!(alive(pid));
    drop(istiod);
    assert!(!alive(pid), "istiod {pid} is gone after drop");
}

#[tokio::test]
async fn istios_webhook_refuses_an_invalid_header_value_as_on_a_real_cluster() {
    let cp = control_plane().await;
    let istiod = Istiod::start(&cp, IstiodOptions::default())
        .await
        .unwrap_or_else(|e| panic!("istiod must start: {e}"));
    eprintln!(
        "istiod with webhook ready in {:?} (webhook {:?})",
        istiod.startup_duration(),
        istiod.webhook_addr()
    );
    let ns = cp.create_namespace("webhook").await.unwrap();
    let api = virtual_services(&cp, &ns);

    let err = api
        .create(&PostParams::default(), &virtual_service("bad", "app%zz"))
        .await
        .expect_err("Istio's validation refuses the header value");
    let kube::Error::Api(status) = err else {
        panic!("expected a refusal from the API server, got {err}");
    };
    assert!(
        status.message.contains(&format!(
            "admission webhook \"{}\" denied the request",
            istio_webhook::WEBHOOK_NAME
        )),
        "{}",
        status.message
    );
    assert!(
        status
            .message
            .contains("Un-terminated variable expression 'app%zz'"),
        "{}",
        status.message
    );

    api.create(&PostParams::default(), &virtual_service("good", "app-guid"))
        .await
        .expect("a valid VirtualService passes the webhook");

    // Dropped, istiod takes its webhook configuration with it: Istio writes work again without it, and the
    // refusal above was the webhook's, not the CRD schema's.
    drop(istiod);
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(cp.client());
    assert!(
        configs
            .get_opt(istio_webhook::CONFIG_NAME)
            .await
            .unwrap()
            .is_none(),
        "the webhook configuration is removed on drop"
    );
    api.create(&PostParams::default(), &virtual_service("bad", "app%zz"))
        .await
        .expect("without the webhook only the schema checks, and it lets this through");
}

#[tokio::test]
async fn two_istiods_run_side_by_side() {
    // Parallel tests each run their own istiod: no listener of theirs may collide (ControlZ and the webhook
    // server default to fixed ports).
    let (a, b) = tokio::join!(control_plane(), control_plane());
    let (ia, ib) = tokio::join!(
        Istiod::start(&a, IstiodOptions::default()),
        Istiod::start(&b, IstiodOptions::default())
    );
    let (mut ia, mut ib) = (ia.unwrap(), ib.unwrap());
    tokio::time::sleep(Duration::from_millis(500)).await;
    ia.check_running().unwrap();
    ib.check_running().unwrap();
    assert_ne!(ia.xds_addr(), ib.xds_addr());
}

#[tokio::test]
async fn the_charts_istio_objects_pass_istios_webhook_and_reach_istiod() {
    let cp = control_plane().await;
    let istiod = Istiod::start(&cp, IstiodOptions::default())
        .await
        .unwrap_or_else(|e| panic!("istiod must start: {e}"));
    // Through the webhook: the chart's objects are valid Istio configuration.
    let applied = cfnet_testenv::chart::apply_chart_istio_objects(&cp, &[])
        .await
        .unwrap_or_else(|e| panic!("the chart's Istio objects apply: {e}"));
    eprintln!("applied: {applied:#?}");
    for expected in [
        "Gateway cf-system/istio-ingressgateway",
        "Service istio-system/istio-ingressgateway",
        "Sidecar cf-workloads/default",
        "VirtualService cf-system/cf-api-external-virtual-service",
        "VirtualService cf-system/uaa-external-virtual-service",
        "VirtualService cf-system/log-cache-external-virtual-service",
        "PeerAuthentication cf-workloads/default",
    ] {
        assert!(
            applied.iter().any(|a| a == expected),
            "{expected} in {applied:#?}"
        );
    }
    assert!(
        !applied
            .iter()
            .any(|a| a.starts_with("Deployment") || a.starts_with("ServiceAccount")),
        "{applied:#?}"
    );

    // istiod picks them up (its view: /debug/configz).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, configz) = istiod.http_get("/debug/configz").await.unwrap();
        let seen = [
            "istio-ingressgateway",
            "cf-api-external-virtual-service",
            "\"Sidecar\"",
        ]
        .iter()
        .all(|name| configz.contains(name));
        if seen {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "istiod does not list the chart's objects: {configz:.2000}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Helper run in a child process by `istiod_dies_when_the_owning_process_is_sigkilled`: starts a control plane
/// and istiod on a tokio worker thread, prints istiod's pid, and waits to be killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper: run in a child process by istiod_dies_when_the_owning_process_is_sigkilled"]
async fn helper_start_istiod_and_wait_for_sigkill() {
    let (cp, istiod) = tokio::spawn(async {
        let cp = control_plane().await;
        let istiod = Istiod::start(&cp, IstiodOptions::default()).await.unwrap();
        (cp, istiod)
    })
    .await
    .unwrap();
    println!("PID {}", istiod.pid());
    tokio::time::sleep(Duration::from_secs(120)).await;
    drop((istiod, cp));
    panic!("not killed within 120 s");
}

#[test]
fn istiod_dies_when_the_owning_process_is_sigkilled() {
    let (mut child, line) = common::run_helper(
        "helper_start_istiod_and_wait_for_sigkill",
        "PID ",
        "the helper must print istiod's pid (did it start?)",
    );
    let pid: u32 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(alive(pid));

    child.kill().unwrap(); // SIGKILL: no destructor runs in the child
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(pid), "istiod {pid} survived SIGKILL of its owner");
}

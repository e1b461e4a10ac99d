//! The end of `cfnet demo --istiod`: `cfnet explain` on one healthy and one broken example URL.
//!
//! The local control plane runs no pods and no kube-controller-manager, so nothing would ever give the
//! examples' Services endpoints, and every URL would end in `no_endpoints`. The demo writes, for each of its
//! Services, the EndpointSlice kube-controller-manager would write for one ready instance of the app
//! (address 10.1.x.y, the Service's port), then waits until istiod serves the healthy URL's clusters with
//! their endpoints, and prints both reports.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::explain::{Report, render_text, report_with};

/// weighted-split.yaml: two destinations, 80/20, every destination with an endpoint: exit 0.
pub const HEALTHY_URL: &str = "https://store.apps.example.com/";
/// invalid-weights.yaml: `route-news-beta` is Invalid (weights sum to 90), so its path is served by its sibling
/// `route-news`: `route_not_ready`, exit 1.
pub const BROKEN_URL: &str = "https://news.apps.example.com/beta/today";

/// The EndpointSlice of one ready instance per Service in `services` (the demo's own Services).
pub async fn write_endpoint_slices(client: &Client, services: &[Service]) -> Result<(), String> {
    for (i, service) in services.iter().enumerate() {
        let (Some(ns), name) = (service.namespace(), service.name_any()) else {
            continue;
        };
        let port = service
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .and_then(|p| p.first())
            .map_or(8080, |p| p.port);
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": format!("{name}-demo"), "namespace": ns,
                         "labels": {"kubernetes.io/service-name": name,
                                    "endpointslice.kubernetes.io/managed-by": "cfnet-demo"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [format!("10.1.{}.{}", i / 250, i % 250 + 1)],
                           "conditions": {"ready": true}}],
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
        }))
        .map_err(|e| format!("building the EndpointSlice of Service {ns}/{name}: {e}"))?;
        Api::<EndpointSlice>::namespaced(client.clone(), &ns)
            .patch(
                &format!("{name}-demo"),
                &PatchParams::apply("cfnet-demo").force(),
                &Patch::Apply(&slice),
            )
            .await
            .map_err(|e| format!("writing the EndpointSlice of Service {ns}/{name}: {e}"))?;
    }
    Ok(())
}

/// The two reports as the demo prints them, once the healthy URL reaches its app in Envoy too (istiod
/// pushes the endpoints a moment after the EndpointSlices appear) or `timeout` has passed.
pub async fn explain_examples(
    client: &Client,
    gateway: &str,
    xds: &str,
    timeout: Duration,
) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    let healthy = loop {
        let report = report_with(client, HEALTHY_URL, gateway, Some(xds)).await?;
        if report.exit_code() == 0 || Instant::now() >= deadline {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let broken = report_with(client, BROKEN_URL, gateway, Some(xds)).await?;
    Ok(format!(
        "{}{}",
        section(HEALTHY_URL, &healthy),
        section(BROKEN_URL, &broken)
    ))
}

fn section(url: &str, report: &Report) -> String {
    format!(
        "\n$ cfnet explain {url}    # exit {}\n{}",
        report.exit_code(),
        render_text(report)
    )
}

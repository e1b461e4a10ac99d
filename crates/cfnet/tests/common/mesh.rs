//! An installation as `cfnet dev up --istiod` makes it: a local control plane, istiod with Istio's validating
//! webhook and the chart's Istio objects; the controller in-process; Routes applied as the Cloud Controller
//! applies them.

use std::time::Duration;

use cfnet_api::Route;
use cfnet_controller::{Config, InProcess};
use cfnet_testenv::{ControlPlane, Istiod, IstiodOptions};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};

/// The chart's Gateway, which the controller binds external VirtualServices to.
pub const GATEWAY: &str = "cf-system/istio-ingressgateway";

/// A control plane and istiod (with the webhook) with the chart's Istio objects applied.
pub async fn start_control_plane_and_istiod() -> (ControlPlane, Istiod) {
    let cp = ControlPlane::start().await.expect("control plane starts");
    let istiod = Istiod::start(&cp, IstiodOptions::default())
        .await
        .expect("istiod starts");
    cfnet_testenv::chart::apply_chart_istio_objects(&cp, &[])
        .await
        .expect("the chart's Istio objects apply");
    (cp, istiod)
}

/// The controller in-process with `config`, once its caches are synced.
pub async fn start_controller(config: Config, client: Client) -> InProcess {
    let mut controller = InProcess::start(config, client);
    controller
        .wait_ready(Duration::from_secs(30))
        .await
        .expect("controller caches synced");
    controller
}

/// Creates namespace `ns` unless it exists.
pub async fn ensure_namespace(client: &Client, ns: &str) {
    let namespace: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap();
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.is_already_exists() => {}
        Err(e) => panic!("create namespace {ns}: {e}"),
    }
}

/// Applies `route` as the Cloud Controller does (server-side apply, field manager `cloud-controller`).
pub async fn apply_route(client: &Client, route: &Route) {
    Api::<Route>::namespaced(client.clone(), &route.namespace().unwrap())
        .patch(
            &route.name_any(),
            &PatchParams::apply("cloud-controller").force(),
            &Patch::Apply(route),
        )
        .await
        .unwrap_or_else(|e| panic!("apply Route {}: {e}", route.name_any()));
}

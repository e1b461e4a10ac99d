//! The installation under test: a local control plane, the chart's Istio objects, istiod with Istio's
//! validating webhook (every VirtualService the controller writes passes Istio's own validation), and the
//! controller in-process for the chart's workloads namespace and Gateway.

use std::time::{Duration, Instant};

use cfnet_api::Route;
use cfnet_controller::{Config, InProcess};
use cfnet_testenv::{ControlPlane, Istiod, IstiodOptions};
use cfnet_translate::RoutingApi;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::ApiResource;
use kube::{Client, ResourceExt};

use crate::generator::NAMESPACE;

/// The chart's Gateway, which the controller binds external VirtualServices to.
pub const GATEWAY: &str = "cf-system/istio-ingressgateway";
/// Long enough for a loaded 2-core machine; the propagation numbers say how long things really take.
pub const T: Duration = Duration::from_secs(60);

pub struct Rig {
    pub cp: ControlPlane,
    pub istiod: Istiod,
    pub client: Client,
    controller: Option<InProcess>,
}

/// What the rig runs besides the Istio mode's parts.
#[derive(Clone, Copy, Default)]
pub struct RigOptions {
    /// The Gateway API CRDs on the API server and istiod's Gateway API support (`PILOT_ENABLE_GATEWAY_API`).
    pub gateway_api: bool,
}

impl Rig {
    /// Control plane, the chart's Istio objects (`helm --set` values `sets`), istiod with the webhook, and the
    /// controller once its caches are synced.
    pub async fn start(sets: &[&str]) -> Rig {
        Self::start_with(sets, RigOptions::default()).await
    }

    /// [`Rig::start`] with `options`.
    pub async fn start_with(sets: &[&str], options: RigOptions) -> Rig {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "cfnet_controller=warn".into()),
            )
            .with_test_writer()
            .try_init();
        let started = Instant::now();
        let cp = ControlPlane::start_with(cfnet_testenv::Options {
            gateway_api_crds: options.gateway_api,
            ..cfnet_testenv::Options::default()
        })
        .await
        .unwrap_or_else(|e| panic!("control plane must start: {e}"));
        // The webhook first: the chart's objects then pass Istio's validation too.
        let istiod_options = IstiodOptions {
            gateway_api: options.gateway_api,
            ..IstiodOptions::default()
        };
        let istiod = Istiod::start(&cp, istiod_options)
            .await
            .unwrap_or_else(|e| panic!("istiod must start: {e}"));
        assert!(
            istiod.webhook_addr().is_some(),
            "Istio's validating webhook is on"
        );
        cfnet_testenv::chart::apply_chart_istio_objects(&cp, sets)
            .await
            .unwrap_or_else(|e| panic!("the chart's Istio objects must apply: {e}"));
        // The controller's own client stack, as `cfnet controller` builds it.
        let client = cfnet_controller::connect(Some(cp.kubeconfig_path()))
            .await
            .unwrap_or_else(|e| panic!("a client for the control plane: {e}"));
        let mut rig = Rig {
            cp,
            istiod,
            client,
            controller: None,
        };
        rig.start_controller(RoutingApi::Istio).await;
        eprintln!(
            "rig: control plane, istiod (xDS {}), chart objects and controller up in {:.1?}",
            rig.istiod.xds_addr(),
            started.elapsed()
        );
        rig
    }

    /// Stops the controller and starts it again with `routing_api` (a mode switch on a live cluster).
    pub async fn restart_controller(&mut self, routing_api: RoutingApi) {
        if let Some(controller) = self.controller.take() {
            controller
                .stop(Duration::from_secs(10))
                .await
                .expect("controller stops within 10 s");
        }
        self.start_controller(routing_api).await;
    }

    async fn start_controller(&mut self, routing_api: RoutingApi) {
        let mut config = Config::new(GATEWAY);
        config.routing_api = routing_api;
        // Where modes.rs puts the Gateway API Gateway: beside the ingress gateway Service it binds to.
        config.gateway_api_parent = cfnet_translate::GatewayRef {
            namespace: "istio-system".to_owned(),
            name: "cf-gateway".to_owned(),
        };
        config.namespaces = vec![NAMESPACE.to_owned()];
        config.resync_interval = Duration::from_secs(3600);
        let mut controller = InProcess::start(config, self.client.clone());
        controller
            .wait_ready(Duration::from_secs(30))
            .await
            .expect("controller caches synced within 30 s");
        self.controller = Some(controller);
    }

    pub fn xds(&self) -> String {
        self.istiod.xds_addr().to_string()
    }

    /// Stops the controller gracefully (istiod and the control plane stop on drop).
    pub async fn stop(mut self) {
        if let Some(controller) = self.controller.take() {
            controller
                .stop(Duration::from_secs(10))
                .await
                .expect("controller stops within 10 s");
        }
    }

    pub fn routes(&self) -> Api<Route> {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }

    pub fn virtual_services(&self) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            NAMESPACE,
            &ApiResource::erase::<cfnet_api::VirtualService>(&()),
        )
    }

    /// What Cloud Controller does: a server-side apply of the whole Route.
    pub async fn apply(&self, route: &Route) {
        self.routes()
            .patch(
                &route.name_any(),
                &PatchParams::apply("cloud-controller").force(),
                &Patch::Apply(route),
            )
            .await
            .unwrap_or_else(|e| panic!("apply Route {}: {e}", route.name_any()));
    }

    pub async fn delete(&self, name: &str) {
        self.routes()
            .delete(name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("delete Route {name}: {e}"));
    }

    /// Deletes every Route of the namespace and waits until they, and the controller's VirtualServices, are
    /// gone (the controller removes its finalizer and its children).
    pub async fn delete_all(&self) {
        let names: Vec<String> = self
            .routes()
            .list(&ListParams::default())
            .await
            .expect("list Routes")
            .items
            .iter()
            .map(|r| r.name_any())
            .collect();
        for name in &names {
            self.delete(name).await;
        }
        eventually("every Route and VirtualService deleted", T, || async {
            let routes = self.routes().list(&ListParams::default()).await;
            let vss = self.virtual_services().list(&ListParams::default()).await;
            match (routes, vss) {
                (Ok(r), Ok(v)) if r.items.is_empty() && v.items.is_empty() => Ok(()),
                (Ok(r), Ok(v)) => Err(format!(
                    "{} Routes, {} VirtualServices left",
                    r.items.len(),
                    v.items.len()
                )),
                (r, v) => Err(format!("{:?} {:?}", r.err(), v.err())),
            }
        })
        .await;
    }

    /// The Ready condition of a Route: (status, reason, message).
    pub async fn ready(&self, name: &str) -> Option<(String, String, String)> {
        crate::common::ready(&self.client, NAMESPACE, name).await
    }

    /// The VirtualServices of the namespace as JSON, by their (single) host.
    pub async fn virtual_services_by_host(&self) -> Vec<(String, serde_json::Value)> {
        let list = self
            .virtual_services()
            .list(&ListParams::default())
            .await
            .expect("list VirtualServices");
        let mut out: Vec<(String, serde_json::Value)> = list
            .items
            .into_iter()
            .map(|vs| {
                let host = vs.data["spec"]["hosts"][0]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                (host, vs.data["spec"].clone())
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

pub use crate::common::eventually;

/// Reads a YAML file of Routes (documents and `kind: List`s) from examples/.
pub fn example_routes(file: &str) -> Vec<Route> {
    let path = format!("{}/../../examples/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let value: serde_json::Value =
            serde::Deserialize::deserialize(doc).unwrap_or_else(|e| panic!("{path}: {e}"));
        let items = if value["kind"] == "List" {
            value["items"].as_array().cloned().unwrap_or_default()
        } else {
            vec![value]
        };
        for item in items {
            out.push(serde_json::from_value(item).unwrap_or_else(|e| panic!("{path}: {e}")));
        }
    }
    out
}

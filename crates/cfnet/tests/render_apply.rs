//! `cfnet render` against a real kube-apiserver (crates/testenv): the examples are accepted as Routes by the
//! committed CRD, the CRD rejects what it promises to reject, and every rendered Service and VirtualService
//! is accepted by server-side apply (the controller's write path), ownerReferences and all.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

use std::io::Write;
use std::process::{Command, Stdio};

use cfnet_api::{Route, VirtualService};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};

const EXAMPLES: &[&str] = &[
    "single-destination.yaml",
    "weighted-split.yaml",
    "context-paths.yaml",
    "internal-route.yaml",
    "invalid-weights.yaml",
];

/// The Routes of the examples, moved into `namespace`.
fn example_routes(namespace: &str) -> Vec<Route> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut routes = Vec::new();
    for file in EXAMPLES {
        let text = std::fs::read_to_string(dir.join(file)).expect("example");
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let value: serde_json::Value = serde::Deserialize::deserialize(doc).expect("yaml");
            let items = if value["kind"] == "List" {
                value["items"].as_array().cloned().unwrap_or_default()
            } else {
                vec![value]
            };
            for item in items {
                let mut r: Route = serde_json::from_value(item).expect("route");
                r.metadata.namespace = Some(namespace.to_owned());
                routes.push(r);
            }
        }
    }
    routes
}

fn render_json(input: &str) -> (Option<i32>, serde_json::Value, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cfnet"))
        .args(["render", "-o", "json"])
        .env_remove("ISTIO_GATEWAY_NAME")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).expect("json"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The committed CRD (what we ship) replaces the one testenv installed from the types.
async fn install_committed_crd(client: &kube::Client) {
    let crd_text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/crds/networking.cloudfoundry.org_routes.yaml"),
    )
    .expect("committed CRD");
    let crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition =
        serde_yaml_ng::from_str(&crd_text).expect("CRD yaml");
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    crds.patch(
        "routes.networking.cloudfoundry.org",
        &PatchParams::apply("cfnet-test").force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("the committed CRD is accepted");
}

/// Server-side applies the rendered Services and VirtualServices as the controller would.
async fn apply_rendered(client: &kube::Client, ns: &str, items: &[serde_json::Value]) {
    let params = PatchParams::apply(cfnet_api::FIELD_MANAGER).force();
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let virtual_services: Api<VirtualService> = Api::namespaced(client.clone(), ns);
    for item in items {
        let name = item["metadata"]["name"].as_str().expect("name").to_owned();
        match item["kind"].as_str() {
            Some("Service") => {
                let svc: Service = serde_json::from_value(item.clone()).expect("service");
                services
                    .patch(&name, &params, &Patch::Apply(&svc))
                    .await
                    .expect("Service applied");
            }
            Some("VirtualService") => {
                let vs: VirtualService = serde_json::from_value(item.clone()).expect("vs");
                let applied = virtual_services
                    .patch(&name, &params, &Patch::Apply(&vs))
                    .await
                    .expect("VirtualService applied");
                // Round trip: what the server stores is what we wrote.
                assert_eq!(applied.spec, vs.spec);
            }
            other => panic!("unexpected kind {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rendered_objects_are_accepted_by_the_api_server() {
    let cp = cfnet_testenv::ControlPlane::start()
        .await
        .expect("starting the local control plane");
    let client = cp.client();
    let ns = cp.create_namespace("render").await.expect("namespace");

    install_committed_crd(&client).await;

    let routes: Api<Route> = Api::namespaced(client.clone(), &ns);
    for r in example_routes(&ns) {
        routes
            .create(&PostParams::default(), &r)
            .await
            .expect("example Route accepted");
    }

    // Schema validation: port 1-65535, weight >= 0.
    let mut bad = example_routes(&ns).remove(0);
    bad.metadata.name = Some("bad-port".to_owned());
    bad.spec.destinations[0].port = 0;
    let err = routes
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("port 0 rejected");
    assert!(err.to_string().contains("port"), "{err}");
    bad.metadata.name = Some("bad-weight".to_owned());
    bad.spec.destinations[0].port = 8080;
    bad.spec.destinations[0].weight = Some(-1);
    let err = routes
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("weight -1 rejected");
    assert!(err.to_string().contains("weight"), "{err}");

    // What the cluster holds (with uids), rendered, applied.
    let list = routes.list(&ListParams::default()).await.expect("list");
    let mut input = serde_json::json!({"apiVersion": "networking.cloudfoundry.org/v1alpha1", "kind": "RouteList", "items": []});
    for r in list.items {
        // The derived Serialize writes apiVersion and kind.
        input["items"]
            .as_array_mut()
            .expect("items")
            .push(serde_json::to_value(&r).expect("json"));
    }
    let (code, rendered, stderr) = render_json(&input.to_string());
    assert_eq!(code, Some(1), "invalid-weights.yaml makes it 1: {stderr}");
    let items = rendered["items"].as_array().expect("items");
    assert_eq!(items.len(), 14, "{rendered:#}");

    apply_rendered(&client, &ns, items).await;
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let stored = services
        .list(&ListParams::default())
        .await
        .expect("services");
    assert!(stored.items.iter().all(|s| {
        s.metadata
            .owner_references
            .as_ref()
            .is_some_and(|o| !o[0].uid.is_empty())
    }));
}

//! The chart's Istio objects in the local API server, so that istiod sees the ingress path users install: the
//! Gateway, the ingress gateway Service (istiod maps the Gateway's ports 80/443 to listeners on its targetPorts
//! 8080/8443), the workloads Sidecar, the system VirtualServices and the PeerAuthentications, in the namespaces
//! they name. The controller's Deployment, RBAC and the gateway workload are left out: nothing runs pods here.

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, ObjectMeta, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde::Deserialize;
use serde_json::Value;

use crate::{ControlPlane, Error};

/// The chart, found through this crate's place in the repository (a helper for the repository's tests).
const CHART_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../deploy/helm/cf-k8s-networking"
);
const HELM_INSTALLER: &str = include_str!("../../../scripts/install-helm.sh");
const FIELD_MANAGER: &str = "cfnet-testenv";
/// Always set: the ingress gateway Service is only rendered with the gateway workload, and istiod needs it.
const GATEWAY_SERVICE: &str = "ingressGateway.enabled=true";

/// Renders the chart (`helm template` with `--set ingressGateway.enabled=true` and then each of `sets`), keeps
/// its Istio objects and the ingress gateway Service, creates the namespaces they live in and server-side
/// applies them. Returns `Kind namespace/name` of each applied object, in the chart's order.
pub async fn apply_chart_istio_objects(
    cp: &ControlPlane,
    sets: &[&str],
) -> Result<Vec<String>, Error> {
    let rendered = render(sets).await?;
    let objects = istio_objects(rendered);
    let mut namespaces: Vec<&str> = objects
        .iter()
        .filter_map(|o| o["metadata"]["namespace"].as_str())
        .collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    for ns in namespaces {
        ensure_namespace(cp, ns).await?;
    }
    let mut applied = Vec::with_capacity(objects.len());
    for object in objects {
        applied.push(apply(cp, object).await?);
    }
    Ok(applied)
}

/// What istiod needs of the chart: Istio's own objects and Services (only the ingress gateway's is rendered
/// once the controller's Deployment and the gateway workload are set aside).
pub fn istio_objects(rendered: Vec<Value>) -> Vec<Value> {
    rendered
        .into_iter()
        .filter(|o| {
            let api_version = o["apiVersion"].as_str().unwrap_or("");
            let group = api_version.split_once('/').map_or("", |(g, _)| g);
            matches!(group, "networking.istio.io" | "security.istio.io")
                || (api_version == "v1" && o["kind"] == "Service")
        })
        .collect()
}

async fn render(sets: &[&str]) -> Result<Vec<Value>, Error> {
    let sets: Vec<String> = std::iter::once(GATEWAY_SERVICE)
        .chain(sets.iter().copied())
        .map(str::to_string)
        .collect();
    let output = tokio::task::spawn_blocking(move || {
        let helm = helm()?;
        let mut command = Command::new(&helm);
        command.args(["template", "cfnet", CHART_DIR]);
        for set in &sets {
            command.args(["--set", set]);
        }
        command
            .output()
            .map_err(Error::io(format!("running {}", helm.display())))
    })
    .await
    .map_err(|e| Error::Helm(e.to_string()))??;
    if !output.status.success() {
        return Err(Error::Helm(format!(
            "helm template {CHART_DIR} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let yaml = String::from_utf8_lossy(&output.stdout);
    let mut objects = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(&yaml) {
        let value = Value::deserialize(document)
            .map_err(|e| Error::Helm(format!("helm rendered invalid YAML: {e}")))?;
        if !value.is_null() {
            objects.push(value);
        }
    }
    Ok(objects)
}

/// The cached helm, built by the embedded scripts/install-helm.sh when missing (it locks the cache).
fn helm() -> Result<PathBuf, Error> {
    if let Some(helm) = crate::cache_bin_dir().map(|d| d.join("helm"))
        && helm.is_file()
    {
        return Ok(helm);
    }
    let dir = tempfile::Builder::new()
        .prefix("cfnet-install-")
        .tempdir()
        .map_err(Error::io("creating a temp dir for the helm installer"))?;
    let script = dir.path().join("install-helm.sh");
    std::fs::write(&script, HELM_INSTALLER)
        .map_err(Error::io(format!("writing {}", script.display())))?;
    let output = Command::new("bash")
        .arg(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(Error::io("running bash for the helm installer"))?;
    if !output.status.success() {
        return Err(Error::InstallerFailed {
            installer: "the helm installer",
            status: output.status.to_string(),
        });
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let path = Path::new(stdout.lines().last().unwrap_or_default().trim()).to_path_buf();
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::InstallerOutput {
            installer: "the helm installer",
            expected: "the path of helm",
        })
    }
}

async fn ensure_namespace(cp: &ControlPlane, name: &str) -> Result<(), Error> {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        ..Default::default()
    };
    match Api::<Namespace>::all(cp.client())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(()),
        Err(e) => Err(Error::kube(format!("creating namespace {name}"))(e)),
    }
}

async fn apply(cp: &ControlPlane, object: Value) -> Result<String, Error> {
    let object: DynamicObject = serde_json::from_value(object)
        .map_err(|e| Error::Helm(format!("a rendered object is not a Kubernetes object: {e}")))?;
    let types = object.types.clone().unwrap_or_default();
    let (group, version) = types
        .api_version
        .split_once('/')
        .unwrap_or(("", types.api_version.as_str()));
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &types.kind));
    let namespace = object.metadata.namespace.clone().unwrap_or_default();
    let name = object.metadata.name.clone().unwrap_or_default();
    let id = format!("{} {namespace}/{name}", types.kind);
    Api::<DynamicObject>::namespaced_with(cp.client(), &namespace, &resource)
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&object),
        )
        .await
        .map_err(Error::kube(format!("applying the chart's {id}")))?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_istio_objects_and_the_gateway_service_only() {
        let object = |api_version: &str, kind: &str| json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": kind, "namespace": "ns"}});
        let rendered = vec![
            object("v1", "ServiceAccount"),
            object("v1", "ConfigMap"),
            object("apps/v1", "Deployment"),
            object("rbac.authorization.k8s.io/v1", "Role"),
            object("networking.k8s.io/v1", "NetworkPolicy"),
            object("networking.istio.io/v1beta1", "Gateway"),
            object("networking.istio.io/v1beta1", "VirtualService"),
            object("networking.istio.io/v1beta1", "Sidecar"),
            object("security.istio.io/v1beta1", "PeerAuthentication"),
            object("v1", "Service"),
        ];
        let kept: Vec<Value> = istio_objects(rendered)
            .into_iter()
            .map(|o| o["kind"].clone())
            .collect();
        assert_eq!(
            kept,
            vec![
                json!("Gateway"),
                json!("VirtualService"),
                json!("Sidecar"),
                json!("PeerAuthentication"),
                json!("Service"),
            ]
        );
    }
}

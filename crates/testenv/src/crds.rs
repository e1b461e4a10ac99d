//! Installs the CustomResourceDefinitions the project works with: the Route CRD (from the Rust types), the
//! Istio CRDs shipped as test data and, on request, the Gateway API standard CRDs shipped as test data,
//! through the API (not kubectl), and waits until they are Established.

use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, CustomResourceExt};
use serde::Deserialize;

use crate::Error;

/// The Istio CRDs (copied from ../shared/crds/istio.yaml).
const ISTIO_CRDS: &str = include_str!("../../../testdata/istio-crds.yaml");
const ISTIO_CRDS_FILE: &str = "testdata/istio-crds.yaml";
/// The Gateway API standard-channel CRDs of sigs.k8s.io/gateway-api v1.6.3
/// (scripts/update-gateway-api-crds.sh).
const GATEWAY_API_CRDS: &str = include_str!("../../../testdata/gateway-api-crds.yaml");
const GATEWAY_API_CRDS_FILE: &str = "testdata/gateway-api-crds.yaml";
const FIELD_MANAGER: &str = "cfnet-testenv";

/// All CRDs installed by default (`Options::install_crds`): the Route CRD first, then the Istio ones.
pub fn all_crds() -> Result<Vec<CustomResourceDefinition>, Error> {
    let mut crds = vec![cfnet_api::Route::crd()];
    crds.extend(parse(ISTIO_CRDS, ISTIO_CRDS_FILE)?);
    Ok(crds)
}

/// The Gateway API standard CRDs (`Options::gateway_api_crds`): GatewayClass, Gateway, HTTPRoute,
/// ReferenceGrant, … of `gateway.networking.k8s.io`, with their CEL validation rules.
pub fn gateway_api_crds() -> Result<Vec<CustomResourceDefinition>, Error> {
    parse(GATEWAY_API_CRDS, GATEWAY_API_CRDS_FILE)
}

fn parse(yaml: &str, file: &'static str) -> Result<Vec<CustomResourceDefinition>, Error> {
    let mut crds = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(yaml) {
        let value = serde_yaml_ng::Value::deserialize(document).map_err(|e| Error::TestData {
            file,
            message: e.to_string(),
        })?;
        if value.is_null() {
            continue;
        }
        let crd: CustomResourceDefinition =
            serde_yaml_ng::from_value(value).map_err(|e| Error::TestData {
                file,
                message: e.to_string(),
            })?;
        crds.push(crd);
    }
    Ok(crds)
}

/// Which CRDs a control plane gets.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Selection {
    /// [`all_crds`].
    pub route_and_istio: bool,
    /// [`gateway_api_crds`].
    pub gateway_api: bool,
}

impl Selection {
    pub(crate) fn is_empty(self) -> bool {
        !self.route_and_istio && !self.gateway_api
    }

    fn crds(self) -> Result<Vec<CustomResourceDefinition>, Error> {
        let mut crds = Vec::new();
        if self.route_and_istio {
            crds.extend(all_crds()?);
        }
        if self.gateway_api {
            crds.extend(gateway_api_crds()?);
        }
        Ok(crds)
    }
}

/// Server-side applies every selected CRD, all at once, retrying until `deadline`: it runs while
/// kube-apiserver is still finishing its start-up, which overlaps CRD establishment with the rest of the
/// readiness wait.
pub(crate) async fn apply_all(
    client: Client,
    selection: Selection,
    deadline: Instant,
) -> Result<Vec<String>, Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client);
    let mut pending = selection.crds()?;
    let names = pending
        .iter()
        .map(|c| c.metadata.name.clone().unwrap_or_default())
        .collect();
    loop {
        let mut tasks = tokio::task::JoinSet::new();
        for crd in pending {
            let api = api.clone();
            tasks.spawn(async move {
                let name = crd.metadata.name.clone().unwrap_or_default();
                let params = PatchParams::apply(FIELD_MANAGER).force();
                let result = api.patch(&name, &params, &Patch::Apply(&crd)).await;
                (crd, name, result)
            });
        }
        let mut failed = Vec::new();
        let mut last_error = None;
        while let Some(joined) = tasks.join_next().await {
            let Ok((crd, name, result)) = joined else {
                continue;
            };
            if let Err(e) = result {
                failed.push(crd);
                last_error = Some((name, e));
            }
        }
        let Some((name, error)) = last_error else {
            return Ok(names);
        };
        if Instant::now() > deadline {
            return Err(Error::kube(format!(
                "installing CustomResourceDefinition {name}"
            ))(error));
        }
        pending = failed;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every named CRD is Established.
pub(crate) async fn wait_established(
    client: Client,
    names: Vec<String>,
    deadline: Instant,
) -> Result<(), Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client);
    let started = Instant::now();
    let mut pending = names;
    loop {
        let mut still = Vec::new();
        for name in pending {
            let crd = api.get(&name).await.map_err(Error::kube(format!(
                "reading CustomResourceDefinition {name}"
            )))?;
            if !is_established(&crd) {
                still.push(name);
            }
        }
        pending = still;
        if pending.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::CrdsNotEstablished {
                timeout: started.elapsed(),
                names: pending,
            });
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn is_established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conds| {
            conds
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_data_holds_the_route_and_the_istio_crds() {
        let names: Vec<String> = all_crds()
            .unwrap()
            .into_iter()
            .map(|c| c.metadata.name.unwrap())
            .collect();
        assert_eq!(names[0], "routes.networking.cloudfoundry.org");
        assert!(
            names.contains(&"virtualservices.networking.istio.io".to_string()),
            "{names:?}"
        );
        assert!(
            names.contains(&"gateways.networking.istio.io".to_string()),
            "{names:?}"
        );
    }

    #[test]
    fn test_data_holds_the_gateway_api_standard_crds_of_v1_6_3() {
        let crds = gateway_api_crds().unwrap();
        let names: Vec<&str> = crds
            .iter()
            .map(|c| c.metadata.name.as_deref().unwrap_or_default())
            .collect();
        for name in [
            "gatewayclasses.gateway.networking.k8s.io",
            "gateways.gateway.networking.k8s.io",
            "httproutes.gateway.networking.k8s.io",
            "referencegrants.gateway.networking.k8s.io",
        ] {
            assert!(names.contains(&name), "{name} missing: {names:?}");
        }
        for crd in &crds {
            let annotations = crd.metadata.annotations.clone().unwrap_or_default();
            assert_eq!(
                annotations
                    .get("gateway.networking.k8s.io/bundle-version")
                    .map(String::as_str),
                Some("v1.6.3")
            );
            assert_eq!(
                annotations
                    .get("gateway.networking.k8s.io/channel")
                    .map(String::as_str),
                Some("standard")
            );
        }
    }
}

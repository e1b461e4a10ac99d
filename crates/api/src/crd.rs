//! The Route CustomResourceDefinition as cfnet ships it (deploy/crds/networking.cloudfoundry.org_routes.yaml).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::Route;

/// The Route CRD generated from the types. `cfnet crd` prints it; a test keeps the committed copy fresh.
///
/// Two touches on kube's output, to match upstream's CRD: `listKind: RouteList` is spelled out (the
/// server would default it to the same) and the root description is upstream's instead of kube's
/// "Auto-generated derived type" text. The schema is structural as generated (a test checks it):
/// optional fields are `nullable`, there is no `anyOf`.
pub fn route_crd() -> CustomResourceDefinition {
    let mut crd = Route::crd();
    crd.spec.names.list_kind = Some("RouteList".to_owned());
    for version in &mut crd.spec.versions {
        if let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            schema.description = Some("Route is the Schema for the routes API".to_owned());
        }
    }
    crd
}

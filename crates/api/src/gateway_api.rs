//! The part of Kubernetes Gateway API's `gateway.networking.k8s.io/v1` `HTTPRoute` that cfnet writes (spec)
//! and reads (the status an implementation reports per parent), checked against the real CRD of
//! `sigs.k8s.io/gateway-api` v1.6.3 in testdata/gateway-api-crds.yaml (crates/api/tests/gateway_api.rs).
//!
//! Names follow the Go types of `apis/v1/httproute_types.go`. Absent and empty values are omitted; the
//! fields the CRD defaults (`group`, `kind`, `weight`, the path `type`) are `Option`s so that a reader can
//! tell "not written" from a value, and cfnet writes them explicitly (see cfnet-translate). Enumerations
//! (`type` of a path match or a filter) are plain strings: the API adds values over time, and a watch must
//! not fail on an object another writer set to a newer one.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of Gateway API.
pub const GATEWAY_API_GROUP: &str = "gateway.networking.k8s.io";
/// `HTTPPathMatch.type` for a segment-wise prefix match (Core).
pub const PATH_PREFIX: &str = "PathPrefix";
/// `HTTPRouteFilter.type` of a request header modifier.
pub const REQUEST_HEADER_MODIFIER: &str = "RequestHeaderModifier";
/// Route condition: the route is accepted by the parent (`RouteConditionAccepted`).
pub const ROUTE_ACCEPTED: &str = "Accepted";
/// Route condition: every reference of the route resolved (`RouteConditionResolvedRefs`).
pub const ROUTE_RESOLVED_REFS: &str = "ResolvedRefs";

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "gateway.networking.k8s.io",
    version = "v1",
    kind = "HTTPRoute",
    plural = "httproutes",
    namespaced,
    status = "HTTPRouteStatus",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct HTTPRouteSpec {
    /// The Gateways (or other parents) the route attaches to. At most 32.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parent_refs: Vec<ParentReference>,
    /// Host names the route serves, lower case, `*.` allowed as the first label only. At most 16; none
    /// means every host name the listener accepts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    /// 1 to 16 rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<HTTPRouteRule>,
}

/// A reference to a parent (a Gateway unless `kind` says otherwise).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParentReference {
    /// Defaulted to `gateway.networking.k8s.io`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Defaulted to `Gateway`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The parent's namespace; the route's own when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    /// A listener of the Gateway; every listener when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HTTPRouteRule {
    /// Any one matching selects the rule; the CRD defaults an absent list to PathPrefix `/`. At most 64.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<HTTPRouteMatch>,
    /// Where matching requests go, split by weight. At most 16.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backend_refs: Vec<HTTPBackendRef>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HTTPRouteMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<HTTPPathMatch>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HTTPPathMatch {
    /// `Exact`, `PathPrefix` (the default) or `RegularExpression`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Defaulted to `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A weighted backend (a Service unless `group`/`kind` say otherwise) with its own filters.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HTTPBackendRef {
    /// Defaulted to `""` (the core group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Defaulted to `Service`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub name: String,
    /// The backend's namespace; the route's own when absent (a ReferenceGrant is needed otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Required for a Service (a CEL rule of the CRD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// 0 to 1,000,000, defaulted to 1: a weight of 0 must be written, or it becomes 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    /// Filters for this backend only (`HTTPRouteBackendRequestHeaderModification`, Extended support).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<HTTPRouteFilter>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HTTPRouteFilter {
    /// e.g. `RequestHeaderModifier`; the field of that name must then be set, and no other.
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_header_modifier: Option<HTTPHeaderFilter>,
}

/// Header changes of a request: `set` overwrites (or adds), `remove` deletes.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HTTPHeaderFilter {
    /// Keyed by name (case-insensitive); values must not be empty. At most 16.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<HTTPHeader>,
    /// Header names. At most 16.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct HTTPHeader {
    pub name: String,
    pub value: String,
}

/// What the implementations say about the route, one entry per (parent, controller).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct HTTPRouteStatus {
    #[serde(default)]
    pub parents: Vec<RouteParentStatus>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteParentStatus {
    pub parent_ref: ParentReference,
    /// The implementation writing this entry, e.g. `istio.io/gateway-controller`.
    pub controller_name: String,
    /// `Accepted`, `ResolvedRefs`, … (metav1.Condition).
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

impl RouteParentStatus {
    /// The condition of `type_`, if the implementation reported it.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }
}

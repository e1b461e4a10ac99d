//! The Gateway API types against the real HTTPRoute CRD (testdata/gateway-api-crds.yaml, from
//! sigs.k8s.io/gateway-api v1.6.3): every field the types write exists in the CRD's `v1` schema under that
//! name, every field the schema requires is written even when empty, and a status as an implementation
//! writes it reads back.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

use std::path::PathBuf;

use cfnet_api::gateway_api::{
    HTTPBackendRef, HTTPHeader, HTTPHeaderFilter, HTTPPathMatch, HTTPRoute, HTTPRouteFilter,
    HTTPRouteMatch, HTTPRouteRule, HTTPRouteSpec, HTTPRouteStatus, ParentReference,
    RouteParentStatus,
};
use serde::Deserialize;
use serde_json::{Value, json};

fn http_route_schema() -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/gateway-api-crds.yaml");
    let text = std::fs::read_to_string(&path).expect("testdata/gateway-api-crds.yaml");
    for document in serde_yaml_ng::Deserializer::from_str(&text) {
        let crd = Value::deserialize(document).expect("YAML");
        if crd["metadata"]["name"] == "httproutes.gateway.networking.k8s.io" {
            let versions = crd["spec"]["versions"].as_array().expect("versions");
            let v1 = versions.iter().find(|v| v["name"] == "v1").expect("v1");
            return v1["schema"]["openAPIV3Schema"].clone();
        }
    }
    panic!("no HTTPRoute CRD in {}", path.display());
}

/// Fails on every key of `value` the schema does not declare and every required key `value` lacks.
fn check(path: &str, value: &Value, schema: &Value, errors: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let props = &schema["properties"];
            for (k, v) in map {
                if path.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                match props.get(k) {
                    Some(s) => check(&format!("{path}.{k}"), v, s, errors),
                    None => errors.push(format!("{path}.{k}: not in the CRD")),
                }
            }
            for r in schema["required"].as_array().into_iter().flatten() {
                let r = r.as_str().unwrap_or_default();
                if !map.contains_key(r) {
                    errors.push(format!("{path}.{r}: required by the CRD but not written"));
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                check(&format!("{path}[{i}]"), v, &schema["items"], errors);
            }
        }
        _ => {}
    }
}

fn full_route() -> HTTPRoute {
    let mut route = HTTPRoute::new(
        "hr-x",
        HTTPRouteSpec {
            parent_refs: vec![ParentReference {
                group: Some("gateway.networking.k8s.io".into()),
                kind: Some("Gateway".into()),
                namespace: Some("cf-system".into()),
                name: "cf-gateway".into(),
                section_name: Some("https".into()),
                port: Some(443),
            }],
            hostnames: vec!["app.apps.example.com".into()],
            rules: vec![HTTPRouteRule {
                matches: vec![HTTPRouteMatch {
                    path: Some(HTTPPathMatch {
                        type_: Some("PathPrefix".into()),
                        value: Some("/api".into()),
                    }),
                }],
                backend_refs: vec![HTTPBackendRef {
                    group: Some(String::new()),
                    kind: Some("Service".into()),
                    name: "s-1".into(),
                    namespace: Some("ns".into()),
                    port: Some(8080),
                    weight: Some(0),
                    filters: vec![HTTPRouteFilter {
                        type_: "RequestHeaderModifier".into(),
                        request_header_modifier: Some(HTTPHeaderFilter {
                            set: vec![HTTPHeader {
                                name: "CF-App-Id".into(),
                                value: "a".into(),
                            }],
                            remove: vec!["CF-Space-Id".into()],
                        }),
                    }],
                }],
            }],
        },
    );
    route.status = Some(HTTPRouteStatus {
        parents: vec![RouteParentStatus {
            parent_ref: ParentReference {
                name: "cf-gateway".into(),
                ..ParentReference::default()
            },
            controller_name: "istio.io/gateway-controller".into(),
            conditions: vec![],
        }],
    });
    route
}

#[test]
fn every_field_written_is_in_the_crd() {
    let schema = http_route_schema();
    let mut errors = Vec::new();
    check(
        "",
        &serde_json::to_value(full_route()).unwrap(),
        &schema,
        &mut errors,
    );
    assert_eq!(errors, Vec::<String>::new());
}

#[test]
fn required_fields_are_written_when_empty() {
    let schema = http_route_schema();
    let mut route = HTTPRoute::new(
        "hr-x",
        HTTPRouteSpec {
            parent_refs: vec![ParentReference::default()],
            hostnames: vec![],
            rules: vec![HTTPRouteRule {
                matches: vec![HTTPRouteMatch::default()],
                backend_refs: vec![HTTPBackendRef {
                    filters: vec![HTTPRouteFilter {
                        request_header_modifier: Some(HTTPHeaderFilter {
                            set: vec![HTTPHeader::default()],
                            remove: vec![],
                        }),
                        ..HTTPRouteFilter::default()
                    }],
                    ..HTTPBackendRef::default()
                }],
            }],
        },
    );
    route.status = Some(HTTPRouteStatus {
        parents: vec![RouteParentStatus::default()],
    });
    let mut errors = Vec::new();
    check(
        "",
        &serde_json::to_value(route).unwrap(),
        &schema,
        &mut errors,
    );
    assert_eq!(errors, Vec::<String>::new());
}

#[test]
fn the_crd_defaults_the_fields_the_types_keep_optional() {
    // cfnet writes these explicitly (the stored object is then the applied one); a reader must see
    // whether they were written, so they are Options.
    let schema = http_route_schema();
    let spec = &schema["properties"]["spec"]["properties"];
    let parent = &spec["parentRefs"]["items"]["properties"];
    assert_eq!(parent["group"]["default"], "gateway.networking.k8s.io");
    assert_eq!(parent["kind"]["default"], "Gateway");
    let rule = &spec["rules"]["items"]["properties"];
    let backend = &rule["backendRefs"]["items"]["properties"];
    assert_eq!(backend["group"]["default"], "");
    assert_eq!(backend["kind"]["default"], "Service");
    assert_eq!(backend["weight"]["default"], 1);
    let path = &rule["matches"]["items"]["properties"]["path"];
    assert_eq!(path["default"], json!({"type": "PathPrefix", "value": "/"}));
    assert_eq!(spec["rules"]["maxItems"], 16);
    assert_eq!(spec["hostnames"]["maxItems"], 16);
}

#[test]
fn a_status_written_by_an_implementation_reads_back() {
    let status: HTTPRouteStatus = serde_json::from_value(json!({
        "parents": [{
            "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                          "namespace": "cf-system", "name": "cf-gateway"},
            "controllerName": "istio.io/gateway-controller",
            "conditions": [
                {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "Route was valid",
                 "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 3},
                {"type": "ResolvedRefs", "status": "False", "reason": "BackendNotFound",
                 "message": "backend(s-1.ns.svc.cluster.local) not found",
                 "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 3}
            ]
        }]
    }))
    .expect("status reads");
    let parent = &status.parents[0];
    assert_eq!(parent.parent_ref.namespace.as_deref(), Some("cf-system"));
    assert_eq!(parent.controller_name, "istio.io/gateway-controller");
    let refs = parent.condition("ResolvedRefs").expect("ResolvedRefs");
    assert_eq!(
        (refs.status.as_str(), refs.reason.as_str()),
        ("False", "BackendNotFound")
    );
    assert_eq!(
        parent.condition("Accepted").map(|c| c.observed_generation),
        Some(Some(3))
    );
    assert!(parent.condition("Programmed").is_none());
}

#[test]
fn zero_values_are_omitted_except_what_the_crd_requires() {
    let json = serde_json::to_value(HTTPRouteSpec::default()).unwrap();
    assert_eq!(json, json!({}));
    let json = serde_json::to_value(HTTPBackendRef {
        name: "s-1".into(),
        weight: Some(0),
        ..HTTPBackendRef::default()
    })
    .unwrap();
    assert_eq!(json, json!({"name": "s-1", "weight": 0}));
}

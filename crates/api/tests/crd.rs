//! The committed CRD (deploy/crds/networking.cloudfoundry.org_routes.yaml) must be what the types generate,
//! and must be a structural schema the API server accepts with the validation we promise.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

use std::path::PathBuf;

use serde_json::Value;

const FILE: &str = "deploy/crds/networking.cloudfoundry.org_routes.yaml";

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(FILE)
}

fn generated_yaml() -> String {
    serde_yaml_ng::to_string(&cfnet_api::route_crd()).expect("CRD serializes")
}

#[test]
fn committed_crd_is_up_to_date() {
    let generated = generated_yaml();
    let path = committed_path();
    if std::env::var_os("UPDATE_CRD").is_some() {
        std::fs::write(&path, &generated).expect("write the CRD file");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{FILE} is stale: regenerate it with `cargo run -p cfnet -- crd > {FILE}` \
         or `UPDATE_CRD=1 cargo test -p cfnet-api --test crd`"
    );
}

fn schema() -> Value {
    let crd = serde_json::to_value(cfnet_api::route_crd()).expect("json");
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// Walks the schema and fails on what a structural schema may not hold.
fn check_structural(path: &str, v: &Value, errors: &mut Vec<String>) {
    if let Some(obj) = v.as_object() {
        for k in [
            "anyOf",
            "oneOf",
            "allOf",
            "not",
            "$ref",
            "definitions",
            "$defs",
        ] {
            if obj.contains_key(k) {
                // anyOf/oneOf/allOf are allowed only without types/defaults inside; we never need them.
                errors.push(format!("{path}: has {k}"));
            }
        }
        let is_root = path.is_empty();
        let is_int_or_string = obj.get("x-kubernetes-int-or-string").is_some();
        let preserves = obj.get("x-kubernetes-preserve-unknown-fields").is_some();
        if !is_root
            && !is_int_or_string
            && !preserves
            && !obj.contains_key("type")
            && path.ends_with("/properties")
        {
            errors.push(format!("{path}: no type"));
        }
        for (k, child) in obj {
            let child_path = format!("{path}/{k}");
            if k == "properties" {
                if let Some(props) = child.as_object() {
                    for (name, s) in props {
                        if s.get("type").is_none() && s.get("x-kubernetes-int-or-string").is_none()
                        {
                            errors.push(format!("{child_path}/{name}: no type"));
                        }
                        check_structural(&format!("{child_path}/{name}"), s, errors);
                    }
                }
            } else {
                check_structural(&child_path, child, errors);
            }
        }
    }
}

#[test]
fn crd_schema_is_structural() {
    let mut errors = Vec::new();
    check_structural("", &schema(), &mut errors);
    assert!(errors.is_empty(), "not a structural schema: {errors:#?}");
}

#[test]
fn crd_validates_port_and_weight_ranges() {
    let s = schema();
    let dest = &s["properties"]["spec"]["properties"]["destinations"]["items"];
    assert_eq!(dest["properties"]["port"]["minimum"], 1.0);
    assert_eq!(dest["properties"]["port"]["maximum"], 65535.0);
    assert_eq!(dest["properties"]["weight"]["minimum"], 0.0);
    assert_eq!(required(dest), ["app", "guid", "port", "selector"]);
    assert_eq!(
        required(&s["properties"]["spec"]),
        ["destinations", "domain", "host", "url"]
    );
}

/// The `required` list of an object schema, sorted.
fn required(schema: &Value) -> Vec<&str> {
    let mut required: Vec<&str> = schema["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    required.sort();
    required
}

#[test]
fn crd_has_the_upstream_identity_and_printer_columns() {
    let crd = serde_json::to_value(cfnet_api::route_crd()).expect("json");
    assert_eq!(
        crd["metadata"]["name"],
        "routes.networking.cloudfoundry.org"
    );
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert_eq!(crd["spec"]["names"]["listKind"], "RouteList");
    let v = &crd["spec"]["versions"][0];
    assert_eq!(v["name"], "v1alpha1");
    assert_eq!(v["subresources"]["status"], serde_json::json!({}));
    let columns: Vec<&str> = v["additionalPrinterColumns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(columns, ["URL", "Ready", "Age"]);
}

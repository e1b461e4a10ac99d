//! The `cfnet render` contract beyond the goldens: stdin, defaults, Lists, skipped kinds, exit code 2
//! with the file, document and field named, and no panic on bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

use std::io::Write;
use std::process::{Command, Stdio};

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn render(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cfnet"));
    cmd.arg("render")
        .args(args)
        .env_remove("ISTIO_GATEWAY_NAME");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cfnet");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    let run = Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run
}

const ROUTE: &str = r#"apiVersion: networking.cloudfoundry.org/v1alpha1
kind: Route
metadata:
  name: r1
spec:
  host: app
  url: app.apps.example.com
  domain: {name: apps.example.com, internal: false}
  destinations:
  - guid: d1
    port: 8080
    app: {guid: a1, process: {type: web}}
    selector: {matchLabels: {cloudfoundry.org/app_guid: a1}}
"#;

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout).expect("stdout is JSON")
}

#[test]
fn stdin_default_namespace_and_default_gateway() {
    for args in [&[][..], &["-f", "-"][..]] {
        let run = render(args, ROUTE, &[]);
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        assert_eq!(run.stderr, "");
        let docs: Vec<serde_json::Value> = serde_yaml_ng::Deserializer::from_str(&run.stdout)
            .map(|d| serde::Deserialize::deserialize(d).expect("yaml doc"))
            .collect();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["kind"], "Service");
        assert_eq!(docs[0]["metadata"]["namespace"], "default");
        assert_eq!(docs[1]["kind"], "VirtualService");
        assert_eq!(
            docs[1]["spec"]["gateways"][0],
            "cf-system/istio-ingressgateway"
        );
    }
}

#[test]
fn gateway_from_environment_and_flag() {
    let run = render(
        &["-o", "json"],
        ROUTE,
        &[("ISTIO_GATEWAY_NAME", "env-ns/env-gw")],
    );
    assert_eq!(
        json(&run)["items"][1]["spec"]["gateways"][0],
        "env-ns/env-gw"
    );
    let run = render(
        &["-o", "json", "--gateway", "flag-ns/flag-gw"],
        ROUTE,
        &[("ISTIO_GATEWAY_NAME", "env-ns/env-gw")],
    );
    assert_eq!(
        json(&run)["items"][1]["spec"]["gateways"][0],
        "flag-ns/flag-gw"
    );
}

#[test]
fn json_output_is_one_list() {
    let run = render(&["-o", "json"], ROUTE, &[]);
    let v = json(&run);
    assert_eq!(v["apiVersion"], "v1");
    assert_eq!(v["kind"], "List");
    assert_eq!(v["items"].as_array().map(Vec::len), Some(2));
    // Nothing the server populates.
    assert!(v["items"][0]["metadata"].get("uid").is_none());
    assert!(v["items"][0]["metadata"].get("creationTimestamp").is_none());
    assert!(v["items"][0].get("status").is_none());
    // No uid in the input: the ownerReference uid is empty, not invented.
    assert_eq!(v["items"][0]["metadata"]["ownerReferences"][0]["uid"], "");
}

#[test]
fn uid_and_namespace_from_the_input_are_used() {
    let input = ROUTE.replace(
        "  name: r1\n",
        "  name: r1\n  namespace: cf-workloads\n  uid: 1234-abcd\n",
    );
    let v = json(&render(&["-o", "json"], &input, &[]));
    assert_eq!(v["items"][0]["metadata"]["namespace"], "cf-workloads");
    assert_eq!(
        v["items"][0]["metadata"]["ownerReferences"][0]["uid"],
        "1234-abcd"
    );
}

#[test]
fn json_input_route_list_and_other_kinds() {
    let route: serde_json::Value = serde_yaml_ng::from_str(ROUTE).expect("route");
    let list = serde_json::json!({
        "apiVersion": "networking.cloudfoundry.org/v1alpha1",
        "kind": "RouteList",
        "items": [route, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}],
    });
    let run = render(&["-o", "json"], &list.to_string(), &[]);
    assert_eq!(run.code, Some(0));
    assert_eq!(json(&run)["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        run.stderr,
        "warning: <stdin>: document 1, items[1]: skipping v1 ConfigMap \"cm\": only \
         networking.cloudfoundry.org/v1alpha1 Route (also inside a List or RouteList) is rendered\n"
    );
}

#[test]
fn services_in_input_order_virtual_services_by_fqdn() {
    let second = ROUTE
        .replace("name: r1", "name: r0")
        .replace("app.apps", "aaa.apps")
        .replace("host: app", "host: aaa")
        .replace("guid: d1", "guid: d0");
    let input = format!("{ROUTE}---\n{second}");
    let v = json(&render(&["-o", "json"], &input, &[]));
    let names: Vec<&str> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names[..2], ["s-d1", "s-d0"]);
    let hosts: Vec<&str> = v["items"].as_array().expect("items")[2..]
        .iter()
        .filter_map(|i| i["spec"]["hosts"][0].as_str())
        .collect();
    assert_eq!(hosts, ["aaa.apps.example.com", "app.apps.example.com"]);
}

#[test]
fn invalid_route_exits_1_and_still_prints_the_valid_ones() {
    let bad = ROUTE
        .replace("name: r1", "name: bad")
        .replace("url: app.apps.example.com", "url: app.apps.example.com/x")
        .replace("host: app\n", "host: app\n  path: /x\n")
        .replace("guid: d1\n", "guid: d9\n    weight: 90\n");
    let run = render(&["-o", "json"], &format!("{ROUTE}---\n{bad}"), &[]);
    assert_eq!(run.code, Some(1));
    assert_eq!(
        run.stderr,
        "route default/bad: weights must sum to 100, got 90\n"
    );
    assert_eq!(json(&run)["items"].as_array().map(Vec::len), Some(2));
}

#[test]
fn unusable_input_exits_2_naming_file_document_and_field() {
    let cases = [
        (
            ROUTE.replace("port: 8080", "port: eighty"),
            "<stdin>: document 1: Route: field spec.destinations[0].port: invalid type: string \"eighty\", expected i64",
        ),
        (
            ROUTE.replace("  url: app.apps.example.com\n", ""),
            "<stdin>: document 1: Route: field spec.url: missing",
        ),
        (
            ROUTE.replace("  name: r1\n", "  labels: {}\n"),
            "<stdin>: document 1: Route: field metadata.name: missing",
        ),
        (
            format!("{ROUTE}---\nkind: [unclosed\n"),
            "<stdin>: document 2: malformed YAML",
        ),
        (
            "- just\n- a list\n".to_owned(),
            "<stdin>: document 1: expected a Kubernetes object",
        ),
        (
            "metadata: {name: x}\n".to_owned(),
            "<stdin>: document 1: field apiVersion: missing",
        ),
        (
            "{\"kind\": ".to_owned(),
            "<stdin>: document 1: malformed JSON",
        ),
    ];
    for (input, expected) in cases {
        let run = render(&[], &input, &[]);
        assert_eq!(run.code, Some(2), "{input}\n{}", run.stderr);
        assert!(
            run.stderr.starts_with(&format!("error: {expected}")),
            "{}",
            run.stderr
        );
        assert_eq!(run.stdout, "", "nothing is printed for unusable input");
    }
    let run = render(&["-f", "/no/such/file.yaml"], "", &[]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr
            .starts_with("error: cannot read /no/such/file.yaml: "),
        "{}",
        run.stderr
    );
}

#[test]
fn empty_input_renders_nothing() {
    let run = render(&["-o", "json"], "", &[]);
    assert_eq!(run.code, Some(0));
    assert_eq!(json(&run)["items"], serde_json::json!([]));
    let run = render(&[], "---\n", &[]);
    assert_eq!((run.code, run.stdout.as_str()), (Some(0), ""));
}

#[test]
fn crd_subcommand_prints_the_committed_crd() {
    let out = Command::new(env!("CARGO_BIN_EXE_cfnet"))
        .arg("crd")
        .output()
        .expect("run");
    assert!(out.status.success());
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/crds/networking.cloudfoundry.org_routes.yaml"),
    )
    .expect("committed CRD");
    assert_eq!(String::from_utf8_lossy(&out.stdout), committed);
}

//! The `cfnet dev up --state-dir DIR [--istiod]` contract (used by acceptance checks outside the repository):
//! DIR/kubeconfig appears once the API server is ready with the CRDs installed; with `--istiod`, DIR/istiod
//! (the plaintext xDS address `127.0.0.1:PORT` and a newline) appears once istiod is ready and the chart's Gateway
//! is applied (`cfnet proxy-config --state-dir DIR` then shows the gateway's listeners); SIGTERM/SIGINT stop
//! everything cleanly and remove both files; a missing binary names `cfnet dev install`.
//! Fails (never skips) when a binary is missing: install them with `cfnet dev install`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{KillOnDrop, exit_within, processes_naming};
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

mod common;

const CFNET: &str = env!("CARGO_BIN_EXE_cfnet");

fn wait_for_file(path: &Path, child: &mut Child, within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if path.exists() {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("cfnet dev up exited early with {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} did not appear within {within:?}", path.display());
}

/// DIR/istiod holds istiod's plaintext xDS address on 127.0.0.1 and a newline, and the port accepts.
fn assert_xds_address(istiod_file: &Path) {
    let contents = std::fs::read_to_string(istiod_file).unwrap();
    let addr = contents
        .strip_suffix('\n')
        .unwrap_or_else(|| panic!("DIR/istiod ends with a newline: {contents:?}"));
    let addr: std::net::SocketAddr = addr
        .parse()
        .unwrap_or_else(|e| panic!("DIR/istiod holds an address: {contents:?}: {e}"));
    assert_eq!(addr.ip().to_string(), "127.0.0.1", "{contents:?}");
    std::net::TcpStream::connect(addr).expect("istiod's xDS port accepts connections");
}

/// The chart's Gateway and ingress gateway Service are applied: `cfnet proxy-config --state-dir DIR` finds istiod
/// through DIR/istiod, and istiod gives the CF ingress gateway its HTTP listener on the Service's targetPort.
fn assert_gateway_has_listeners(state: &Path) {
    let out = Command::new(CFNET)
        .args(["proxy-config", "listeners", "-o", "json", "--state-dir"])
        .arg(state)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cfnet proxy-config: {stderr}");
    let listeners: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        listeners
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["address"] == "0.0.0.0:8080"),
        "the gateway listens on 8080: {listeners}"
    );
}

/// The admin kubeconfig works, and the Route CRD is installed.
fn assert_routes_can_be_listed(kubeconfig: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let config = kube::Config::from_custom_kubeconfig(
            Kubeconfig::read_from(kubeconfig).unwrap(),
            &KubeConfigOptions::default(),
        )
        .await
        .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let routes: Api<cfnet_api::Route> = Api::all(client);
        routes
            .list(&ListParams::default())
            .await
            .expect("the Route CRD is installed");
    });
}

fn run_until_ready_then_signal(signal: libc::c_int, istiod: bool) {
    let state = tempfile::tempdir().unwrap();
    let kubeconfig = state.path().join("kubeconfig");
    let istiod_file = state.path().join("istiod");
    let mut command = Command::new(CFNET);
    command.args(["dev", "up", "--state-dir"]).arg(state.path());
    if istiod {
        command.arg("--istiod");
    }
    let mut child = KillOnDrop(
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    wait_for_file(&kubeconfig, &mut child.0, Duration::from_secs(60));
    if istiod {
        wait_for_file(&istiod_file, &mut child.0, Duration::from_secs(60));
        assert_xds_address(&istiod_file);
        assert_gateway_has_listeners(state.path());
    } else {
        assert!(!istiod_file.exists(), "no DIR/istiod without --istiod");
    }
    assert_eq!(
        processes_naming(state.path(), child.0.id()).len(),
        if istiod { 3 } else { 2 },
        "etcd and kube-apiserver (and istiod) run"
    );

    // The kubeconfig works as soon as it exists, and the CRDs are already there.
    assert_routes_can_be_listed(&kubeconfig);

    common::signal(&child.0, signal);
    let status = exit_within(
        &mut child.0,
        Duration::from_secs(20),
        &format!("cfnet dev up after signal {signal}"),
    );
    assert!(
        status.success(),
        "cfnet dev up exits 0 on signal {signal}: {status}"
    );
    assert_eq!(
        processes_naming(state.path(), child.0.id()),
        Vec::<String>::new(),
        "no server survives"
    );
    assert!(
        !kubeconfig.exists(),
        "the stale kubeconfig is removed on exit"
    );
    assert!(
        !istiod_file.exists(),
        "the stale DIR/istiod is removed on exit"
    );
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.0.stdout.take().unwrap(), &mut out).unwrap();
    assert!(
        out.contains(&format!("export KUBECONFIG={}", kubeconfig.display())),
        "{out}"
    );
}

#[test]
fn dev_up_writes_a_working_kubeconfig_and_stops_on_sigterm() {
    run_until_ready_then_signal(libc::SIGTERM, false);
}

#[test]
fn dev_up_stops_on_sigint() {
    run_until_ready_then_signal(libc::SIGINT, false);
}

#[test]
fn dev_up_istiod_writes_the_xds_address_and_stops_on_sigterm() {
    run_until_ready_then_signal(libc::SIGTERM, true);
}

#[test]
fn dev_up_istiod_without_pilot_discovery_names_the_install_command() {
    // A cache holding the control plane but not istiod.
    let binaries = cfnet_testenv::locate_binaries()
        .expect("etcd and kube-apiserver are installed (`cfnet dev install`)");
    let cache = tempfile::tempdir().unwrap();
    std::fs::create_dir(cache.path().join("bin")).unwrap();
    std::os::unix::fs::symlink(&binaries.etcd, cache.path().join("bin/etcd")).unwrap();
    std::os::unix::fs::symlink(
        &binaries.kube_apiserver,
        cache.path().join("bin/kube-apiserver"),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = Command::new(CFNET)
        .args(["dev", "up", "--istiod", "--state-dir"])
        .arg(state.path())
        .env("CFNET_CACHE_DIR", cache.path())
        .env_remove("KUBEBUILDER_ASSETS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("pilot-discovery"), "{stderr}");
    assert!(stderr.contains("cfnet dev install"), "{stderr}");
    assert!(!state.path().join("istiod").exists());
    assert!(!state.path().join("kubeconfig").exists());
    assert_eq!(
        processes_naming(state.path(), 0),
        Vec::<String>::new(),
        "etcd and kube-apiserver are stopped"
    );
}

#[test]
fn dev_up_without_binaries_names_the_install_command() {
    let empty = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = Command::new(CFNET)
        .args(["dev", "up", "--state-dir"])
        .arg(state.path())
        .env("CFNET_CACHE_DIR", empty.path())
        .env_remove("KUBEBUILDER_ASSETS")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cfnet dev install"), "{stderr}");
    assert!(!state.path().join("kubeconfig").exists());
}

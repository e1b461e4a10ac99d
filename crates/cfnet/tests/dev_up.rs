//! The `cfnet dev up --state-dir DIR` contract (used by acceptance checks outside the repository):
//! DIR/kubeconfig appears once the API server is ready with the CRDs installed; SIGTERM/SIGINT stop
//! everything cleanly; a missing binary names `cfnet dev install`.
//! Fails (never skips) when etcd/kube-apiserver are missing: install them with `cfnet dev install`.
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

fn run_until_ready_then_signal(signal: libc::c_int) {
    let state = tempfile::tempdir().unwrap();
    let kubeconfig = state.path().join("kubeconfig");
    let mut child = KillOnDrop(
        Command::new(CFNET)
            .args(["dev", "up", "--state-dir"])
            .arg(state.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    wait_for_file(&kubeconfig, &mut child.0, Duration::from_secs(60));
    assert_eq!(
        processes_naming(state.path(), child.0.id()).len(),
        2,
        "etcd and kube-apiserver run"
    );

    // The kubeconfig works as soon as it exists, and the CRDs are already there.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let config = kube::Config::from_custom_kubeconfig(
            Kubeconfig::read_from(&kubeconfig).unwrap(),
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
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.0.stdout.take().unwrap(), &mut out).unwrap();
    assert!(
        out.contains(&format!("export KUBECONFIG={}", kubeconfig.display())),
        "{out}"
    );
}

#[test]
fn dev_up_writes_a_working_kubeconfig_and_stops_on_sigterm() {
    run_until_ready_then_signal(libc::SIGTERM);
}

#[test]
fn dev_up_stops_on_sigint() {
    run_until_ready_then_signal(libc::SIGINT);
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

//! No etcd or kube-apiserver outlives its owner: not after drop, not after a panic, not after SIGKILL of the
//! owning process, not when the thread that started them exits. Parallel instances do not collide.
//! These tests FAIL (never skip) when the binaries are missing: install them with `cfnet dev install`.

mod common;

use common::alive;
use std::time::{Duration, Instant};

use cfnet_testenv::ControlPlane;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{Api, ObjectMeta, PostParams};

async fn start() -> ControlPlane {
    ControlPlane::start()
        .await
        .unwrap_or_else(|e| panic!("control plane must start: {e}"))
}

fn wait_dead(pid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    !alive(pid)
}

#[tokio::test]
async fn drop_stops_both_servers_and_removes_the_temp_dir() {
    let cp = start().await;
    let (etcd, apiserver) = cp.pids();
    let dir = cp.state_dir().to_path_buf();
    assert!(alive(etcd) && alive(apiserver));
    drop(cp);
    assert!(!alive(etcd), "etcd {etcd} survived drop");
    assert!(
        !alive(apiserver),
        "kube-apiserver {apiserver} survived drop"
    );
    assert!(!dir.exists(), "{} survived drop", dir.display());
}

#[test]
fn a_panicking_test_still_stops_the_servers() {
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let cp = start().await;
            tx.send(cp.pids()).unwrap();
            panic!("test failure while the control plane runs");
        })
    })
    .join();
    assert!(result.is_err(), "the thread must have panicked");
    let (etcd, apiserver) = rx.recv().unwrap();
    assert!(
        !alive(etcd) && !alive(apiserver),
        "servers survived a panic: etcd {etcd}, kube-apiserver {apiserver}"
    );
}

/// PR_SET_PDEATHSIG fires when the forking *thread* exits. A control plane started on a thread that then
/// ends must keep running (servers are forked from a process-lifetime thread).
#[test]
fn servers_survive_the_exit_of_the_thread_that_started_them() {
    let cp = std::thread::spawn(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(start())
    })
    .join()
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (etcd, apiserver) = cp.pids();
    assert!(
        alive(etcd) && alive(apiserver),
        "servers died with their starting thread"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // A fresh client: the one made on the dead thread's runtime is bound to that runtime.
        let kubeconfig = kube::config::Kubeconfig::read_from(cp.kubeconfig_path()).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        assert!(
            client
                .apiserver_version()
                .await
                .unwrap()
                .git_version
                .starts_with("v1.")
        );
    });
}

/// Helper run in a child process by `servers_die_when_the_owning_process_is_sigkilled`: starts a control
/// plane on a tokio worker thread, prints the pids, and waits to be killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper: run in a child process by servers_die_when_the_owning_process_is_sigkilled"]
async fn helper_start_and_wait_for_sigkill() {
    let cp = tokio::spawn(start()).await.unwrap();
    let (etcd, apiserver) = cp.pids();
    println!("PIDS {etcd} {apiserver} {}", cp.state_dir().display());
    tokio::time::sleep(Duration::from_secs(120)).await;
    panic!("not killed within 120 s");
}

#[test]
fn servers_die_when_the_owning_process_is_sigkilled() {
    let (mut child, line) = common::run_helper(
        "helper_start_and_wait_for_sigkill",
        "PIDS ",
        "the helper must print its pids (did the control plane start?)",
    );
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (etcd, apiserver): (u32, u32) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    assert!(alive(etcd) && alive(apiserver));

    child.kill().unwrap(); // SIGKILL: no destructor runs in the child
    child.wait().unwrap();
    assert!(
        wait_dead(etcd, Duration::from_secs(5)),
        "etcd {etcd} survived SIGKILL of its owner"
    );
    assert!(
        wait_dead(apiserver, Duration::from_secs(5)),
        "kube-apiserver {apiserver} survived SIGKILL of its owner"
    );
}

#[tokio::test]
async fn parallel_instances_do_not_collide() {
    let (a, b) = tokio::join!(start(), start());
    assert_ne!(a.server_url(), b.server_url());
    assert_ne!(a.etcd_url(), b.etcd_url());
    assert_ne!(a.state_dir(), b.state_dir());
    // Same object in both: each lands in its own etcd.
    for cp in [&a, &b] {
        let api: Api<ConfigMap> = Api::namespaced(cp.client(), "default");
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some("same".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        api.create(&PostParams::default(), &cm).await.unwrap();
    }
    let ns_a = a.create_namespace("shared-prefix").await.unwrap();
    let ns_b = b.create_namespace("shared-prefix").await.unwrap();
    assert_ne!(ns_a, ns_b);
}

#[tokio::test]
async fn service_account_clients_are_subject_to_rbac() {
    let cp = start().await;
    let ns = cp.create_namespace("rbac").await.unwrap();
    let sa_client = cp.service_account_client(&ns, "controller").await.unwrap();
    let as_sa: Api<ConfigMap> = Api::namespaced(sa_client.clone(), &ns);
    match as_sa.list(&Default::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("a ServiceAccount without RBAC must be forbidden, got {other:?}"),
    }

    let role = Role {
        metadata: ObjectMeta {
            name: Some("read-configmaps".into()),
            ..Default::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["configmaps".into()]),
            verbs: vec!["list".into()],
            ..Default::default()
        }]),
    };
    Api::<Role>::namespaced(cp.client(), &ns)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some("controller".into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: "read-configmaps".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: "controller".into(),
            namespace: Some(ns.clone()),
            ..Default::default()
        }]),
    };
    Api::<RoleBinding>::namespaced(cp.client(), &ns)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    // The authorizer sees the binding through its informer, a moment after the create returns.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match as_sa.list(&Default::default()).await {
            Ok(_) => break,
            Err(kube::Error::Api(status))
                if status.code == 403 && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("allowed once the Role is bound, got {e}"),
        }
    }

    // The file variant, for running the controller as a process.
    let path = cp
        .service_account_kubeconfig(&ns, "controller")
        .await
        .unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.contains(&format!("system:serviceaccount:{ns}:controller")),
        "{text}"
    );
}

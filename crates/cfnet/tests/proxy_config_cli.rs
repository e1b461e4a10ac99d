//! `cfnet proxy-config`'s errors, as the built binary, without servers: a dead istiod is one line naming its
//! address, exit 1; a state dir without `istiod` exit 1 naming the file and the fix; bad flags exit 2.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

mod common;

use common::cfnet;

/// A loopback port nothing listens on: bound, then released.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    addr
}

#[test]
fn unreachable_istiod_is_one_line_naming_the_address_and_exit_1() {
    let addr = closed_port();
    let out = cfnet(&["proxy-config", "routes", "--xds", &addr]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with("cfnet proxy-config: ") && stderr.contains(&addr),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    // The same through a state dir whose istiod file names a dead istiod.
    let state = tempfile::tempdir().unwrap();
    std::fs::write(state.path().join("istiod"), format!("{addr}\n")).unwrap();
    let out = cfnet(&[
        "proxy-config",
        "clusters",
        "--state-dir",
        state.path().to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&addr), "{stderr}");
}

#[test]
fn missing_address_and_bad_flags() {
    // A state dir of `dev up` without --istiod: exit 1, naming the file and the fix.
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_str().unwrap();
    let out = cfnet(&["proxy-config", "routes", "--state-dir", dir]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("{dir}/istiod")) && stderr.contains("cfnet dev up --istiod"),
        "{stderr}"
    );
    // Usage errors: exit 2.
    for args in [
        &["proxy-config", "routes"][..],
        &["proxy-config", "secrets", "--xds", "127.0.0.1:1"],
        &[
            "proxy-config",
            "routes",
            "--xds",
            "127.0.0.1:1",
            "-o",
            "yaml",
        ],
        &[
            "proxy-config",
            "routes",
            "--xds",
            "127.0.0.1:1",
            "--proxy",
            "router:x",
        ],
        &[
            "proxy-config",
            "routes",
            "--xds",
            "127.0.0.1:1",
            "--proxy",
            "sidecar",
        ],
    ] {
        let out = cfnet(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

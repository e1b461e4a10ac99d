//! Golden tests of `cfnet render` on examples/ (the real binary; exit code, stderr and stdout).
//! The expected outputs live in testdata/render/*.snap. After an intended change, regenerate them with
//! `INSTA_UPDATE=always cargo test -p cfnet --test render` and review the diff (cargo-insta not needed).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `cfnet render` from the repo root (so file names in messages are repo-relative).
fn render(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cfnet"))
        .arg("render")
        .args(args)
        .current_dir(repo())
        .env_remove("ISTIO_GATEWAY_NAME")
        .env_remove("CFNET_ROUTING_API")
        .env_remove("CFNET_GATEWAY_API_PARENT")
        .stdin(Stdio::null())
        .output()
        .expect("run cfnet");
    format!(
        "exit: {}\n--- stderr\n{}--- stdout\n{}",
        out.status
            .code()
            .map_or("signal".to_owned(), |c| c.to_string()),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    )
}

macro_rules! golden {
    ($name:ident, $($arg:expr),+) => {
        #[test]
        fn $name() {
            let output = render(&[$($arg),+]);
            insta::with_settings!({
                snapshot_path => "../../../testdata/render",
                prepend_module_to_snapshot => false,
                omit_expression => true,
            }, {
                insta::assert_snapshot!(stringify!($name), output);
            });
        }
    };
}

golden!(
    single_destination_yaml,
    "-f",
    "examples/single-destination.yaml"
);
golden!(
    single_destination_json,
    "-f",
    "examples/single-destination.yaml",
    "-o",
    "json"
);
golden!(weighted_split_yaml, "-f", "examples/weighted-split.yaml");
golden!(context_paths_yaml, "-f", "examples/context-paths.yaml");
golden!(
    internal_route_json,
    "-f",
    "examples/internal-route.yaml",
    "-o",
    "json"
);
golden!(invalid_weights_yaml, "-f", "examples/invalid-weights.yaml");
golden!(
    all_examples_with_gateway_json,
    "-f",
    "examples/weighted-split.yaml",
    "-f",
    "examples/internal-route.yaml",
    "-f",
    "examples/context-paths.yaml",
    "-f",
    "examples/single-destination.yaml",
    "--gateway",
    "istio-system/my-gateway",
    "-o",
    "json"
);

// Gateway API mode (docs/gateway-api.md): the same Services, HTTPRoutes instead of VirtualServices.
golden!(
    context_paths_gateway_api_yaml,
    "-f",
    "examples/context-paths.yaml",
    "--routing-api",
    "gateway-api"
);
golden!(
    weighted_split_gateway_api_parent_json,
    "-f",
    "examples/weighted-split.yaml",
    "--routing-api",
    "gateway-api",
    "--gateway-api-parent",
    "infra/edge",
    "-o",
    "json"
);
golden!(
    internal_route_gateway_api_yaml,
    "-f",
    "examples/internal-route.yaml",
    "--routing-api",
    "gateway-api"
);
golden!(
    unknown_routing_api,
    "-f",
    "examples/single-destination.yaml",
    "--routing-api",
    "nginx"
);

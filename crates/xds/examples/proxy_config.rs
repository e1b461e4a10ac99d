//! Prints what istiod serves a proxy, and saves it as a fixture (until `cfnet proxy-config` exists):
//!
//! ```sh
//! cargo run -p cfnet-xds --example proxy_config -- --xds 127.0.0.1:15010 [--proxy gateway|sidecar:NS] \
//!     [-o table|json] [--save FILE]
//! ```
//!
//! `--save` writes the configuration in the form `ProxyConfig::decode` reads (the fixtures in tests/fixtures).

use std::time::Duration;

use cfnet_xds::{Proxy, ProxyConfig, fetch, view};

fn usage() -> ! {
    eprintln!(
        "usage: proxy_config --xds HOST:PORT [--proxy gateway|sidecar:NS] [-o table|json] [--save FILE]"
    );
    std::process::exit(2)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut xds = None;
    let mut proxy = Proxy::default();
    let mut output = "table".to_owned();
    let mut save = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--xds" => xds = Some(value()),
            "--proxy" => {
                proxy = value().parse().unwrap_or_else(|e| {
                    eprintln!("proxy_config: {e}");
                    std::process::exit(2)
                })
            }
            "-o" => output = value(),
            "--save" => save = Some(value()),
            _ => usage(),
        }
    }
    let Some(xds) = xds else { usage() };
    let config: ProxyConfig = match fetch(&xds, &proxy, Duration::from_secs(10)).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("proxy_config: {e}");
            std::process::exit(1)
        }
    };
    if let Some(path) = save
        && let Err(e) = std::fs::write(&path, config.encode())
    {
        eprintln!("proxy_config: cannot write {path}: {e}");
        std::process::exit(1)
    }
    let (routes, clusters, listeners) = (
        view::routes(&config),
        view::clusters(&config),
        view::listeners(&config),
    );
    if output == "json" {
        let all =
            serde_json::json!({"listeners": listeners, "routes": routes, "clusters": clusters});
        println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
    } else {
        println!("{}", view::listeners_table(&listeners));
        println!("{}", view::routes_table(&routes));
        print!("{}", view::clusters_table(&clusters));
    }
}

//! Follows what istiod pushes to a proxy: one line per response, and optionally the time until a host and path
//! is routed (e.g. after a Route was written):
//!
//! ```sh
//! cargo run -p cfnet-xds --example watch -- --xds 127.0.0.1:15010 [--proxy gateway|sidecar:NS] \
//!     [--until HOST/PATH] [--seconds N]
//! ```

use std::time::Duration;

use cfnet_xds::{Proxy, Subscription};

fn fail(message: String) -> ! {
    eprintln!("watch: {message}");
    std::process::exit(1)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut xds = None;
    let mut proxy = Proxy::default();
    let mut until: Option<(String, String)> = None;
    let mut seconds = 60;
    let mut args = std::env::args().skip(1);
    let usage = "usage: watch --xds HOST:PORT [--proxy gateway|sidecar:NS] [--until HOST/PATH] [--seconds N]";
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_else(|| fail(usage.to_owned()));
        match arg.as_str() {
            "--xds" => xds = Some(value),
            "--proxy" => proxy = value.parse().unwrap_or_else(|e| fail(format!("{e}"))),
            "--until" => {
                let (host, path) = value.split_once('/').unwrap_or((&value, ""));
                until = Some((host.to_owned(), format!("/{path}")));
            }
            "--seconds" => seconds = value.parse().unwrap_or_else(|_| fail(usage.to_owned())),
            _ => fail(usage.to_owned()),
        }
    }
    let xds = xds.unwrap_or_else(|| fail(usage.to_owned()));
    let timeout = Duration::from_secs(seconds);
    let mut sub = Subscription::start(&xds, &proxy, Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| fail(e.to_string()));
    let start = sub.latest().at;
    println!(
        "connected as {proxy}: {} route configurations",
        sub.config().route_configs.len()
    );
    if let Some((host, path)) = until {
        let what = format!("routes {host}{path}");
        let update = sub
            .wait_for(&what, timeout, |c| {
                c.lookup(&host, None, &path)
                    .iter()
                    .any(|l| l.route.is_some())
            })
            .await
            .unwrap_or_else(|e| fail(e.to_string()));
        println!(
            "{what} after {:?} (update #{})",
            update.at - start,
            update.seq
        );
        return;
    }
    loop {
        match sub.next(timeout).await {
            Ok(u) => println!(
                "{:>8.3}s #{} {} version {} {} resources{}{}",
                (u.at - start).as_secs_f64(),
                u.seq,
                u.received.kind.short(),
                u.received.version,
                u.received.names.len(),
                if u.complete { "" } else { " (incomplete)" },
                u.received
                    .rejected
                    .as_deref()
                    .map(|r| format!(" REFUSED: {r}"))
                    .unwrap_or_default(),
            ),
            Err(e) => fail(e.to_string()),
        }
    }
}

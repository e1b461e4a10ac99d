use std::time::Duration;

/// What can go wrong talking to istiod. Each message names the address and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error(
        "invalid xDS address {addr:?}: {reason}; pass istiod's plaintext gRPC address as HOST:PORT, e.g. 127.0.0.1:15010"
    )]
    InvalidAddress { addr: String, reason: String },

    #[error(
        "istiod at {addr} is not reachable ({reason}): start it with `cfnet dev up --istiod` or pass --xds"
    )]
    Unreachable { addr: String, reason: String },

    #[error(
        "istiod at {addr} refused the xDS stream of {node} ({code}: {message}); check that {addr} is istiod's plaintext gRPC port (--grpcAddr)"
    )]
    Refused {
        addr: String,
        node: String,
        code: String,
        message: String,
    },

    #[error("istiod at {addr} closed the xDS stream of {node}: {reason}; check istiod's log")]
    Closed {
        addr: String,
        node: String,
        reason: String,
    },

    #[error(
        "istiod at {addr} did not serve the whole configuration of {node} within {timeout:?}: missing {missing}; check istiod's log, and that the proxy's namespace and labels match its Gateway and Service"
    )]
    Incomplete {
        addr: String,
        node: String,
        timeout: Duration,
        missing: String,
    },

    #[error(
        "istiod at {addr} sent {node} a configuration that cannot be read ({reason}); it was refused (NACK)"
    )]
    Invalid {
        addr: String,
        node: String,
        reason: String,
    },

    #[error(
        "istiod at {addr} served {node} no configuration that {waited_for} within {timeout:?} (last: {last})"
    )]
    NotServed {
        addr: String,
        node: String,
        waited_for: String,
        timeout: Duration,
        last: String,
    },
}

/// An error and its sources, `a: b: c`, as transport errors hide the cause ("Connection refused") in sources.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

//! Object names, exactly as the Go controller made them (and the HTTPRoutes' after them).

use sha2::{Digest, Sha256};

/// `s-<destination guid>`: Kubernetes names cannot start with a digit, GUIDs can.
pub fn service_name(destination_guid: &str) -> String {
    format!("s-{destination_guid}")
}

/// `vs-<lowercase hex sha256(fqdn)>`: always 67 characters, whatever the FQDN holds.
pub fn virtual_service_name(fqdn: &str) -> String {
    format!("vs-{}", hex::encode(Sha256::digest(fqdn.as_bytes())))
}

/// `hr-<lowercase hex sha256(fqdn)>`: the HTTPRoute of an FQDN in gateway-api mode, named like its
/// VirtualService. Further shards of a large FQDN add `-<bits>` ([`crate::gateway_api`]).
pub fn http_route_name(fqdn: &str) -> String {
    format!("hr-{}", hex::encode(Sha256::digest(fqdn.as_bytes())))
}

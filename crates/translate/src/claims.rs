//! Facts that cross FQDNs: who holds a destination guid in a namespace, and which namespace holds an
//! external FQDN. The oldest claim wins: creationTimestamp, then namespace, then name.

/// Orders claims: older first. Routes without a creationTimestamp (render input) sort by name only.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClaimOrder {
    /// RFC 3339 creationTimestamp; RFC 3339 UTC strings of one format order like their times.
    pub created: Option<String>,
    pub namespace: String,
    pub name: String,
}

/// Cross-FQDN facts the translation of one FQDN needs.
pub trait Claims {
    /// The route (name) that holds destination `guid` in `namespace`, if any.
    fn destination_holder(&self, namespace: &str, guid: &str) -> Option<&str>;
    /// The namespace that holds external FQDN `fqdn` on the ingress gateway, if any.
    fn external_fqdn_holder(&self, fqdn: &str) -> Option<&str>;
}

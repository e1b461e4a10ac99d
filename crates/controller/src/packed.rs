//! How the index keeps a Route: as its JSON bytes, LZ4-compressed against a dictionary. A trimmed
//! Route as k8s-openapi structs takes about 2.4 KB (the label and selector maps alone are two
//! `BTreeMap` nodes of some 540 bytes each); its JSON takes about 1 KB, most of it the same key names
//! and constants in every Route. Compressed against a template Route's JSON it takes a few hundred
//! bytes. A reconcile unpacks only the Routes of its key, which costs microseconds next to the API
//! calls it makes.

use std::sync::{Arc, LazyLock};

use cfnet_api::{FINALIZER, READY, ROUTE_API_VERSION, Reason, Route};
use cfnet_translate::ROUTE_LABELS;

use crate::small_set::Named;

#[derive(Debug)]
pub(crate) enum PackedRoute {
    Compressed {
        /// Shared with the index's key of the Route.
        name: Arc<str>,
        /// LZ4 block of the Route's JSON against [`DICTIONARY`], its length prepended.
        bytes: Box<[u8]>,
    },
    /// A Route whose bytes do not read back as the same Route (none is known): kept as it is.
    Plain(Arc<Route>),
}

/// What every cached Route has in common, as serde writes it, so that LZ4 finds the key names, the
/// label keys, the finalizer and the status wording in it and stores a Route as little more than its
/// own values. Only ever used within one process, so it may change between versions.
static DICTIONARY: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let guid = "00000000-0000-0000-0000-000000000000";
    let labels: serde_json::Map<String, serde_json::Value> = ROUTE_LABELS
        .iter()
        .map(|k| (k.to_string(), guid.into()))
        .collect();
    let time = "2000-01-01T00:00:00Z";
    let template = serde_json::json!({
        "apiVersion": ROUTE_API_VERSION, "kind": "Route",
        "metadata": {"creationTimestamp": time, "finalizers": [FINALIZER], "generation": 1,
                     "labels": labels, "name": guid, "namespace": "cf-workloads",
                     "resourceVersion": "1", "uid": guid},
        "spec": {"host": "host", "path": "/path", "url": "host.apps.example.com/path",
                 "domain": {"name": "apps.example.com", "internal": false},
                 "destinations": [{"guid": guid, "weight": 100, "port": 8080,
                                   "app": {"guid": guid, "process": {"type": "web"}},
                                   "selector": {"matchLabels": {"cloudfoundry.org/app_guid": guid,
                                                                "cloudfoundry.org/process_type": "web"}}}]},
        "status": {"conditions": [{"type": READY, "status": "True", "reason": Reason::Programmed.as_str(),
                                   "message": "programmed in VirtualService cf-workloads/vs-",
                                   "lastTransitionTime": time, "observedGeneration": 1}]}
    });
    // Written through `Route` so that keys come in the order serde writes them. A template that does
    // not convert (it always does) only costs compression.
    serde_json::from_value::<Route>(template)
        .ok()
        .and_then(|route| serde_json::to_vec(&route).ok())
        .unwrap_or_default()
});

impl PackedRoute {
    pub fn new(route: Route) -> Self {
        let json = match serde_json::to_vec(&route) {
            Ok(json) => json,
            Err(_) => return PackedRoute::Plain(Arc::new(route)),
        };
        let bytes = lz4_flex::block::compress_prepend_size_with_dict(&json, &DICTIONARY);
        // Checked here once, so that `unpack` of these bytes cannot fail.
        match decode::<Route>(&bytes) {
            Some(back) if back == route => PackedRoute::Compressed {
                name: route.metadata.name.unwrap_or_default().into(),
                bytes: bytes.into_boxed_slice(),
            },
            _ => PackedRoute::Plain(Arc::new(route)),
        }
    }

    /// The name, as a copy the index can share.
    pub fn shared_name(&self) -> Arc<str> {
        match self {
            PackedRoute::Compressed { name, .. } => name.clone(),
            PackedRoute::Plain(route) => route.metadata.name.as_deref().unwrap_or_default().into(),
        }
    }

    /// (namespace, name); the namespace is not kept apart (the index's keys hold it), so it is read
    /// from the bytes.
    pub fn id(&self) -> (Arc<str>, Arc<str>) {
        #[derive(serde::Deserialize)]
        struct Meta {
            namespace: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Head {
            metadata: Meta,
        }
        let namespace = match self {
            PackedRoute::Compressed { bytes, .. } => {
                decode::<Head>(bytes).and_then(|h| h.metadata.namespace)
            }
            PackedRoute::Plain(route) => route.metadata.namespace.clone(),
        };
        (namespace.unwrap_or_default().into(), self.shared_name())
    }

    // The one `expect`: see the comment inside.
    #[allow(clippy::expect_used)]
    pub fn unpack(&self) -> Arc<Route> {
        match self {
            PackedRoute::Compressed { bytes, .. } => Arc::new(
                // Cannot fail: `new` read these very bytes back into an equal Route, and both
                // decompression and decoding are deterministic.
                decode(bytes).expect("a packed Route reads back (checked when packed)"),
            ),
            PackedRoute::Plain(route) => Arc::clone(route),
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let json = lz4_flex::block::decompress_size_prepended_with_dict(bytes, &DICTIONARY).ok()?;
    serde_json::from_slice(&json).ok()
}

impl Named for PackedRoute {
    fn name(&self) -> &str {
        match self {
            PackedRoute::Compressed { name, .. } => name,
            PackedRoute::Plain(route) => route.metadata.name.as_deref().unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::served::cloud_controller_route;

    #[test]
    fn a_packed_route_unpacks_to_the_same_route() {
        let mut route = cfnet_api::fixtures::route("r")
            .namespace("ns")
            .host("a")
            .path("/p")
            .uid("u")
            .created("2024-01-01T00:00:00Z")
            .label("cloudfoundry.org/space_guid", "s")
            .destination(cfnet_api::fixtures::destination("d", "app").weight(100))
            .build();
        route.metadata.generation = Some(2);
        route.metadata.finalizers = Some(vec!["f".into()]);
        route.status = cloud_controller_route(0).status;
        let packed = PackedRoute::new(route.clone());
        assert!(matches!(packed, PackedRoute::Compressed { .. }));
        assert_eq!(packed.id(), ("ns".into(), "r".into()));
        assert_eq!(*packed.unpack(), route);
    }

    /// Measured: 1,174 bytes of JSON pack to 264 (757 without the dictionary).
    #[test]
    fn a_cloud_controller_route_packs_to_under_a_third_of_its_json() {
        for i in 0..50 {
            let route = cloud_controller_route(i);
            let json = serde_json::to_vec(&route).unwrap().len();
            let packed = PackedRoute::new(route.clone());
            let PackedRoute::Compressed { bytes, .. } = &packed else {
                panic!("route {i} was not compressed");
            };
            assert!(
                bytes.len() * 3 < json,
                "route {i}: {} bytes packed from {json} bytes of JSON",
                bytes.len()
            );
            assert_eq!(*packed.unpack(), route);
            assert_eq!(
                packed.id(),
                (
                    "cf-workloads".into(),
                    route.metadata.name.as_deref().unwrap().into()
                )
            );
        }
    }
}

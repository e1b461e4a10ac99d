//! How the index keeps a Route: as its JSON bytes. A trimmed Route as k8s-openapi structs takes about
//! 2.4 KB (the label and selector maps alone are two `BTreeMap` nodes of some 540 bytes each); its JSON
//! takes about 1 KB. A reconcile unpacks only the Routes of its key, which costs microseconds next to
//! the API calls it makes.

use std::sync::Arc;

use cfnet_api::Route;

use crate::small_set::Named;

#[derive(Debug)]
pub(crate) enum PackedRoute {
    Json {
        name: Box<str>,
        json: Box<[u8]>,
    },
    /// A Route whose JSON does not read back as the same Route (none is known): kept as it is.
    Plain(Arc<Route>),
}

impl PackedRoute {
    pub fn new(route: Route) -> Self {
        let json = match serde_json::to_vec(&route) {
            Ok(json) => json,
            Err(_) => return PackedRoute::Plain(Arc::new(route)),
        };
        // Checked here once, so that `unpack` of these bytes cannot fail.
        match serde_json::from_slice::<Route>(&json) {
            Ok(back) if back == route => PackedRoute::Json {
                name: route.metadata.name.unwrap_or_default().into(),
                json: json.into_boxed_slice(),
            },
            _ => PackedRoute::Plain(Arc::new(route)),
        }
    }

    /// (namespace, name); the namespace is not kept apart (the index's keys hold it), so it is read
    /// from the bytes.
    pub fn id(&self) -> (String, String) {
        #[derive(serde::Deserialize)]
        struct Meta {
            namespace: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Head {
            metadata: Meta,
        }
        let namespace = match self {
            PackedRoute::Json { json, .. } => serde_json::from_slice::<Head>(json)
                .ok()
                .and_then(|h| h.metadata.namespace),
            PackedRoute::Plain(route) => route.metadata.namespace.clone(),
        };
        (namespace.unwrap_or_default(), self.name().to_string())
    }

    pub fn unpack(&self) -> Arc<Route> {
        match self {
            PackedRoute::Json { json, .. } => Arc::new(
                // Cannot fail: `new` read these very bytes back into an equal Route, and decoding is
                // deterministic.
                serde_json::from_slice(json)
                    .expect("a packed Route reads back (checked when packed)"),
            ),
            PackedRoute::Plain(route) => Arc::clone(route),
        }
    }
}

impl Named for PackedRoute {
    fn name(&self) -> &str {
        match self {
            PackedRoute::Json { name, .. } => name,
            PackedRoute::Plain(route) => route.metadata.name.as_deref().unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_packed_route_unpacks_to_the_same_route() {
        let route: Route = serde_json::from_value(json!({
            "apiVersion": "networking.cloudfoundry.org/v1alpha1", "kind": "Route",
            "metadata": {"namespace": "ns", "name": "r", "uid": "u", "generation": 2,
                         "creationTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["f"],
                         "labels": {"cloudfoundry.org/space_guid": "s"}},
            "spec": {"host": "a", "path": "/p", "url": "a.apps.example.com/p",
                     "domain": {"name": "apps.example.com", "internal": false},
                     "destinations": [{"guid": "d", "port": 8080, "weight": 100,
                                       "app": {"guid": "app", "process": {"type": "web"}},
                                       "selector": {"matchLabels": {"k": "v"}}}]},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Programmed",
                                       "message": "m", "lastTransitionTime": "2024-01-01T00:00:01Z",
                                       "observedGeneration": 2}]}
        }))
        .unwrap();
        let packed = PackedRoute::new(route.clone());
        assert!(matches!(packed, PackedRoute::Json { .. }));
        assert_eq!(packed.id(), ("ns".to_string(), "r".to_string()));
        assert_eq!(*packed.unpack(), route);
    }
}

//! What the cluster holds, as seen through watches: the propagation latency of a change is the time from
//! the client's write to the watch event that shows its effect (a VirtualService with the new path, a
//! Route turning Ready, a VirtualService gone). Each object keeps the instant its *view* last changed, so
//! a later no-op or unrelated event does not move the measured time.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cfnet_api::{ConditionStatus, READY, Route};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::BenchError;
use crate::routes::TAG_LABEL;

/// The part of an object a scenario waits on.
pub trait View: Clone + PartialEq + Send + 'static {
    /// Counted in [`Kind::flagged`] (Ready for Routes).
    fn flagged(&self) -> bool {
        false
    }
}

/// What matters of a Route.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteView {
    pub tag: String,
    /// Ready=True for the current generation.
    pub ready: bool,
    pub path: String,
}

impl View for RouteView {
    fn flagged(&self) -> bool {
        self.ready
    }
}

impl View for () {}

/// What matters of a Service: which object it is (a re-created Service has a new uid).
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceView {
    pub uid: String,
}

impl View for ServiceView {}

/// What matters of a VirtualService: which object it is, its host, the path prefix of each http entry
/// in order, and a digest of its whole spec (an edit of any other field, e.g. a destination, changes it).
#[derive(Clone, Debug, PartialEq)]
pub struct VsView {
    pub uid: String,
    pub host: String,
    pub prefixes: Vec<String>,
    pub spec_digest: u64,
}

impl View for VsView {}

/// An object and the instant its view last changed.
#[derive(Clone, Debug)]
pub struct Seen<T> {
    pub view: T,
    pub at: Instant,
    /// How often the view changed since the object was first seen: tells "changed and changed back"
    /// from "not changed yet" when only the latest view is kept.
    pub changes: u64,
}

/// All observed objects of one kind in the benchmark namespace.
#[derive(Debug)]
pub struct Kind<T> {
    pub live: HashMap<String, Seen<T>>,
    /// Deleted objects and when their deletion was observed (cleared on re-creation).
    pub gone: HashMap<String, Instant>,
    /// Live objects whose view is flagged.
    pub flagged: usize,
    /// Add/modify/delete events seen since the initial list (a no-op write produces none).
    pub events: u64,
    synced: bool,
    relist: Option<HashMap<String, T>>,
}

impl<T: View> Default for Kind<T> {
    fn default() -> Self {
        Self {
            live: HashMap::new(),
            gone: HashMap::new(),
            flagged: 0,
            events: 0,
            synced: false,
            relist: None,
        }
    }
}

impl<T: View> Kind<T> {
    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&Seen<T>> {
        self.live.get(name)
    }

    fn upsert(&mut self, name: String, view: T, at: Instant) {
        self.gone.remove(&name);
        match self.live.get_mut(&name) {
            Some(seen) if seen.view == view => {}
            Some(seen) => {
                self.flagged =
                    self.flagged + usize::from(view.flagged()) - usize::from(seen.view.flagged());
                *seen = Seen {
                    view,
                    at,
                    changes: seen.changes + 1,
                };
            }
            None => {
                self.flagged += usize::from(view.flagged());
                self.live.insert(
                    name,
                    Seen {
                        view,
                        at,
                        changes: 0,
                    },
                );
            }
        }
    }

    fn remove(&mut self, name: &str, at: Instant) {
        if let Some(seen) = self.live.remove(name) {
            self.flagged -= usize::from(seen.view.flagged());
        }
        self.gone.insert(name.to_string(), at);
    }

    fn apply(&mut self, event: Event<(String, T)>, at: Instant) {
        match event {
            Event::Apply((name, view)) => {
                self.events += 1;
                self.upsert(name, view, at);
            }
            Event::Delete((name, _)) => {
                self.events += 1;
                self.remove(&name, at);
            }
            Event::Init => self.relist = Some(HashMap::new()),
            Event::InitApply((name, view)) => {
                if let Some(relist) = self.relist.as_mut() {
                    relist.insert(name, view);
                }
            }
            Event::InitDone => {
                let listed = self.relist.take().unwrap_or_default();
                let vanished: Vec<String> = self
                    .live
                    .keys()
                    .filter(|k| !listed.contains_key(*k))
                    .cloned()
                    .collect();
                for name in vanished {
                    self.remove(&name, at);
                }
                for (name, view) in listed {
                    self.upsert(name, view, at);
                }
                self.synced = true;
            }
        }
    }
}

/// Everything the benchmark observes in its namespace.
#[derive(Debug, Default)]
pub struct World {
    pub routes: Kind<RouteView>,
    pub services: Kind<ServiceView>,
    pub virtual_services: Kind<VsView>,
}

impl World {
    /// One line for timeout messages.
    pub fn describe(&self) -> String {
        format!(
            "{} routes ({} Ready), {} services, {} virtualservices",
            self.routes.len(),
            self.routes.flagged,
            self.services.len(),
            self.virtual_services.len()
        )
    }

    /// Events of all kinds since the watches started.
    pub fn events(&self) -> u64 {
        self.routes.events + self.services.events + self.virtual_services.events
    }
}

/// Watches Routes, Services and VirtualServices of one namespace into a [`World`].
pub struct Observer {
    world: Arc<Mutex<World>>,
    changed: watch::Sender<u64>,
    tasks: Vec<JoinHandle<()>>,
}

/// The VirtualService version cfnet writes (upstream's).
pub fn virtual_service_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("networking.istio.io", "v1alpha3", "VirtualService"),
        "virtualservices",
    )
}

impl Observer {
    /// Starts the three watches and returns once each has listed the namespace.
    pub async fn start(client: &Client, namespace: &str) -> Result<Self, BenchError> {
        let world = Arc::new(Mutex::new(World::default()));
        let (changed, _) = watch::channel(0u64);
        let mut tasks = Vec::new();
        let routes: Api<Route> = Api::namespaced(client.clone(), namespace);
        tasks.push(spawn_watch(
            routes,
            world.clone(),
            changed.clone(),
            route_view,
            |w| &mut w.routes,
        ));
        let services: Api<Service> = Api::namespaced(client.clone(), namespace);
        tasks.push(spawn_watch(
            services,
            world.clone(),
            changed.clone(),
            service_view,
            |w| &mut w.services,
        ));
        let vs: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &virtual_service_resource());
        tasks.push(spawn_watch(
            vs,
            world.clone(),
            changed.clone(),
            vs_view,
            |w| &mut w.virtual_services,
        ));
        let observer = Self {
            world,
            changed,
            tasks,
        };
        observer
            .wait(
                "watch start",
                Duration::from_secs(60),
                "the initial list of every watch",
                |w| {
                    (w.routes.synced && w.services.synced && w.virtual_services.synced)
                        .then_some(())
                },
            )
            .await?;
        Ok(observer)
    }

    /// The current state (hold the guard briefly: the watch tasks wait for it).
    pub fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }

    /// Waits until `check` returns `Some`, re-checking after every observed change.
    pub async fn wait<R>(
        &self,
        phase: &str,
        timeout: Duration,
        what: &str,
        mut check: impl FnMut(&World) -> Option<R>,
    ) -> Result<R, BenchError> {
        let deadline = Instant::now() + timeout;
        let mut rx = self.changed.subscribe();
        loop {
            {
                let world = self.world();
                if let Some(r) = check(&world) {
                    return Ok(r);
                }
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => {
                    let world = self.world();
                    if let Some(r) = check(&world) {
                        return Ok(r);
                    }
                    return Err(BenchError::Timeout {
                        phase: phase.to_string(),
                        what: what.to_string(),
                        timeout,
                        observed: world.describe(),
                        log: String::new(),
                    });
                }
            }
        }
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn lock(world: &Mutex<World>) -> MutexGuard<'_, World> {
    // A panicking watch task cannot leave the maps half-updated in a way that matters for measuring.
    world
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn spawn_watch<K, T>(
    api: Api<K>,
    world: Arc<Mutex<World>>,
    changed: watch::Sender<u64>,
    view: fn(&K) -> T,
    kind: fn(&mut World) -> &mut Kind<T>,
) -> JoinHandle<()>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    T: View,
{
    tokio::spawn(async move {
        let mut stream = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(event) = stream.next().await {
            // The instant is taken as soon as the event arrives, before any locking.
            let at = Instant::now();
            match event {
                Ok(event) => {
                    let named = |obj: K| (obj.meta().name.clone().unwrap_or_default(), view(&obj));
                    let event = match event {
                        Event::Apply(obj) => Event::Apply(named(obj)),
                        Event::Delete(obj) => Event::Delete(named(obj)),
                        Event::Init => Event::Init,
                        Event::InitApply(obj) => Event::InitApply(named(obj)),
                        Event::InitDone => Event::InitDone,
                    };
                    kind(&mut lock(&world)).apply(event, at);
                    changed.send_modify(|v| *v += 1);
                }
                Err(err) => tracing::warn!(error = %err, "benchmark watch error; retrying"),
            }
        }
    })
}

fn route_view(route: &Route) -> RouteView {
    let generation = route.metadata.generation;
    let ready = route.status.as_ref().is_some_and(|s| {
        s.conditions.iter().any(|c| {
            c.type_ == READY
                && c.status == ConditionStatus::True
                && (c.observed_generation.is_none() || c.observed_generation == generation)
        })
    });
    RouteView {
        tag: route
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(TAG_LABEL))
            .cloned()
            .unwrap_or_default(),
        ready,
        path: route.spec.path().to_string(),
    }
}

fn service_view(service: &Service) -> ServiceView {
    ServiceView {
        uid: service.metadata.uid.clone().unwrap_or_default(),
    }
}

fn vs_view(vs: &DynamicObject) -> VsView {
    let spec = &vs.data["spec"];
    let host = spec["hosts"][0].as_str().unwrap_or_default().to_string();
    let prefixes = spec["http"]
        .as_array()
        .map(|http| {
            http.iter()
                .map(|h| {
                    h["match"][0]["uri"]["prefix"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default();
    let mut hasher = DefaultHasher::new();
    hash_json(spec, &mut hasher);
    VsView {
        uid: vs.metadata.uid.clone().unwrap_or_default(),
        host,
        prefixes,
        spec_digest: hasher.finish(),
    }
}

/// Hashes a JSON value with object keys in sorted order, so that equal specs hash equal whatever
/// order the API server serialized their fields in.
fn hash_json(value: &serde_json::Value, h: &mut DefaultHasher) {
    use serde_json::Value;
    match value {
        Value::Null => 0u8.hash(h),
        Value::Bool(b) => (1u8, b).hash(h),
        Value::Number(n) => (2u8, n.to_string()).hash(h),
        Value::String(s) => (3u8, s).hash(h),
        Value::Array(items) => {
            (4u8, items.len()).hash(h);
            for item in items {
                hash_json(item, h);
            }
        }
        Value::Object(map) => {
            (5u8, map.len()).hash(h);
            let mut fields: Vec<_> = map.iter().collect();
            fields.sort_by(|a, b| a.0.cmp(b.0));
            for (key, item) in fields {
                key.hash(h);
                hash_json(item, h);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(ready: bool) -> RouteView {
        RouteView {
            tag: "t".into(),
            ready,
            path: "/p".into(),
        }
    }

    #[test]
    fn unchanged_view_keeps_its_instant_and_flags_are_counted() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(5);
        let t2 = t0 + Duration::from_millis(9);
        let mut k = Kind::<RouteView>::default();
        k.apply(Event::Apply(("a".into(), view(false))), t0);
        k.apply(Event::Apply(("a".into(), view(true))), t1);
        assert_eq!(k.flagged, 1);
        // A no-op (e.g. metadata-only) event does not move the instant of the Ready transition.
        k.apply(Event::Apply(("a".into(), view(true))), t2);
        assert_eq!(k.get("a").unwrap().at, t1);
        assert_eq!(
            k.get("a").unwrap().changes,
            1,
            "only the Ready transition counts"
        );
        assert_eq!(k.events, 3);
        k.apply(Event::Delete(("a".into(), view(true))), t2);
        assert_eq!((k.flagged, k.len()), (0, 0));
        assert_eq!(k.gone.get("a"), Some(&t2));
        k.apply(Event::Apply(("a".into(), view(false))), t2);
        assert!(!k.gone.contains_key("a"));
    }

    #[test]
    fn relist_removes_vanished_objects() {
        let t0 = Instant::now();
        let mut k = Kind::<()>::default();
        k.apply(Event::Init, t0);
        k.apply(Event::InitApply(("a".into(), ())), t0);
        k.apply(Event::InitApply(("b".into(), ())), t0);
        k.apply(Event::InitDone, t0);
        assert!(k.synced);
        assert_eq!(k.len(), 2);
        assert_eq!(k.events, 0);
        k.apply(Event::Init, t0);
        k.apply(Event::InitApply(("b".into(), ())), t0);
        k.apply(Event::InitDone, t0);
        assert_eq!(k.len(), 1);
        assert!(k.gone.contains_key("a"));
    }

    #[test]
    fn vs_view_reads_host_and_prefixes() {
        let vs: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
            "metadata": {"name": "vs-x"},
            "spec": {"hosts": ["h.apps.example.com"], "http": [
                {"match": [{"uri": {"prefix": "/a/b"}}], "route": []},
                {"route": []}
            ]}
        }))
        .unwrap();
        let v = vs_view(&vs);
        assert_eq!(v.host, "h.apps.example.com");
        assert_eq!(v.prefixes, vec!["/a/b".to_string(), String::new()]);
    }

    fn vs_with(uid: &str, spec: serde_json::Value) -> VsView {
        vs_view(
            &serde_json::from_value(serde_json::json!({
                "apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
                "metadata": {"name": "vs-x", "uid": uid}, "spec": spec
            }))
            .unwrap(),
        )
    }

    #[test]
    fn vs_view_tells_an_edited_destination_and_a_recreated_object() {
        let spec = |dest: &str| {
            serde_json::json!({"hosts": ["h"], "http": [
                {"match": [{"uri": {"prefix": "/p"}}], "route": [{"destination": {"host": dest}, "weight": 100}]}
            ]})
        };
        let original = vs_with("u1", spec("s-d1"));
        // Same path, other destination: only the spec digest tells the edit.
        let edited = vs_with("u1", spec("evil"));
        assert_eq!(edited.prefixes, original.prefixes);
        assert_ne!(edited, original);
        assert_eq!(vs_with("u1", spec("s-d1")), original, "restored");
        let recreated = vs_with("u2", spec("s-d1"));
        assert_ne!(recreated, original);
        assert_eq!(recreated.spec_digest, original.spec_digest);
    }

    #[test]
    fn spec_digest_ignores_field_order() {
        let a: serde_json::Value = serde_json::from_str(
            r#"{"hosts": ["h"], "gateways": ["g"], "http": [{"a": 1, "b": [true, null]}]}"#,
        )
        .unwrap();
        let b: serde_json::Value = serde_json::from_str(
            r#"{"http": [{"b": [true, null], "a": 1}], "gateways": ["g"], "hosts": ["h"]}"#,
        )
        .unwrap();
        let digest = |v: &serde_json::Value| {
            let mut h = DefaultHasher::new();
            hash_json(v, &mut h);
            h.finish()
        };
        assert_eq!(digest(&a), digest(&b));
        let c: serde_json::Value = serde_json::from_str(
            r#"{"hosts": ["h"], "gateways": ["g"], "http": [{"a": 2, "b": [true, null]}]}"#,
        )
        .unwrap();
        assert_ne!(digest(&a), digest(&c));
    }
}

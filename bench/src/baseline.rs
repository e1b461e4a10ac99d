//! The physical limit: a bare client that issues exactly the writes the controller makes for a bulk add
//! — per route a finalizer JSON patch, a plain create of its Service and of its VirtualService (under
//! the controller's field manager), a status merge patch and, when the controller runs with `--events
//! all`, the `Created` Event — with the controller's concurrency and no controller logic (no watches, no
//! index, no diffing). The payloads come from the same translation the controller uses, so the API server
//! does the same work per request.

use std::time::Duration;

// The controller's own field manager, so the API server's managed-fields bookkeeping is the same.
use cfnet_api::{FIELD_MANAGER, FINALIZER, READY, Reason, Route};
use cfnet_translate::Settings;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::core::v1::Service;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client, Resource, ResourceExt};
use tokio::time::Instant;

use crate::error::BenchError;
use crate::observe::virtual_service_resource;
use crate::routes;

/// What the bare client did.
#[derive(Clone, Copy, Debug)]
pub struct BaselineRun {
    pub seconds: f64,
    pub writes: usize,
    /// CPU of kube-apiserver and etcd during the timed writes (0 when their pids are unknown).
    pub apiserver_cpu_seconds: f64,
    pub etcd_cpu_seconds: f64,
}

struct Work {
    name: String,
    service: Service,
    virtual_service: DynamicObject,
    generation: i64,
    reference: ObjectReference,
}

/// The API handles and parameters every timed write uses.
struct Writes {
    routes: Api<Route>,
    services: Api<Service>,
    virtual_services: Api<DynamicObject>,
    create: PostParams,
    plain: PatchParams,
    finalizer: json_patch::Patch,
    /// `Some` when the controller publishes Events on success (`--events all`).
    events: Option<(Client, Reporter)>,
}

/// Creates `count` routes in `namespace` (not timed), then times the writes.
pub async fn run(
    client: &Client,
    namespace: &str,
    count: usize,
    concurrency: usize,
    gateway: &str,
    (etcd_pid, apiserver_pid): (u32, u32),
    events: cfnet_controller::Events,
) -> Result<BaselineRun, BenchError> {
    let cpu = |pid: u32| {
        crate::procfs::sample(pid)
            .map(|s| s.cpu_seconds)
            .unwrap_or(0.0)
    };
    let api: Api<Route> = Api::namespaced(client.clone(), namespace);
    let created: Vec<Route> = futures::stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            async move {
                let route =
                    routes::route(namespace, "baseline", i, &routes::path("baseline", "", i));
                api.create(&PostParams::default(), &route)
                    .await
                    .map_err(BenchError::kube(format!(
                        "creating baseline route {}",
                        route.name_any()
                    )))
            }
        })
        .buffer_unordered(concurrency.max(1) * 4)
        .try_collect()
        .await?;

    let work = translated(&created, namespace, gateway)?;
    let writes = Writes {
        routes: api,
        services: Api::namespaced(client.clone(), namespace),
        virtual_services: Api::namespaced_with(
            client.clone(),
            namespace,
            &virtual_service_resource(),
        ),
        create: PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PostParams::default()
        },
        plain: PatchParams::default(),
        events: (events == cfnet_controller::Events::All).then(|| {
            (
                client.clone(),
                Reporter {
                    controller: FIELD_MANAGER.into(),
                    instance: None,
                },
            )
        }),
        finalizer: serde_json::from_value(serde_json::json!([
            {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}
        ]))
        .map_err(|e| BenchError::Baseline {
            detail: format!("cannot build the finalizer patch: {e}"),
        })?,
    };

    let (apiserver_cpu, etcd_cpu) = (cpu(apiserver_pid), cpu(etcd_pid));
    let start = Instant::now();
    futures::stream::iter(work)
        .map(|w| writes.route(namespace, w))
        .buffer_unordered(concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    let seconds = start.elapsed().as_secs_f64();
    Ok(BaselineRun {
        seconds,
        writes: created.len() * if writes.events.is_some() { 5 } else { 4 },
        apiserver_cpu_seconds: cpu(apiserver_pid) - apiserver_cpu,
        etcd_cpu_seconds: cpu(etcd_pid) - etcd_cpu,
    })
}

/// The Service and VirtualService of each route, as the controller's translation makes them.
fn translated(created: &[Route], namespace: &str, gateway: &str) -> Result<Vec<Work>, BenchError> {
    let settings = Settings {
        gateway: gateway.to_string(),
        ..Default::default()
    };
    let mut work = Vec::with_capacity(created.len());
    for route in created {
        let name = route.name_any();
        let translation = cfnet_translate::translate(std::slice::from_ref(route), &settings);
        let (Some(service), Some(vs), true) = (
            translation.services.first(),
            translation.virtual_services.first(),
            translation.services.len() == 1 && translation.virtual_services.len() == 1,
        ) else {
            return Err(BenchError::Baseline {
                detail: format!(
                    "translating route {namespace}/{name} gave {} Services and {} VirtualServices, expected 1 \
                     and 1 (problems: {:?}); fix the route template or cfnet-translate",
                    translation.services.len(),
                    translation.virtual_services.len(),
                    translation.problems
                ),
            });
        };
        let vs_value = serde_json::to_value(vs).map_err(|e| BenchError::Baseline {
            detail: format!("cannot serialise the VirtualService of route {name}: {e}"),
        })?;
        let virtual_service: DynamicObject =
            serde_json::from_value(vs_value).map_err(|e| BenchError::Baseline {
                detail: format!("cannot convert the VirtualService of route {name}: {e}"),
            })?;
        work.push(Work {
            name,
            service: service.clone(),
            virtual_service,
            generation: route.metadata.generation.unwrap_or(1),
            reference: route.object_ref(&()),
        });
    }

    Ok(work)
}

impl Writes {
    /// The writes the controller makes for one route.
    async fn route(&self, namespace: &str, w: Work) -> Result<(), BenchError> {
        let (api, services, virtual_services) =
            (&self.routes, &self.services, &self.virtual_services);
        let (create, plain, finalizer) = (&self.create, &self.plain, &self.finalizer);
        let doing = |what: &str| format!("baseline: {what} of route {namespace}/{}", w.name);
        api.patch(&w.name, plain, &Patch::Json::<()>(finalizer.clone()))
            .await
            .map_err(BenchError::kube(doing("finalizer patch")))?;
        let service_name = w.service.name_any();
        services
            .create(create, &w.service)
            .await
            .map_err(BenchError::kube(doing("Service create")))?;
        let vs_name = w.virtual_service.name_any();
        virtual_services
            .create(create, &w.virtual_service)
            .await
            .map_err(BenchError::kube(doing("VirtualService create")))?;
        let status = serde_json::json!({"status": {"conditions": [{
            "type": READY,
            "status": "True",
            "reason": Reason::Programmed.as_str(),
            "message": format!("programmed into VirtualService {vs_name}"),
            "lastTransitionTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "observedGeneration": w.generation,
        }]}});
        api.patch_status(&w.name, plain, &Patch::Merge(&status))
            .await
            .map_err(BenchError::kube(doing("status patch")))?;
        if let Some((client, reporter)) = &self.events {
            // As the controller publishes it: a fresh Recorder, one Event naming both children.
            let event = Event {
                type_: EventType::Normal,
                reason: "Created".into(),
                note: Some(format!("Service {service_name}, VirtualService {vs_name}")),
                action: "Reconcile".into(),
                secondary: None,
            };
            Recorder::new(client.clone(), reporter.clone())
                .publish(&event, &w.reference)
                .await
                .map_err(BenchError::kube(doing("Event")))?;
        }
        Ok(())
    }
}

/// How long a baseline may take before we call it stuck.
pub fn timeout(count: usize) -> Duration {
    Duration::from_secs(120 + count as u64 / 10)
}

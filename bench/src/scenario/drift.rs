//! Phase 7: the controller's objects disturbed behind its back (deleted, edited by another field
//! manager), one at a time, each repair timed through the watches.

use std::fmt::Debug;
use std::time::Duration;

use cfnet_api::Route;
use k8s_openapi::api::core::v1::Service;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::{ONE_CHANGE_TIMEOUT, Run, check_exact, service_of, vs_of};
use crate::assemble::phase;
use crate::error::BenchError;
use crate::observe::{Kind, View, World, virtual_service_resource};
use crate::results::Phase;
use crate::routes;
use crate::stats::LatencySummary;

/// The phase's name.
const DRIFT_REPAIR: &str = "drift_repair";
/// How long one drift repair may take before the phase fails. A repair driven by the watches takes
/// milliseconds; one left to the periodic resync takes up to RESYNC_INTERVAL (30 s in full runs), so a
/// slower repair is not what this phase measures and fails it rather than being counted.
const DRIFT_REPAIR_LIMIT: Duration = Duration::from_secs(10);
/// Field manager of the benchmark's edits of the controller's VirtualServices (not the controller's).
const DRIFT_MANAGER: &str = "cfnet-bench-drift";

/// How the latency of one change is measured.
const DEFINITION: &str = "one at a time, first over all the routes, then again, then again: a route's Service deleted → \
             a re-created Service (new uid) observed; its VirtualService deleted → a re-created one \
             observed; its VirtualService's spec edited by another field manager (destination \"evil\") → \
             the controller's spec observed again; each from the return of the delete or patch call";

impl Run<'_> {
    /// 7. With the N routes programmed, for `drift_routes` of them, one at a time: delete each route's
    ///    Service, then each one's VirtualService, then edit each VirtualService's spec as another field
    ///    manager, each time waiting until the watches show the controller's repair.
    pub(super) async fn drift_repair(&self) -> Result<Phase, BenchError> {
        const PHASE: &str = DRIFT_REPAIR;
        let n = self.n();
        let count = self.config.drift_routes.min(n);
        let ns = &self.namespace;
        // Spread over the N routes; each has its own FQDN, so its own Service and VirtualService.
        let routes: Vec<Route> = (0..count)
            .map(|j| {
                let i = j * n / count;
                routes::route(ns, "initial", i, &routes::path("initial", "", i))
            })
            .collect();
        let services: Api<Service> = Api::namespaced(self.client.clone(), ns);
        let vss: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), ns, &virtual_service_resource());
        let resync = self.config.resync_seconds;
        tracing::info!(routes = count, resync_seconds = resync, "drift_repair");
        let start = self.mark().await?;
        // One kind at a time over all the routes, so that every object is disturbed long after the
        // controller last wrote it, as drift happens in practice. (An edit landing within milliseconds of
        // the controller's own apply of the same object tests a race in the controller's cache, not
        // repair latency; that belongs in the controller's tests.)
        // (a) Service deleted → re-created (a new uid).
        let service_deleted = self
            .drift_delete(
                &routes,
                "Service",
                &services,
                service_of,
                |w| &w.services,
                |s| &s.uid,
            )
            .await?;
        // (b) VirtualService deleted → re-created (a new uid).
        let vs_deleted = self
            .drift_delete(
                &routes,
                "VirtualService",
                &vss,
                vs_of,
                |w| &w.virtual_services,
                |v| &v.uid,
            )
            .await?;
        // (c) VirtualService spec edited by another manager (every http entry replaced by one to the
        //     destination "evil") → the controller's spec observed again.
        let vs_edited = self.drift_edit(&routes, &vss).await?;
        let wall = start.at.elapsed();
        self.wait(
            PHASE,
            ONE_CHANGE_TIMEOUT,
            "every route to be Ready after the drift",
            |w| (w.routes.flagged == n).then_some(()),
        )
        .await?;
        let end = self.mark().await?;
        check_exact(PHASE, &self.observer.world(), n, n, n)?;

        let samples: Vec<Duration> = [&service_deleted, &vs_deleted, &vs_edited]
            .into_iter()
            .flatten()
            .copied()
            .collect();
        let mut phase = phase((PHASE, DEFINITION), (&start, &end), wall, &samples);
        drift_notes(
            &mut phase,
            count,
            resync,
            [&service_deleted, &vs_deleted, &vs_edited],
        );
        Ok(phase)
    }

    /// `drift_repair` (c): for each route in turn, edits its VirtualService's spec as another field
    /// manager and waits until the watches show the controller's spec again. `changes` tells "edited and
    /// restored" from "edit not seen yet": the watch only keeps the latest view.
    async fn drift_edit(
        &self,
        routes: &[Route],
        vss: &Api<DynamicObject>,
    ) -> Result<Vec<Duration>, BenchError> {
        const PHASE: &str = DRIFT_REPAIR;
        let ns = &self.namespace;
        let count = routes.len();
        let edit = serde_json::json!({
            "spec": {"http": [{"route": [{"destination": {"host": "evil"}}]}]}
        });
        let manager = PatchParams {
            field_manager: Some(DRIFT_MANAGER.to_string()),
            ..PatchParams::default()
        };
        let mut vs_edited = Vec::with_capacity(count);
        for route in routes {
            let (name, svc, vs) = (route.name_any(), service_of(route), vs_of(route));
            let before = self
                .observer
                .world()
                .virtual_services
                .get(&vs)
                .cloned()
                .ok_or_else(|| {
                    drift_missing(format!("VirtualService {ns}/{vs} of route {name}"))
                })?;
            let edited = vss
                .patch(&vs, &manager, &Patch::Merge(&edit))
                .await
                .map_err(BenchError::kube(format!(
                    "{PHASE}: editing VirtualService {ns}/{vs} of route {name}"
                )))?;
            let t = Instant::now();
            if edited.data["spec"]["http"][0]["route"][0]["destination"]["host"].as_str()
                != Some("evil")
            {
                return Err(BenchError::Count {
                    phase: PHASE.into(),
                    detail: format!(
                        "the edit of VirtualService {ns}/{vs} did not take: its spec is {}",
                        edited.data["spec"]
                    ),
                });
            }
            let what = format!(
                "edited VirtualService {ns}/{vs} of route {name} to be restored to the controller's spec \
                 (path {} → {svc})",
                route.spec.path()
            );
            vs_edited.push(
                self.repaired(t, &what, |w| {
                    w.virtual_services
                        .get(&vs)
                        .filter(|s| s.view == before.view && s.changes >= before.changes + 2)
                        .map(|s| s.at)
                })
                .await?,
            );
        }
        Ok(vs_edited)
    }

    /// `drift_repair` (a) or (b): for each route in turn, deletes its `kind` object (named
    /// `object(route)`, observed in `seen(world)`) through `api`, then waits until the watches show it
    /// re-created (a new uid). Returns each repair's latency, from the return of the delete call.
    async fn drift_delete<K, T: View>(
        &self,
        routes: &[Route],
        kind: &str,
        api: &Api<K>,
        object: fn(&Route) -> String,
        seen: fn(&World) -> &Kind<T>,
        uid: fn(&T) -> &str,
    ) -> Result<Vec<Duration>, BenchError>
    where
        K: Clone + DeserializeOwned + Debug,
    {
        let ns = &self.namespace;
        let mut latencies = Vec::with_capacity(routes.len());
        for route in routes {
            let (name, object) = (route.name_any(), object(route));
            let old = seen(&self.observer.world())
                .get(&object)
                .map(|s| uid(&s.view).to_string())
                .ok_or_else(|| drift_missing(format!("{kind} {ns}/{object} of route {name}")))?;
            api.delete(&object, &DeleteParams::default())
                .await
                .map_err(BenchError::kube(format!(
                    "{DRIFT_REPAIR}: deleting {kind} {ns}/{object} of route {name}"
                )))?;
            let t = Instant::now();
            let what = format!("deleted {kind} {ns}/{object} of route {name} to be re-created");
            latencies.push(
                self.repaired(t, &what, |w| {
                    seen(w)
                        .get(&object)
                        .filter(|s| uid(&s.view) != old)
                        .map(|s| s.at)
                })
                .await?,
            );
        }
        Ok(latencies)
    }

    /// Waits until `repaired` finds in the watches the controller's repair of a drift made by a call that
    /// returned at `t`, and returns the latency. A repair slower than `DRIFT_REPAIR_LIMIT` fails the phase.
    async fn repaired(
        &self,
        t: Instant,
        what: &str,
        repaired: impl FnMut(&World) -> Option<Instant>,
    ) -> Result<Duration, BenchError> {
        let what = format!(
            "{what} (a repair slower than {DRIFT_REPAIR_LIMIT:?} is not driven by the watches; RESYNC_INTERVAL is {} s)",
            self.config.resync_seconds
        );
        let at = self
            .wait(DRIFT_REPAIR, DRIFT_REPAIR_LIMIT, &what, repaired)
            .await?;
        Ok(at.saturating_duration_since(t))
    }
}

/// The phase's notes: what was disturbed, and p50/p95/max of each kind of repair.
fn drift_notes(phase: &mut Phase, count: usize, resync: u64, samples: [&Vec<Duration>; 3]) {
    phase.notes.insert("routes".into(), count as f64);
    phase
        .notes
        .insert("resync_interval_seconds".into(), resync as f64);
    phase.notes.insert(
        "repair_limit_seconds".into(),
        DRIFT_REPAIR_LIMIT.as_secs_f64(),
    );
    for (what, samples) in [
        "service_deleted",
        "virtualservice_deleted",
        "virtualservice_edited",
    ]
    .into_iter()
    .zip(samples)
    {
        let l = LatencySummary::of(samples);
        for (stat, v) in [("p50", l.p50), ("p95", l.p95), ("max", l.max)] {
            phase.notes.insert(format!("{what}_{stat}_ms"), v);
        }
    }
}

/// A `drift_repair` object that was not there to be disturbed.
fn drift_missing(what: String) -> BenchError {
    BenchError::Count {
        phase: DRIFT_REPAIR.into(),
        detail: format!("{what} was not observed before the drift"),
    }
}

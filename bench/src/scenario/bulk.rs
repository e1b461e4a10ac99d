//! Phases 1 and 5: N routes programmed by a cold controller; the N routes deleted.

use cfnet_api::Route;
use kube::ResourceExt;
use tokio::time::Instant;

use super::{Run, check_exact, programmed_at, service_of, vs_of};
use crate::assemble::phase;
use crate::error::BenchError;
use crate::process::{ControllerProcess, ControllerSettings};
use crate::results::Phase;
use crate::routes;

/// How the latency of one route is measured in bulk_add.
const BULK_ADD_DEFINITION: &str = "controller process start → the route's Service, VirtualService (with its path) and Ready=True \
     all observed";
/// How the latency of one route is measured in bulk_delete.
const BULK_DELETE_DEFINITION: &str = "route delete (16 in flight, as kubectl delete -l issues them) → its VirtualService observed \
     deleted (wall: first delete until every route, Service and VirtualService is gone)";

impl Run<'_> {
    /// 1. N routes exist before the controller starts; time from its start until every Service and
    ///    VirtualService exists and every Route is Ready.
    pub(super) async fn bulk_add(
        &mut self,
        settings: &ControllerSettings,
    ) -> Result<Phase, BenchError> {
        const PHASE: &str = "bulk_add";
        let n = self.n();
        let ns = self.namespace.clone();
        let routes: Vec<Route> = (0..n)
            .map(|i| routes::route(&ns, "initial", i, &routes::path("initial", "", i)))
            .collect();
        let setup = Instant::now();
        tracing::info!(
            routes = n,
            "bulk_add: creating routes before the controller starts"
        );
        self.create_routes(PHASE, &routes).await?;
        self.wait(
            PHASE,
            self.bulk_timeout(n),
            "the routes to be listed",
            |w| (w.routes.len() == n).then_some(()),
        )
        .await?;
        let setup_seconds = setup.elapsed().as_secs_f64();
        if !self.observer.world().virtual_services.is_empty() {
            return Err(BenchError::Count {
                phase: PHASE.into(),
                detail: "VirtualServices exist before the controller started".into(),
            });
        }

        let start = self.mark().await?;
        tracing::info!(exe = %settings.exe.display(), "bulk_add: starting the controller");
        let controller = ControllerProcess::spawn(settings)?;
        let t0 = controller.started_at;
        self.controller = Some(controller);
        self.wait(
            PHASE,
            self.bulk_timeout(n),
            "every Service and VirtualService to exist and every Route to be Ready",
            |w| {
                (w.services.len() >= n && w.virtual_services.len() >= n && w.routes.flagged >= n)
                    .then_some(())
            },
        )
        .await?;
        let end = self.mark().await?;

        let mut samples = Vec::with_capacity(n);
        {
            let w = self.observer.world();
            check_exact(PHASE, &w, n, n, n)?;
            for route in &routes {
                samples.push(programmed_at(PHASE, &w, route)?.saturating_duration_since(t0));
            }
        }
        let wall = samples.iter().max().copied().unwrap_or_default();
        let mut phase = phase((PHASE, BULK_ADD_DEFINITION), (&start, &end), wall, &samples);
        phase
            .notes
            .insert("route_create_seconds".into(), setup_seconds);
        Ok(phase)
    }

    /// 5. Delete the N routes (one DELETE each, 16 in flight); wait until routes, Services and
    ///    VirtualServices are all gone.
    pub(super) async fn bulk_delete(&self) -> Result<Phase, BenchError> {
        const PHASE: &str = "bulk_delete";
        let n = self.n();
        tracing::info!(routes = n, "bulk_delete");
        let start = self.mark().await?;
        let t = Instant::now();
        let names: Vec<String> = (0..n).map(|i| format!("route-initial-{i}")).collect();
        let deleted_at = self.delete_routes(PHASE, &names).await?;
        self.wait(
            PHASE,
            self.bulk_timeout(n),
            "every route, Service and VirtualService to be gone",
            |w| {
                (w.routes.is_empty() && w.services.is_empty() && w.virtual_services.is_empty())
                    .then_some(())
            },
        )
        .await?;
        let end = self.mark().await?;
        let mut samples = Vec::with_capacity(n);
        let mut last = t;
        {
            let w = self.observer.world();
            for i in 0..n {
                let route = routes::route(&self.namespace, "initial", i, "");
                let vs = vs_of(&route);
                let svc = service_of(&route);
                let gone = |at: Option<&Instant>, what: &str| {
                    at.copied().ok_or_else(|| BenchError::Count {
                        phase: PHASE.into(),
                        detail: format!(
                            "{what} of route {} was never seen deleted",
                            route.name_any()
                        ),
                    })
                };
                let vs_gone = gone(w.virtual_services.gone.get(&vs), "VirtualService")?;
                let svc_gone = gone(w.services.gone.get(&svc), "Service")?;
                let route_gone = gone(w.routes.gone.get(&route.name_any()), "Route")?;
                last = last.max(vs_gone).max(svc_gone).max(route_gone);
                let written = deleted_at.get(&route.name_any()).copied().unwrap_or(t);
                samples.push(vs_gone.saturating_duration_since(written));
            }
        }
        Ok(phase(
            (PHASE, BULK_DELETE_DEFINITION),
            (&start, &end),
            last - t,
            &samples,
        ))
    }
}

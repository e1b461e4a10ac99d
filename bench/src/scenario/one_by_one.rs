//! Phases 2–4: routes added, updated and deleted one at a time, each change timed until its
//! VirtualService shows it.

use cfnet_api::Route;
use kube::ResourceExt;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};

use super::{ONE_CHANGE_TIMEOUT, Run, check_exact, vs_of, vs_with_path};
use crate::assemble::phase;
use crate::error::BenchError;
use crate::results::Phase;
use crate::routes;

const ADD: &str = "add_one_by_one";
const UPDATE: &str = "update_one_by_one";
const DELETE: &str = "delete_one_by_one";

/// How the latency of one change is measured.
const ADD_DEFINITION: &str = "route create → its VirtualService observed";
/// How the latency of one change is measured.
const UPDATE_DEFINITION: &str = "route path patch → its VirtualService observed with the new path";
/// How the latency of one change is measured.
const DELETE_DEFINITION: &str = "route delete → its VirtualService observed deleted";

impl Run<'_> {
    /// 2–4. Add, update the path of, and delete `one_by_one` routes, one at a time, each waiting for its
    /// VirtualService.
    pub(super) async fn one_by_one(&self) -> Result<Vec<Phase>, BenchError> {
        let ns = &self.namespace;
        let routes: Vec<Route> = (0..self.config.one_by_one)
            .map(|i| routes::route(ns, "the100", i, &routes::path("the100", "", i)))
            .collect();
        Ok(vec![
            self.add_one_by_one(&routes).await?,
            self.update_one_by_one(&routes).await?,
            self.delete_one_by_one(&routes).await?,
        ])
    }

    async fn add_one_by_one(&self, routes: &[Route]) -> Result<Phase, BenchError> {
        let (k, n, ns) = (routes.len(), self.n(), &self.namespace);
        tracing::info!(routes = k, "{ADD}");
        let start = self.mark().await?;
        let mut samples = Vec::with_capacity(k);
        for route in routes {
            let (name, vs, path) = (route.name_any(), vs_of(route), route.spec.path());
            samples.push(
                self.change(
                    ADD,
                    self.routes.create(&PostParams::default(), route),
                    format!("{ADD}: creating route {ns}/{name}"),
                    &format!("VirtualService {vs} of route {name}"),
                    |w| vs_with_path(w, &vs, path),
                )
                .await?,
            );
        }
        let wall = start.at.elapsed();
        self.wait(
            ADD,
            ONE_CHANGE_TIMEOUT,
            "the added routes to be Ready",
            |w| (w.routes.flagged == n + k).then_some(()),
        )
        .await?;
        let end = self.mark().await?;
        check_exact(ADD, &self.observer.world(), n + k, n + k, n + k)?;
        Ok(phase((ADD, ADD_DEFINITION), (&start, &end), wall, &samples))
    }

    async fn update_one_by_one(&self, routes: &[Route]) -> Result<Phase, BenchError> {
        let ns = &self.namespace;
        tracing::info!(routes = routes.len(), "{UPDATE}");
        let start = self.mark().await?;
        let mut samples = Vec::with_capacity(routes.len());
        for (i, route) in routes.iter().enumerate() {
            let (name, vs) = (route.name_any(), vs_of(route));
            let new_path = routes::path("the100", "stressfully-updated", i);
            let patch = routes::path_patch(route, &new_path);
            samples.push(
                self.change(
                    UPDATE,
                    self.routes
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch)),
                    format!("{UPDATE}: patching route {ns}/{name}"),
                    &format!("VirtualService {vs} with path {new_path}"),
                    |w| vs_with_path(w, &vs, &new_path),
                )
                .await?,
            );
        }
        let wall = start.at.elapsed();
        let end = self.mark().await?;
        Ok(phase(
            (UPDATE, UPDATE_DEFINITION),
            (&start, &end),
            wall,
            &samples,
        ))
    }

    async fn delete_one_by_one(&self, routes: &[Route]) -> Result<Phase, BenchError> {
        let (n, ns) = (self.n(), &self.namespace);
        tracing::info!(routes = routes.len(), "{DELETE}");
        let start = self.mark().await?;
        let mut samples = Vec::with_capacity(routes.len());
        for route in routes {
            let (name, vs) = (route.name_any(), vs_of(route));
            samples.push(
                self.change(
                    DELETE,
                    self.routes.delete(&name, &DeleteParams::default()),
                    format!("{DELETE}: deleting route {ns}/{name}"),
                    &format!("VirtualService {vs} of route {name} to go"),
                    |w| {
                        w.virtual_services
                            .get(&vs)
                            .is_none()
                            .then(|| w.virtual_services.gone.get(&vs).copied())?
                    },
                )
                .await?,
            );
        }
        let wall = start.at.elapsed();
        self.wait(
            DELETE,
            ONE_CHANGE_TIMEOUT,
            "the deleted routes to be gone (finalizer removed)",
            |w| (w.routes.len() == n && w.services.len() == n).then_some(()),
        )
        .await?;
        let end = self.mark().await?;
        check_exact(DELETE, &self.observer.world(), n, n, n)?;
        Ok(phase(
            (DELETE, DELETE_DEFINITION),
            (&start, &end),
            wall,
            &samples,
        ))
    }
}

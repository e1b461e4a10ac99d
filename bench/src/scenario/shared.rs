//! Phase 6: many routes over few FQDNs (context paths), then random path updates one at a time.

use std::time::Duration;

use cfnet_api::Route;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::time::Instant;

use super::{Run, vs_of};
use crate::assemble::phase;
use crate::error::BenchError;
use crate::observe::World;
use crate::results::Phase;
use crate::routes;

const PHASE: &str = "shared_fqdn_updates";

/// Paths held by the live VirtualServices.
fn paths(w: &World) -> usize {
    w.virtual_services
        .live
        .values()
        .map(|v| v.view.prefixes.len())
        .sum()
}

/// How the latency of one change is measured.
const DEFINITION: &str =
    "route path patch → its FQDN's VirtualService observed with the new path and without the old";

impl Run<'_> {
    /// 6. `shared_routes` routes over `shared_fqdns` FQDNs (context paths), then `shared_updates` random
    ///    path updates, one at a time.
    pub(super) async fn shared_fqdn_updates(&self) -> Result<Phase, BenchError> {
        let (s, f, u) = (
            self.config.shared_routes,
            self.config.shared_fqdns,
            self.config.shared_updates,
        );
        let ns = &self.namespace;
        let routes: Vec<Route> = (0..s)
            .map(|i| routes::shared_route(ns, "shared", i, f, &routes::path("shared", "", i)))
            .collect();
        tracing::info!(routes = s, fqdns = f, updates = u, "shared_fqdn_updates");
        let setup = Instant::now();
        self.create_routes(PHASE, &routes).await?;
        let fqdns = f.min(s);
        self.wait(
            PHASE,
            self.bulk_timeout(s),
            "the shared-FQDN routes to be programmed",
            |w| {
                (w.virtual_services.len() == fqdns
                    && paths(w) == s
                    && w.routes.flagged == s
                    && w.services.len() == s)
                    .then_some(())
            },
        )
        .await?;
        let setup_seconds = setup.elapsed().as_secs_f64();

        let start = self.mark().await?;
        let samples = self.shared_updates(&routes, u).await?;
        let wall = start.at.elapsed();
        let end = self.mark().await?;
        {
            let w = self.observer.world();
            let programmed = paths(&w);
            if w.virtual_services.len() != fqdns || programmed != s || w.routes.len() != s {
                return Err(BenchError::Count {
                    phase: PHASE.into(),
                    detail: format!(
                        "expected {fqdns} VirtualServices holding {s} paths for {s} routes, found {} holding {programmed} for {}",
                        w.virtual_services.len(),
                        w.routes.len()
                    ),
                });
            }
        }
        let mut phase = phase((PHASE, DEFINITION), (&start, &end), wall, &samples);
        phase.notes.insert("setup_seconds".into(), setup_seconds);
        phase.notes.insert("routes".into(), s as f64);
        phase.notes.insert("fqdns".into(), fqdns as f64);
        let cleanup_seconds = self.shared_cleanup(&routes).await?;
        phase
            .notes
            .insert("cleanup_seconds".into(), cleanup_seconds);
        Ok(phase)
    }

    /// `updates` random path updates (a fixed seed), each timed until the FQDN's VirtualService holds the
    /// new path and not the old.
    async fn shared_updates(
        &self,
        routes: &[Route],
        updates: usize,
    ) -> Result<Vec<Duration>, BenchError> {
        let ns = &self.namespace;
        let mut rng = StdRng::seed_from_u64(20201029);
        let mut paths: Vec<String> = routes.iter().map(|r| r.spec.path().to_string()).collect();
        let mut samples = Vec::with_capacity(updates);
        for k in 0..updates {
            let j = rng.random_range(0..routes.len());
            let route = &routes[j];
            let (name, vs) = (route.name_any(), vs_of(route));
            let old = paths[j].clone();
            let new = format!("/shared-u{k}-{j}");
            let patch = routes::path_patch(route, &new);
            samples.push(
                self.change(
                    PHASE,
                    self.routes
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch)),
                    format!("{PHASE}: patching route {ns}/{name}"),
                    &format!("VirtualService {vs} with path {new} instead of {old}"),
                    |w| {
                        w.virtual_services
                            .get(&vs)
                            .filter(|v| {
                                v.view.prefixes.contains(&new) && !v.view.prefixes.contains(&old)
                            })
                            .map(|v| v.at)
                    },
                )
                .await?,
            );
            paths[j] = new;
        }
        Ok(samples)
    }

    /// Deletes the routes (not measured) and checks the controller removes everything; returns how long
    /// that took.
    async fn shared_cleanup(&self, routes: &[Route]) -> Result<f64, BenchError> {
        let cleanup = Instant::now();
        let names: Vec<String> = routes.iter().map(|r| r.name_any()).collect();
        self.delete_routes(PHASE, &names).await?;
        self.wait(
            PHASE,
            self.bulk_timeout(routes.len()),
            "the shared-FQDN routes and their children to be gone",
            |w| {
                (w.routes.is_empty() && w.services.is_empty() && w.virtual_services.is_empty())
                    .then_some(())
            },
        )
        .await?;
        Ok(cleanup.elapsed().as_secs_f64())
    }
}

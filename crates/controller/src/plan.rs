//! The decisions of one reconcile, as pure functions of what the index holds for a key and of the key's
//! translation: the finalizers to add, what to do with each desired child, the children to prune, the
//! finalizers to release and the verdict on each Route. No I/O, no clock: table tests below.
//! execute.rs carries a [`Plan`] out and records each step's [`Outcome`] in it; the verdicts follow.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use cfnet_api::gateway_api::HTTPRoute;
use cfnet_api::{FINALIZER, Reason, Route, VirtualService};
use cfnet_translate::gateway_api::match_key;
use cfnet_translate::{
    Claims, FqdnKey, FqdnTranslation, RoutingApi, Settings, translate_fqdn, virtual_service_name,
};
use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;

use crate::child::{Cached, Child, ParentId, ParentReport, needs_apply};
use crate::index::{Children, Snapshot};

/// The translation of the key's live Routes (those not being deleted): what the cluster must hold.
pub(crate) fn translate(
    key: &FqdnKey,
    routes: &[Arc<Route>],
    claims: &dyn Claims,
    settings: &Settings,
) -> FqdnTranslation {
    let live: Vec<&Route> = routes
        .iter()
        .map(Arc::as_ref)
        .filter(|r| r.metadata.deletion_timestamp.is_none())
        .collect();
    translate_fqdn(key, &live, claims, settings)
}

/// What to do with one desired child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// The cached object is ours and an apply would not change it: no write.
    Unchanged,
    /// `create`: no object holds the name as far as the cache knows: a plain create (execute.rs looks
    /// the name up and decides again if the API says it is taken). Otherwise a server-side apply.
    Apply { create: bool },
    /// Not cached, but the kind's watch does not see every object: a plain create too, which cannot
    /// take over someone else's object; if the name is taken, the object is looked up and decided on.
    Lookup,
    /// An object that is not ours holds the name: leave it alone and report a Conflict.
    Foreign,
    /// The API server does not serve the kind (its CRDs are not installed): no write, the owners are
    /// told what to install. The discovery of controller.rs re-queues every key once it is served.
    Unserved,
}

/// The action for `desired` given the object holding its name (`None`: none is known). `complete`: the
/// kind's watch sees every object, so `None` means the name is free.
pub(crate) fn action<C: Child>(desired: &C, current: Option<&Cached<C>>, complete: bool) -> Action {
    match current {
        None if complete => Action::Apply { create: true },
        None => Action::Lookup,
        Some(c) if !c.meta.is_ours() => Action::Foreign,
        Some(c) if needs_apply(desired, c) => Action::Apply { create: false },
        Some(_) => Action::Unchanged,
    }
}

/// How a step ended, as far as the verdicts care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Nothing to report: unchanged, written, or not carried out yet.
    Ok,
    /// A foreign object holds the name (known from the cache, or found by the lookup).
    Foreign,
    /// The write (or the lookup) failed; the message names the object and the cause.
    Failed(String),
}

/// One desired child and what to do with it.
#[derive(Debug)]
pub(crate) struct Step<'a, C> {
    pub desired: &'a C,
    pub action: Action,
    pub outcome: Outcome,
}

/// Everything to do with the children of one kind.
#[derive(Debug)]
pub(crate) struct ChildPlan<'a, C> {
    /// In the translation's order.
    pub steps: Vec<Step<'a, C>>,
    /// Owned children whose FQDN annotation names the key and that are no longer desired.
    pub prune: Vec<Arc<Cached<C>>>,
}

/// The message of an [`Action::Unserved`] step.
fn unserved_message<C: Child>(desired: &C) -> String {
    let meta = desired.meta();
    format!(
        "{} {}/{} cannot be written: the API server does not serve {} {}s; install the Gateway API \
         standard CRDs (v1.5 or later, standard-install.yaml of a kubernetes-sigs/gateway-api release) \
         or run cfnet with --routing-api istio",
        C::KIND,
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
        C::api_version(&()),
        C::KIND,
    )
}

fn plan_children<'a, C: Child>(
    key: &FqdnKey,
    translation: &'a FqdnTranslation,
    cached: &Children<C>,
    served: bool,
) -> ChildPlan<'a, C> {
    let desired = C::desired(translation);
    let complete = C::WATCH_LABEL.is_none();
    let steps = desired
        .iter()
        .map(|d| {
            let current = d.meta().name.as_deref().and_then(|n| cached.get(n));
            let action = if served {
                action(d, current.map(Arc::as_ref), complete)
            } else {
                Action::Unserved
            };
            let outcome = match action {
                Action::Foreign => Outcome::Foreign,
                Action::Unserved => Outcome::Failed(unserved_message(d)),
                _ => Outcome::Ok,
            };
            Step {
                desired: d,
                action,
                outcome,
            }
        })
        .collect();
    let names: HashSet<&str> = desired
        .iter()
        .filter_map(|d| d.meta().name.as_deref())
        .collect();
    let prune = cached
        .values()
        .filter(|c| {
            c.meta.is_ours() && c.meta.fqdn() == Some(&*key.fqdn) && !names.contains(&*c.meta.name)
        })
        .cloned()
        .collect();
    ChildPlan { steps, prune }
}

/// What the reconcile concluded about one Route: the reason and message of its Ready condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub reason: Reason,
    pub message: String,
}

impl Verdict {
    pub fn ready(&self) -> bool {
        self.reason.is_ready()
    }
}

/// What one reconcile of a key does, in the order execute.rs does it.
#[derive(Debug)]
pub(crate) struct Plan<'a> {
    pub key: &'a FqdnKey,
    /// Every Route of the key, deleting ones included, by name.
    pub routes: &'a [Arc<Route>],
    pub translation: &'a FqdnTranslation,
    /// Live Routes without our finalizer: it goes on first, so that their children are always cleaned up.
    pub add_finalizers: Vec<&'a Route>,
    pub services: ChildPlan<'a, Service>,
    pub virtual_services: ChildPlan<'a, VirtualService>,
    pub http_routes: ChildPlan<'a, HTTPRoute>,
    /// The routing API of this reconcile: its kind (VirtualService or HTTPRoute) is pruned as usual, the
    /// other mode's only once this one's children are all written ([`Plan::prune_other_mode`]).
    pub routing_api: RoutingApi,
    /// The cached HTTPRoutes of the key, for what the implementations report on them ([`Plan::verdicts`]).
    http_route_reports: Children<HTTPRoute>,
    /// Routes being deleted that hold our finalizer (invalid ones too: they never have children, so they
    /// are never stuck). See [`Plan::release`].
    release: Vec<&'a Route>,
    /// Routes not being deleted, by name: the ones whose Ready condition is written.
    pub live: Vec<&'a Route>,
}

fn holds_finalizer(route: &Route) -> bool {
    route.finalizers().iter().any(|f| f == FINALIZER)
}

/// The plan for `key`: `routes` are all its Routes (the index's, deleting ones included),
/// `translation` is [`translate`] of them, `snapshot` the cached children.
pub(crate) fn plan<'a>(
    key: &'a FqdnKey,
    routes: &'a [Arc<Route>],
    translation: &'a FqdnTranslation,
    snapshot: &Snapshot,
    routing_api: RoutingApi,
) -> Plan<'a> {
    let (live, deleting): (Vec<&Route>, Vec<&Route>) = routes
        .iter()
        .map(Arc::as_ref)
        .partition(|r| r.metadata.deletion_timestamp.is_none());
    Plan {
        key,
        routes,
        translation,
        add_finalizers: live
            .iter()
            .copied()
            .filter(|r| !holds_finalizer(r))
            .collect(),
        services: plan_children(key, translation, &snapshot.services, true),
        virtual_services: plan_children(key, translation, &snapshot.virtual_services, true),
        http_routes: plan_children(
            key,
            translation,
            &snapshot.http_routes,
            snapshot.http_routes_served,
        ),
        routing_api,
        http_route_reports: snapshot.http_routes.clone(),
        release: deleting
            .into_iter()
            .filter(|r| holds_finalizer(r))
            .collect(),
        live,
    }
}

impl<'a> Plan<'a> {
    /// The finalizers to release: those of the deleting Routes, but only when no write of this reconcile
    /// failed (a failed prune would leave an orphan behind a Route that is gone).
    pub fn release(&self, failures: usize) -> &[&'a Route] {
        if failures == 0 { &self.release } else { &[] }
    }

    /// May the other routing mode's children of the key (HTTPRoutes in Istio mode, VirtualServices in
    /// gateway-api mode, left by a mode switch) be pruned? Only once every child of this mode's kind is
    /// in place — unchanged or written in this reconcile — so that a route never has neither: a failed,
    /// unserved or foreign-held child of this mode keeps the other mode's until the next reconcile.
    pub fn prune_other_mode(&self) -> bool {
        fn all_ok<C>(plan: &ChildPlan<'_, C>) -> bool {
            plan.steps.iter().all(|s| s.outcome == Outcome::Ok)
        }
        match self.routing_api {
            RoutingApi::Istio => all_ok(&self.virtual_services),
            RoutingApi::GatewayApi => all_ok(&self.http_routes),
        }
    }

    /// The verdict on each live Route that has one, in name order: the translation's problem if it has
    /// one, else the first foreign object or failed write among its children (Services, then
    /// VirtualServices, in step order), else Programmed if the translation programmed it. A Route with
    /// none of these has nothing to report yet.
    pub fn verdicts(&self) -> Vec<(&'a Route, Verdict)> {
        let ns = &*self.key.namespace;
        let mut found: BTreeMap<&str, Verdict> = BTreeMap::new();
        for p in &self.translation.problems {
            found.entry(&p.route).or_insert_with(|| Verdict {
                reason: p.reason,
                message: p.message.clone(),
            });
        }
        child_verdicts(&self.services, ns, &mut found);
        child_verdicts(&self.virtual_services, ns, &mut found);
        child_verdicts(&self.http_routes, ns, &mut found);
        let programmed: HashSet<&str> = self
            .translation
            .programmed
            .iter()
            .map(String::as_str)
            .collect();
        self.live
            .iter()
            .filter_map(|route| {
                let name = route.metadata.name.as_deref().unwrap_or_default();
                let verdict = match found.remove(name) {
                    Some(v) => v,
                    None if programmed.contains(name) => self.programmed_verdict(route),
                    None => return None,
                };
                Some((*route, verdict))
            })
            .collect()
    }

    fn programmed_verdict(&self, route: &Route) -> Verdict {
        let ns = &*self.key.namespace;
        let message = match self.routing_api {
            RoutingApi::Istio => {
                let vs_name = virtual_service_name(&self.key.fqdn);
                // A route without destinations has no entry of its own (a lone one gets the placeholder
                // that answers 503): say so instead of claiming it is routed.
                if route.spec.destinations.is_empty() {
                    format!(
                        "no destinations: nothing is routed for {} until an app is mapped (VirtualService {ns}/{vs_name})",
                        route.spec.url
                    )
                } else {
                    format!("programmed in VirtualService {ns}/{vs_name}")
                }
            }
            RoutingApi::GatewayApi => match self.http_route_of(route) {
                // No rule: a request under the path gets 404 (or a shorter route of the FQDN).
                None => format!(
                    "no destinations: nothing is routed for {} until an app is mapped (no HTTPRoute rule; requests get 404)",
                    route.spec.url
                ),
                Some(hr) => return self.http_route_verdict(hr),
            },
        };
        Verdict {
            reason: Reason::Programmed,
            message,
        }
    }

    /// The verdict on a route whose rule is in `hr`: what the implementation serving our parent reports
    /// on it, when it reported on the spec as it stands (the step left it unchanged, and the conditions
    /// are of its generation); else programmed, with nothing reported yet.
    fn http_route_verdict(&self, hr: &HTTPRoute) -> Verdict {
        let ns = &*self.key.namespace;
        let name = hr.metadata.name.as_deref().unwrap_or_default();
        let unchanged =
            self.http_routes.steps.iter().any(|s| {
                s.desired.metadata.name == hr.metadata.name && s.action == Action::Unchanged
            });
        let parent = hr.spec.parent_refs.first().map(|p| ParentId {
            group: p
                .group
                .clone()
                .unwrap_or_else(|| cfnet_api::gateway_api::GATEWAY_API_GROUP.into()),
            kind: p.kind.clone().unwrap_or_else(|| "Gateway".into()),
            namespace: p.namespace.clone().unwrap_or_else(|| ns.to_owned()),
            name: p.name.clone(),
        });
        let reports: Vec<&ParentReport> = match (unchanged, &parent) {
            (true, Some(parent)) => self
                .http_route_reports
                .get(name)
                .and_then(|c| c.reports.as_deref())
                .unwrap_or_default()
                .iter()
                .filter(|r| &r.parent == parent)
                .collect(),
            _ => Vec::new(),
        };
        http_route_verdict(ns, name, parent.as_ref(), &reports)
    }

    /// The desired HTTPRoute (shard) that holds `route`'s rule, if it has one.
    fn http_route_of(&self, route: &Route) -> Option<&'a HTTPRoute> {
        if route.spec.destinations.is_empty() {
            return None;
        }
        let wanted = match_key(route.spec.path());
        self.translation.http_routes.iter().find(|hr| {
            hr.spec.rules.iter().any(|rule| {
                let value = rule
                    .matches
                    .first()
                    .and_then(|m| m.path.as_ref()?.value.as_deref())
                    .unwrap_or("/");
                match_key(value) == wanted
            })
        })
    }
}

/// The verdict for a programmed route whose rule is in HTTPRoute `ns`/`name`, given the reports of the
/// implementations on it for its parent: Rejected with the implementation's reason and message when one
/// says `Accepted` or `ResolvedRefs` is not True; Programmed otherwise, saying who accepted it.
fn http_route_verdict(
    ns: &str,
    name: &str,
    parent: Option<&ParentId>,
    reports: &[&ParentReport],
) -> Verdict {
    let gateway = parent
        .map(|p| format!("{} {}/{}", p.kind, p.namespace, p.name))
        .unwrap_or_default();
    for report in reports {
        let failed = [
            ("Accepted", &report.accepted),
            ("ResolvedRefs", &report.resolved_refs),
        ]
        .into_iter()
        .find_map(|(type_, c)| {
            c.as_ref()
                .filter(|c| c.status != "True")
                .map(|c| (type_, c))
        });
        if let Some((type_, c)) = failed {
            return Verdict {
                reason: Reason::Rejected,
                message: format!(
                    "HTTPRoute {ns}/{name} is written, but {} reports {type_}={} for {gateway} ({}): {}",
                    report.controller, c.status, c.reason, c.message
                ),
            };
        }
    }
    let accepted_by: Vec<&str> = reports
        .iter()
        .filter(|r| r.accepted.is_some())
        .map(|r| r.controller.as_str())
        .collect();
    let message = if accepted_by.is_empty() {
        format!("programmed in HTTPRoute {ns}/{name}")
    } else {
        format!(
            "programmed in HTTPRoute {ns}/{name}, accepted for {gateway} by {}",
            accepted_by.join(", ")
        )
    };
    Verdict {
        reason: Reason::Programmed,
        message,
    }
}

/// Conflict for the owners of a child held by a foreign object, ApplyFailed for those of a failed one;
/// a Route keeps the first verdict it gets.
fn child_verdicts<'a, C: Child>(
    plan: &'a ChildPlan<'_, C>,
    ns: &str,
    found: &mut BTreeMap<&'a str, Verdict>,
) {
    for step in &plan.steps {
        let verdict = match &step.outcome {
            Outcome::Ok => continue,
            Outcome::Foreign => Verdict {
                reason: Reason::Conflict,
                message: format!(
                    "{} {ns}/{} already exists and is not owned by a Route; cfnet leaves it alone: {} so that this route can be programmed",
                    C::KIND,
                    step.desired.meta().name.as_deref().unwrap_or_default(),
                    C::FOREIGN_FIX
                ),
            },
            Outcome::Failed(message) => Verdict {
                reason: Reason::ApplyFailed,
                message: message.clone(),
            },
        };
        for owner in crate::child::owner_route_names(step.desired.meta()) {
            found.entry(owner).or_insert_with(|| verdict.clone());
        }
    }
}

#[cfg(test)]
mod tests;

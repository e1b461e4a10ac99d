//! The decisions of one reconcile, as pure functions of what the index holds for a key and of the key's
//! translation: the finalizers to add, what to do with each desired child, the children to prune, the
//! finalizers to release and the verdict on each Route. No I/O, no clock: table tests below.
//! execute.rs carries a [`Plan`] out and records each step's [`Outcome`] in it; the verdicts follow.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use cfnet_api::{FINALIZER, Reason, Route, VirtualService};
use cfnet_translate::{
    Claims, FqdnKey, FqdnTranslation, Settings, translate_fqdn, virtual_service_name,
};
use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;

use crate::child::{Cached, Child, needs_apply};
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

fn plan_children<'a, C: Child>(
    key: &FqdnKey,
    translation: &'a FqdnTranslation,
    cached: &Children<C>,
) -> ChildPlan<'a, C> {
    let desired = C::desired(translation);
    let complete = C::WATCH_LABEL.is_none();
    let steps = desired
        .iter()
        .map(|d| {
            let current = d.meta().name.as_deref().and_then(|n| cached.get(n));
            let action = action(d, current.map(Arc::as_ref), complete);
            let outcome = match action {
                Action::Foreign => Outcome::Foreign,
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
        services: plan_children(key, translation, &snapshot.services),
        virtual_services: plan_children(key, translation, &snapshot.virtual_services),
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
        let programmed: HashSet<&str> = self
            .translation
            .programmed
            .iter()
            .map(String::as_str)
            .collect();
        let vs_name = virtual_service_name(&self.key.fqdn);
        self.live
            .iter()
            .filter_map(|route| {
                let name = route.metadata.name.as_deref().unwrap_or_default();
                let verdict = match found.remove(name) {
                    Some(v) => v,
                    None if programmed.contains(name) => programmed_verdict(route, ns, &vs_name),
                    None => return None,
                };
                Some((*route, verdict))
            })
            .collect()
    }
}

fn programmed_verdict(route: &Route, ns: &str, vs_name: &str) -> Verdict {
    // A route without destinations has no entry of its own (a lone one gets the placeholder that answers
    // 503): say so instead of claiming it is routed.
    let message = if route.spec.destinations.is_empty() {
        format!(
            "no destinations: nothing is routed for {} until an app is mapped (VirtualService {ns}/{vs_name})",
            route.spec.url
        )
    } else {
        format!("programmed in VirtualService {ns}/{vs_name}")
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

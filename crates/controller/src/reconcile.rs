//! One reconcile of one (namespace, FQDN) key, as a short sequence: read the index (one lock), translate
//! the key's live Routes, plan (plan.rs, pure), carry the plan out (execute.rs, the only I/O), then
//! write the Ready conditions that follow from the verdicts (status.rs decides, execute.rs writes).

use std::sync::{Arc, RwLock};

use cfnet_api::Route;
use cfnet_translate::{FqdnKey, FqdnTranslation, Settings};

use crate::error::ReconcileError;
use crate::execute::{Execution, Handover, Writer};
use crate::index::{Index, Snapshot, read};
use crate::plan::{plan, translate};

pub(crate) struct Reconciler {
    pub index: Arc<RwLock<Index>>,
    pub settings: Settings,
    pub writer: Writer,
}

/// How a reconcile that did not fail ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reconciled {
    Done,
    /// This replica stopped leading on the way (a normal handover, not an error): the key is left for
    /// whoever leads.
    Handover,
}

impl Reconciler {
    pub async fn reconcile(&self, key: &FqdnKey) -> Result<Reconciled, ReconcileError> {
        let (routes, translation, snapshot) = self.read(key);
        let mut plan = plan(
            key,
            &routes,
            &translation,
            &snapshot,
            self.settings.routing_api,
        );
        let mut execution = Execution::new(&self.writer);
        // The one read of the clock: the transition time of every condition this reconcile writes.
        let now = chrono::Utc::now();
        let finished = match execution.writes(&mut plan).await {
            Ok(()) => execution.statuses(&plan, now).await,
            Err(Handover) => Err(Handover),
        };
        if finished.is_err() {
            return Ok(Reconciled::Handover);
        }
        match ReconcileError::from_failures(execution.failures) {
            None => Ok(Reconciled::Done),
            Some(e) => Err(e),
        }
    }

    /// The key's Routes, their translation and the cached children, under one read of the index.
    fn read(&self, key: &FqdnKey) -> (Vec<Arc<Route>>, FqdnTranslation, Snapshot) {
        let index = read(&self.index);
        let routes = index.routes(key);
        let translation = translate(key, &routes, &*index, &self.settings);
        let snapshot = index.snapshot(key, &translation);
        (routes, translation, snapshot)
    }
}

//! Phase 8: nothing changes; the controller's writes (its metrics) and the object changes (watches) are
//! counted, across at least one resync.

use std::time::Duration;

use cfnet_controller::names::API_WRITES_TOTAL;
use tokio::time::Instant;

use super::{Run, check_exact};
use crate::assemble::phase;
use crate::error::BenchError;
use crate::results::{Phase, SteadyState};

/// How the latency of one change is measured.
const DEFINITION: &str = "no changes are made";

impl Run<'_> {
    /// 8. Nothing changes; count the controller's writes (its metrics) and the object changes (watches).
    pub(super) async fn steady_state(&self) -> Result<(Phase, SteadyState), BenchError> {
        const PHASE: &str = "steady_state";
        let seconds = self.config.steady_seconds;
        let start = self.mark().await?;
        let events_before = self.observer.world().events();
        tracing::info!(seconds, "steady_state: idle");
        let deadline = start.at + Duration::from_secs(seconds);
        while Instant::now() < deadline {
            if let Some(c) = &self.controller {
                c.check_running(PHASE)?;
            }
            tokio::time::sleep_until(deadline.min(Instant::now() + Duration::from_millis(500)))
                .await;
        }
        let end = self.mark().await?;
        let events = self.observer.world().events() - events_before;
        let minutes = (end.at - start.at).as_secs_f64() / 60.0;
        let mut phase = phase((PHASE, DEFINITION), (&start, &end), end.at - start.at, &[]);
        let (writes, source) = match phase.controller_api_writes {
            Some(w) => (w, format!("controller metric {API_WRITES_TOTAL}")),
            None => (
                events as f64,
                "watch events (the controller exports no write counter)".to_string(),
            ),
        };
        {
            let w = self.observer.world();
            check_exact(PHASE, &w, self.n(), self.n(), self.n())?;
        }
        phase.notes.insert("watch_events".into(), events as f64);
        Ok((
            phase,
            SteadyState {
                seconds: minutes * 60.0,
                writes_per_minute: writes / minutes,
                source,
                observed_changes_per_minute: events as f64 / minutes,
                resync_interval_seconds: self.config.resync_seconds,
            },
        ))
    }
}

//! The Ready condition and the Events that follow from a verdict: pure functions of the Route's current
//! conditions, the verdict, its generation and the time, which the caller reads once per reconcile.

use cfnet_api::{Condition, ConditionStatus, READY, Reason};
use chrono::{DateTime, SecondsFormat, Utc};
use kube::runtime::events::EventType;

use crate::plan::Verdict;

/// The conditions to write for `verdict`, or `None` when the Ready condition already says it for this
/// `generation` (no write). Other conditions are kept; Ready goes last. `lastTransitionTime` moves only
/// when the status (True/False) changes.
pub(crate) fn next_conditions(
    current: &[Condition],
    verdict: &Verdict,
    generation: Option<i64>,
    now: DateTime<Utc>,
) -> Option<Vec<Condition>> {
    let status = if verdict.ready() {
        ConditionStatus::True
    } else {
        ConditionStatus::False
    };
    let reason = verdict.reason.as_str();
    let old = current.iter().find(|c| c.type_ == READY);
    if let Some(old) = old
        && old.status == status
        && old.reason.as_deref() == Some(reason)
        && old.message.as_deref() == Some(verdict.message.as_str())
        && old.observed_generation == generation
    {
        return None;
    }
    let now = || now.to_rfc3339_opts(SecondsFormat::Secs, true);
    let transition = match old {
        Some(o) if o.status == status => o.last_transition_time.clone().unwrap_or_else(now),
        _ => now(),
    };
    let ready = Condition {
        type_: READY.into(),
        status,
        reason: Some(reason.to_owned()),
        message: Some(verdict.message.clone()),
        last_transition_time: Some(transition),
        observed_generation: generation,
    };
    let mut next: Vec<Condition> = current
        .iter()
        .filter(|c| c.type_ != READY)
        .cloned()
        .collect();
    next.push(ready);
    Some(next)
}

/// The Event to publish once the condition for `verdict` is written over `old`: a Warning naming the
/// reason whenever the Route is not programmed, a Normal `Programmed` when it recovers from not Ready,
/// nothing otherwise.
pub(crate) fn event_for(old: Option<&Condition>, verdict: &Verdict) -> Option<(EventType, Reason)> {
    if !verdict.ready() {
        return Some((EventType::Warning, verdict.reason));
    }
    let was_ready = old.map(|o| o.status == ConditionStatus::True);
    (was_ready == Some(false)).then_some((EventType::Normal, Reason::Programmed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        rfc3339.parse().unwrap()
    }

    fn verdict(reason: Reason, message: &str) -> Verdict {
        Verdict {
            reason,
            message: message.into(),
        }
    }

    fn ready(
        status: ConditionStatus,
        reason: &str,
        message: &str,
        generation: i64,
        t: &str,
    ) -> Condition {
        Condition {
            type_: READY.into(),
            status,
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_transition_time: Some(t.into()),
            observed_generation: Some(generation),
        }
    }

    const T0: &str = "2026-01-01T00:00:00Z";
    const T1: &str = "2026-01-01T00:05:00Z";

    #[test]
    fn the_same_verdict_for_the_same_generation_writes_nothing() {
        let current = [ready(ConditionStatus::True, "Programmed", "m", 3, T0)];
        let v = verdict(Reason::Programmed, "m");
        assert_eq!(next_conditions(&current, &v, Some(3), at(T1)), None);
    }

    /// (case, current Ready, verdict, generation) → (status, transition time) written.
    #[test]
    fn a_changed_verdict_or_generation_is_written_and_the_time_moves_only_with_the_status() {
        use ConditionStatus::{False, True};
        let cases = [
            (
                "first condition",
                None,
                verdict(Reason::Programmed, "m"),
                1,
                (True, T1),
            ),
            (
                "new generation, same status",
                Some(ready(True, "Programmed", "m", 1, T0)),
                verdict(Reason::Programmed, "m"),
                2,
                (True, T0),
            ),
            (
                "new message, same status",
                Some(ready(False, "Invalid", "a", 1, T0)),
                verdict(Reason::Conflict, "b"),
                1,
                (False, T0),
            ),
            (
                "status flips",
                Some(ready(True, "Programmed", "m", 1, T0)),
                verdict(Reason::ApplyFailed, "e"),
                1,
                (False, T1),
            ),
        ];
        for (case, old, v, generation, (status, time)) in cases {
            let current: Vec<Condition> = old.into_iter().collect();
            let next = next_conditions(&current, &v, Some(generation), at(T1))
                .unwrap_or_else(|| panic!("{case}: no write"));
            let c = next.last().unwrap();
            assert_eq!(
                (c.status, c.last_transition_time.as_deref()),
                (status, Some(time)),
                "{case}"
            );
            assert_eq!(c.reason.as_deref(), Some(v.reason.as_str()), "{case}");
            assert_eq!(c.message.as_deref(), Some(v.message.as_str()), "{case}");
            assert_eq!(c.observed_generation, Some(generation), "{case}");
        }
    }

    #[test]
    fn other_conditions_are_kept_and_ready_goes_last() {
        let other = Condition {
            type_: "Other".into(),
            status: ConditionStatus::Unknown,
            reason: None,
            message: None,
            last_transition_time: None,
            observed_generation: None,
        };
        let current = [
            ready(ConditionStatus::False, "Invalid", "m", 1, T0),
            other.clone(),
        ];
        let next = next_conditions(
            &current,
            &verdict(Reason::Programmed, "ok"),
            Some(1),
            at(T1),
        )
        .unwrap();
        assert_eq!(next.len(), 2);
        assert_eq!(next[0], other);
        assert_eq!(next[1].type_, READY);
    }

    /// (old Ready status, verdict) → Event.
    #[test]
    fn events_warn_on_every_problem_and_announce_a_recovery_once() {
        use ConditionStatus::{False, True, Unknown};
        let cond = |s| ready(s, "x", "y", 1, T0);
        let cases = [
            (
                None,
                Reason::Invalid,
                Some((EventType::Warning, Reason::Invalid)),
            ),
            (
                Some(cond(False)),
                Reason::Conflict,
                Some((EventType::Warning, Reason::Conflict)),
            ),
            (
                Some(cond(True)),
                Reason::ApplyFailed,
                Some((EventType::Warning, Reason::ApplyFailed)),
            ),
            (
                Some(cond(False)),
                Reason::Programmed,
                Some((EventType::Normal, Reason::Programmed)),
            ),
            (
                Some(cond(Unknown)),
                Reason::Programmed,
                Some((EventType::Normal, Reason::Programmed)),
            ),
            (Some(cond(True)), Reason::Programmed, None),
            (None, Reason::Programmed, None),
        ];
        for (old, reason, expected) in cases {
            assert_eq!(
                event_for(old.as_ref(), &verdict(reason, "m")),
                expected,
                "{old:?} → {reason}"
            );
        }
    }
}

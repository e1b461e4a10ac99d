//! The children one reconcile created or deleted, per owning Route, so that each Route gets one Event
//! per kind of change ("Created Service s-…, VirtualService vs-…") instead of one per child: one write
//! per Route instead of one per child.

use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Change {
    Created,
    Deleted,
}

impl Change {
    /// The Event's reason.
    pub fn reason(self) -> &'static str {
        match self {
            Change::Created => "Created",
            Change::Deleted => "Deleted",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Deleted => "deleted",
        }
    }
}

#[derive(Default, Debug)]
pub(crate) struct ChildChanges {
    /// Route name → change → children ("Service s-…"), in the order they happened.
    by_route: BTreeMap<String, BTreeMap<Change, Vec<String>>>,
}

impl ChildChanges {
    /// Records `child` (e.g. "Service s-abc") as created or deleted for each of its `owners` (Route names).
    pub fn record<'a>(
        &mut self,
        owners: impl IntoIterator<Item = &'a str>,
        change: Change,
        child: String,
    ) {
        for owner in owners {
            self.by_route
                .entry(owner.to_string())
                .or_default()
                .entry(change)
                .or_default()
                .push(child.clone());
        }
    }

    /// The notes for `route`: one per kind of change, e.g. (Created, "created Service s-1, VirtualService vs-2").
    pub fn notes(&self, route: &str) -> Vec<(Change, String)> {
        self.by_route
            .get(route)
            .into_iter()
            .flatten()
            .map(|(change, children)| {
                (
                    *change,
                    format!("{} {}", change.verb(), children.join(", ")),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn one_note_per_route_and_change() {
        let mut changes = ChildChanges::default();
        changes.record(["r1"], Change::Created, "Service s-1".into());
        changes.record(["r1", "r2"], Change::Created, "VirtualService vs-x".into());
        changes.record(["r1"], Change::Deleted, "Service s-0".into());
        assert_eq!(
            changes.notes("r1"),
            vec![
                (
                    Change::Created,
                    "created Service s-1, VirtualService vs-x".to_string()
                ),
                (Change::Deleted, "deleted Service s-0".to_string()),
            ]
        );
        assert_eq!(
            changes.notes("r2"),
            vec![(Change::Created, "created VirtualService vs-x".to_string())]
        );
        assert!(changes.notes("r3").is_empty());
    }
}

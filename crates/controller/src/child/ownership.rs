//! Field ownership after a plain create. A child the cache proves absent is created with a POST (cheaper
//! for the API server than a server-side apply, and the create itself tells a foreign object holding the
//! name), which records cfnet's fields under an `Update` entry of its field manager. A later apply of
//! ours would then share those fields with that entry, and an apply cannot remove a field another entry
//! still owns (an ownerReference of a deleted Route, say). So before relying on an apply, the `Update`
//! entry is folded into cfnet's `Apply` entry: the object's managedFields then read as if every write of
//! ours had been an apply. Pure functions, unit tested; execute.rs sends the patch.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};
use serde_json::Value;

const APPLY: &str = "Apply";
const UPDATE: &str = "Update";

fn is(entry: &ManagedFieldsEntry, manager: &str, operation: &str) -> bool {
    entry.manager.as_deref() == Some(manager)
        && entry.operation.as_deref() == Some(operation)
        && entry.subresource.as_deref().unwrap_or_default().is_empty()
}

/// Union of two FieldsV1 sets (JSON tries whose leaves are `{}`).
fn union(a: &mut Value, b: &Value) {
    // FieldsV1 has only objects; anything else is left as it is.
    if let (Value::Object(a), Value::Object(b)) = (a, b) {
        for (k, v) in b {
            match a.get_mut(k) {
                Some(mine) => union(mine, v),
                None => {
                    a.insert(k.clone(), v.clone());
                }
            }
        }
    }
}

/// `entries` with `manager`'s `Update` entry (on the main resource) folded into its `Apply` entry, or
/// turned into one when there is none; `None` when there is nothing to fold, or when the two entries are
/// of different API versions (their field paths could differ; the entry is then left alone).
pub(crate) fn fold_updates_into_apply(
    entries: &[ManagedFieldsEntry],
    manager: &str,
) -> Option<Vec<ManagedFieldsEntry>> {
    let at = entries.iter().position(|e| is(e, manager, UPDATE))?;
    let mut folded = entries.to_vec();
    let update = folded.remove(at);
    match folded.iter_mut().find(|e| is(e, manager, APPLY)) {
        Some(apply) => {
            if apply.api_version != update.api_version {
                return None;
            }
            let theirs = update.fields_v1.map(|f| f.0).unwrap_or(Value::Null);
            match apply.fields_v1.as_mut() {
                Some(FieldsV1(mine)) => union(mine, &theirs),
                None => apply.fields_v1 = Some(FieldsV1(theirs)),
            }
        }
        None => {
            let mut apply = update;
            apply.operation = Some(APPLY.into());
            // The API server lists Apply entries first.
            folded.insert(0, apply);
        }
    }
    Some(folded)
}

/// The JSON patch that replaces the managedFields of the object at `resource_version` with `entries`;
/// the `test` makes it fail cleanly when the object changed meanwhile.
pub(crate) fn managed_fields_patch(
    resource_version: Option<&str>,
    entries: &[ManagedFieldsEntry],
) -> Value {
    serde_json::json!([
        {"op": "test", "path": "/metadata/resourceVersion", "value": resource_version},
        {"op": "replace", "path": "/metadata/managedFields", "value": entries},
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(manager: &str, operation: &str, fields: Value) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.into()),
            operation: Some(operation.into()),
            api_version: Some("v1".into()),
            fields_type: Some("FieldsV1".into()),
            fields_v1: Some(FieldsV1(fields)),
            ..Default::default()
        }
    }

    const ME: &str = "cfnet-routecontroller";

    #[test]
    fn a_plain_create_becomes_an_apply() {
        let created = json!({"f:metadata": {"f:labels": {".": {}, "f:a": {}}}});
        let folded = fold_updates_into_apply(
            &[
                entry("other", UPDATE, json!({})),
                entry(ME, UPDATE, created.clone()),
            ],
            ME,
        )
        .unwrap();
        assert_eq!(
            folded,
            [entry(ME, APPLY, created), entry("other", UPDATE, json!({}))]
        );
    }

    #[test]
    fn an_update_is_merged_into_the_apply_entry() {
        let applied = json!({"f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {"f:x": {}}});
        let updated = json!({"f:metadata": {"f:labels": {"f:b": {}}, "f:ownerReferences": {"k:{\"uid\":\"u\"}": {}}}});
        let folded =
            fold_updates_into_apply(&[entry(ME, APPLY, applied), entry(ME, UPDATE, updated)], ME)
                .unwrap();
        assert_eq!(
            folded,
            [entry(
                ME,
                APPLY,
                json!({"f:metadata": {"f:labels": {"f:a": {}, "f:b": {}}, "f:ownerReferences": {"k:{\"uid\":\"u\"}": {}}},
                       "f:spec": {"f:x": {}}})
            )]
        );
    }

    #[test]
    fn nothing_to_fold_is_none() {
        let table: &[&[ManagedFieldsEntry]] = &[
            &[],
            &[entry(ME, APPLY, json!({}))],
            &[entry("kubectl-edit", UPDATE, json!({}))],
            // The status subresource's updates are another entry; they stay.
            &[ManagedFieldsEntry {
                subresource: Some("status".into()),
                ..entry(ME, UPDATE, json!({}))
            }],
        ];
        for entries in table {
            assert_eq!(fold_updates_into_apply(entries, ME), None, "{entries:?}");
        }
        // Different API versions: left alone.
        let other_version = ManagedFieldsEntry {
            api_version: Some("v2".into()),
            ..entry(ME, UPDATE, json!({}))
        };
        assert_eq!(
            fold_updates_into_apply(&[entry(ME, APPLY, json!({})), other_version], ME),
            None
        );
    }

    #[test]
    fn the_patch_tests_the_revision() {
        let p = managed_fields_patch(Some("42"), &[entry(ME, APPLY, json!({}))]);
        assert_eq!(
            p[0],
            json!({"op": "test", "path": "/metadata/resourceVersion", "value": "42"})
        );
        assert_eq!(p[1]["path"], "/metadata/managedFields");
        assert_eq!(p[1]["value"][0]["operation"], "Apply");
    }
}

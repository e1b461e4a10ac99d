//! Field-level differences between two JSON values, as `cfnet diff` prints them: one [`FieldChange`] per
//! leaf that differs, with a path like `spec.http[0].route[0].destination.port.number`. Pure.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

/// One leaf that an apply would change: `from` (`None`: absent) → `to` (`None`: removed).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldChange {
    pub path: String,
    pub from: Option<Value>,
    pub to: Option<Value>,
}

/// `prefix` + one map key: `a.b` for plain keys, `a["cloudfoundry.org/fqdn"]` for the others.
fn key_path(prefix: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (prefix.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{prefix}.{key}"),
        // A JSON string is a quoted, escaped key.
        (_, false) => format!("{prefix}[{}]", Value::String(key.to_owned())),
    }
}

/// Appends the leaves that differ between `from` and `to` under `path`, in path order (map keys sorted,
/// list entries by index). A map or list on one side only is expanded to its leaves.
pub fn diff(path: &str, from: Option<&Value>, to: Option<&Value>, out: &mut Vec<FieldChange>) {
    if from == to {
        return;
    }
    // Both absent is equal, handled above: at least one side is a value.
    if is_map_or_none(from) && is_map_or_none(to) {
        let keys: BTreeSet<&String> = [from, to]
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
            .flat_map(|m| m.keys())
            .collect();
        for key in keys {
            diff(
                &key_path(path, key),
                from.and_then(|v| v.get(key)),
                to.and_then(|v| v.get(key)),
                out,
            );
        }
    } else if is_list_or_none(from) && is_list_or_none(to) {
        let len = |v: Option<&Value>| v.and_then(Value::as_array).map_or(0, Vec::len);
        for i in 0..len(from).max(len(to)) {
            diff(
                &format!("{path}[{i}]"),
                from.and_then(|v| v.get(i)),
                to.and_then(|v| v.get(i)),
                out,
            );
        }
    } else {
        out.push(FieldChange {
            path: path.to_owned(),
            from: from.cloned(),
            to: to.cloned(),
        });
    }
}

fn is_map_or_none(v: Option<&Value>) -> bool {
    v.is_none_or(Value::is_object)
}

fn is_list_or_none(v: Option<&Value>) -> bool {
    v.is_none_or(Value::is_array)
}

/// A value as one line: compact JSON (strings quoted), `<none>` for an absent one.
pub fn render(value: Option<&Value>) -> String {
    value.map_or_else(|| "<none>".to_owned(), Value::to_string)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn lines(from: Value, to: Value) -> Vec<String> {
        let mut out = Vec::new();
        diff("", Some(&from), Some(&to), &mut out);
        out.iter()
            .map(|c| {
                format!(
                    "{}: {} → {}",
                    c.path,
                    render(c.from.as_ref()),
                    render(c.to.as_ref())
                )
            })
            .collect()
    }

    #[test]
    fn leaves_that_differ_with_their_paths() {
        let cases: &[(Value, Value, &[&str])] = &[
            (json!({"a": 1}), json!({"a": 1}), &[]),
            (json!({"a": 1}), json!({"a": 2}), &["a: 1 → 2"]),
            // A map on one side only is expanded to its leaves: the port the mesh fix adds.
            (
                json!({"spec": {"http": [{"route": [{"destination": {"host": "s-1"}}]}]}}),
                json!({"spec": {"http": [{"route": [{"destination": {"host": "s-1", "port": {"number": 8080}}}]}]}}),
                &["spec.http[0].route[0].destination.port.number: <none> → 8080"],
            ),
            (
                json!({"hosts": ["Shop.example.com"]}),
                json!({"hosts": ["shop.example.com"]}),
                &[r#"hosts[0]: "Shop.example.com" → "shop.example.com""#],
            ),
            // Extra and missing list entries.
            (
                json!({"l": [1]}),
                json!({"l": [1, 2, 3]}),
                &["l[1]: <none> → 2", "l[2]: <none> → 3"],
            ),
            (
                json!({"l": [1, 2]}),
                json!({}),
                &["l[0]: 1 → <none>", "l[1]: 2 → <none>"],
            ),
            // Keys that are not identifiers are quoted; keys sorted.
            (
                json!({"labels": {"cloudfoundry.org/app_guid": "a", "b": "x"}}),
                json!({"labels": {"b": "y"}}),
                &[
                    r#"labels.b: "x" → "y""#,
                    r#"labels["cloudfoundry.org/app_guid"]: "a" → <none>"#,
                ],
            ),
            // A type change is one leaf.
            (
                json!({"a": {"b": 1}}),
                json!({"a": "x"}),
                &[r#"a: {"b":1} → "x""#],
            ),
        ];
        for (from, to, want) in cases {
            assert_eq!(lines(from.clone(), to.clone()), *want, "{from} → {to}");
        }
    }
}

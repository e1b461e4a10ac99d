//! Conditions cfnet writes on a Route's status.
//!
//! Upstream's CRD declared `status.conditions[]` as `{type: string, status: boolean}` but never wrote it.
//! We follow the Kubernetes convention (`status` is "True" / "False" / "Unknown", plus reason, message,
//! lastTransitionTime and observedGeneration) so that `kubectl wait --for=condition=Ready` works, and we
//! still decode a boolean `status` so that an object written against the old schema reads back.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// Type of the condition that says whether a Route is programmed into its VirtualService and Services.
pub const READY: &str = "Ready";

#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl<'de> Deserialize<'de> for ConditionStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        Ok(match Raw::deserialize(deserializer)? {
            Raw::Bool(true) => ConditionStatus::True,
            Raw::Bool(false) => ConditionStatus::False,
            Raw::Text(s) if s.eq_ignore_ascii_case("true") => ConditionStatus::True,
            Raw::Text(s) if s.eq_ignore_ascii_case("false") => ConditionStatus::False,
            Raw::Text(_) => ConditionStatus::Unknown,
        })
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: ConditionStatus,
    /// CamelCase reason, e.g. Programmed, Invalid, Conflict, ApplyFailed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// RFC 3339 time of the last change of `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

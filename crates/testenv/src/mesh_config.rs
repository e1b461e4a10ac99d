//! The mesh config the local istiod reads: the chart's access-log settings, from the chart's own file, so that
//! tests exercise what users install.

use std::collections::BTreeMap;

use crate::Error;

/// The CF JSON access-log format, the one source of the chart's `cfnet.accessLogFormat` (templates/_helpers.tpl).
const ACCESS_LOG_FORMAT: &str =
    include_str!("../../../deploy/helm/cf-k8s-networking/files/access-log-format.json");
const ACCESS_LOG_FORMAT_FILE: &str = "deploy/helm/cf-k8s-networking/files/access-log-format.json";
/// The chart's default `accessLog.file`.
const ACCESS_LOG_FILE: &str = "/dev/stdout";

/// The access-log format exactly as the chart renders it into its mesh ConfigMap: compact JSON, keys sorted.
pub fn access_log_format() -> Result<String, Error> {
    let fields: BTreeMap<String, String> =
        serde_json::from_str(ACCESS_LOG_FORMAT).map_err(|e| Error::TestData {
            file: ACCESS_LOG_FORMAT_FILE,
            message: format!("not a JSON object of strings: {e}"),
        })?;
    serde_json::to_string(&fields).map_err(|e| Error::TestData {
        file: ACCESS_LOG_FORMAT_FILE,
        message: e.to_string(),
    })
}

/// The mesh config file for `pilot-discovery --meshConfig`: the keys of the chart's `cf-k8s-networking-mesh`
/// ConfigMap (`accessLogFile`, `accessLogEncoding`, `accessLogFormat`) with the chart's default values.
pub fn mesh_config_yaml() -> Result<String, Error> {
    let mesh = serde_json::json!({
        "accessLogFile": ACCESS_LOG_FILE,
        "accessLogEncoding": "JSON",
        "accessLogFormat": access_log_format()?,
    });
    serde_yaml_ng::to_string(&mesh).map_err(|e| Error::TestData {
        file: ACCESS_LOG_FORMAT_FILE,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_is_compact_sorted_json_with_the_cf_fields() {
        let format = access_log_format().unwrap();
        assert!(
            format.starts_with(r#"{"app_id":"%REQ(CF-APP-ID)%","authority":"#),
            "{format}"
        );
        for field in [
            "organization_id",
            "process_type",
            "space_id",
            "response_flags",
        ] {
            assert!(
                format.contains(&format!("\"{field}\":")),
                "{field}: {format}"
            );
        }
        assert!(!format.contains(' ') && !format.contains('\n'), "{format}");
    }

    #[test]
    fn the_mesh_config_round_trips() {
        let yaml = mesh_config_yaml().unwrap();
        let parsed: serde_json::Value = serde_yaml_ng::from_str(&yaml).unwrap();
        assert_eq!(parsed["accessLogEncoding"], "JSON");
        assert_eq!(parsed["accessLogFile"], "/dev/stdout");
        assert_eq!(parsed["accessLogFormat"], access_log_format().unwrap());
    }
}

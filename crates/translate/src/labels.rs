//! Kubernetes' label syntax, which the API server enforces on the Services cfnet writes (their labels and
//! `spec.selector`), ported from `k8s.io/apimachinery` `pkg/api/validate/content` (`IsLabelKey`,
//! `IsLabelValue`, `IsDNS1123Subdomain`). A value the API server refuses would otherwise surface only at
//! apply time, as an `ApplyFailed` that names no field of the Route.

/// `IsLabelValue`: empty, or at most 63 of `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`.
pub(crate) fn validate_label_value(value: &str) -> Result<(), String> {
    if value.len() > 63 {
        return Err(format!(
            "it is {} characters long, a label value has at most 63",
            value.len()
        ));
    }
    if !value.is_empty() && !is_label_name(value) {
        return Err(
            "a label value must be empty or consist of letters, digits, '-', '_' or '.', \
             and start and end with a letter or digit"
                .to_owned(),
        );
    }
    Ok(())
}

/// `IsLabelKey`: an optional DNS-1123 subdomain prefix (at most 253 characters) and `/`, then a name of at
/// most 63 of `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`.
pub(crate) fn validate_label_key(key: &str) -> Result<(), String> {
    let name = match key.split_once('/') {
        None => key,
        Some((prefix, name)) => {
            if name.contains('/') {
                return Err("a label key has at most one '/'".to_owned());
            }
            if prefix.is_empty() {
                return Err("the prefix before '/' must not be empty".to_owned());
            }
            if prefix.len() > 253 || !is_dns1123_subdomain(prefix) {
                return Err(format!(
                    "the prefix {prefix:?} must be a DNS subdomain (lower-case letters, digits, '-' \
                     and '.', at most 253 characters)"
                ));
            }
            name
        }
    };
    if name.is_empty() {
        return Err("the name part must not be empty".to_owned());
    }
    if name.len() > 63 {
        return Err(format!(
            "the name part is {} characters long, at most 63 are allowed",
            name.len()
        ));
    }
    if !is_label_name(name) {
        return Err(
            "the name part must consist of letters, digits, '-', '_' or '.', and start \
             and end with a letter or digit"
                .to_owned(),
        );
    }
    Ok(())
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*` (label length is not in the pattern;
/// the FQDN checks keep labels at 63 anyway).
pub(crate) fn is_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(is_dns1123_label_pattern)
}

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`, at most 63 characters.
pub(crate) fn is_dns1123_label(s: &str) -> bool {
    s.len() <= 63 && is_dns1123_label_pattern(s)
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn is_dns1123_label_pattern(label: &str) -> bool {
    let b = label.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum)
        && b.iter().all(|c| alnum(c) || *c == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_as_kubernetes_validates_them() {
        let ok = [
            "",
            "web",
            "worker",
            "3f5d1d6a-2c1c-4a59-a0c2-8c7c1e0e7d0b",
            "MyValue",
            "my_value",
            "12345",
            "a.b-c_d",
            &"a".repeat(63),
        ];
        for v in ok {
            assert_eq!(validate_label_value(v), Ok(()), "{v:?}");
        }
        let bad = [
            "app%zz",
            "web\n",
            "-web",
            "web-",
            "_x",
            "x.",
            "a b",
            "a/b",
            "ünï",
            &"a".repeat(64),
        ];
        for v in bad {
            assert!(validate_label_value(v).is_err(), "{v:?}");
        }
    }

    #[test]
    fn label_keys_as_kubernetes_validates_them() {
        let ok = [
            "cloudfoundry.org/app_guid",
            "cloudfoundry.org/process_type",
            "app",
            "MyName",
            "my.name",
            "123-abc",
            "example.com/MyName",
        ];
        for k in ok {
            assert_eq!(validate_label_key(k), Ok(()), "{k:?}");
        }
        let bad = [
            "",
            "/name",
            "example.com/",
            "a/b/c",
            "Example.com/name",
            "example..com/name",
            "-example.com/name",
            "bad key",
            "-name",
            "name_",
            &"a".repeat(64),
            &format!("{}/name", "a".repeat(254)),
        ];
        for k in bad {
            assert!(validate_label_key(k).is_err(), "{k:?}");
        }
    }
}

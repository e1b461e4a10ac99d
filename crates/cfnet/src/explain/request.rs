//! The request `cfnet explain` is about: `host/path`, `http(s)://host[:port]/path[?query]`.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Http,
    Https,
}

/// A parsed URL. `host` is lower case (DNS names are case-insensitive, and cfnet's FQDNs are lower case); the
/// path keeps its case (Istio's prefix match is case-sensitive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// As given on the command line.
    pub url: String,
    /// `None` when the URL has no scheme.
    pub scheme: Option<Scheme>,
    pub host: String,
    pub port: Option<u16>,
    /// `:path` as Envoy sees it: the path (`/` when empty) and the query, without a fragment.
    pub path: String,
}

/// A URL that cannot be explained.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid URL {url:?}: {reason}; give host/path or http(s)://host[:port]/path")]
pub struct UrlError {
    pub url: String,
    pub reason: String,
}

impl Request {
    pub fn parse(url: &str) -> Result<Request, UrlError> {
        let err = |reason: &str| UrlError {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = url.trim();
        let (scheme, rest) = match trimmed.split_once("://") {
            Some((s, rest)) if s.eq_ignore_ascii_case("http") => (Some(Scheme::Http), rest),
            Some((s, rest)) if s.eq_ignore_ascii_case("https") => (Some(Scheme::Https), rest),
            Some((s, _)) => return Err(err(&format!("scheme {s:?} is not http or https"))),
            None => (None, trimmed),
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.contains('@') {
            return Err(err("user information (user@host) is not supported"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => {
                let port: u16 = port.parse().ok().filter(|p| *p != 0).ok_or_else(|| {
                    err(&format!("port {port:?} is not a number from 1 to 65535"))
                })?;
                (host, Some(port))
            }
            None => (authority, None),
        };
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        if host.is_empty() {
            return Err(err("the host is empty"));
        }
        if let Some(bad) = host
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '*')))
        {
            return Err(err(&format!("the host has the character {bad:?}")));
        }
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        Ok(Request {
            url: url.to_owned(),
            scheme,
            host,
            port,
            path,
        })
    }

    /// The path without the query: what a Route's path is compared with.
    pub fn bare_path(&self) -> &str {
        self.path.split('?').next().unwrap_or_default()
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// URL, scheme, host, port, path.
    type Case<'a> = (&'a str, Option<Scheme>, &'a str, Option<u16>, &'a str);

    #[test]
    fn parse_table() {
        let cases: &[Case] = &[
            (
                "shop.apps.example.com",
                None,
                "shop.apps.example.com",
                None,
                "/",
            ),
            (
                "shop.apps.example.com/api/v2/x",
                None,
                "shop.apps.example.com",
                None,
                "/api/v2/x",
            ),
            (
                "https://Shop.Apps.Example.COM/API",
                Some(Scheme::Https),
                "shop.apps.example.com",
                None,
                "/API",
            ),
            (
                "HTTP://shop.apps.example.com:8080",
                Some(Scheme::Http),
                "shop.apps.example.com",
                Some(8080),
                "/",
            ),
            (
                "http://shop.apps.example.com/a?b=c#frag",
                Some(Scheme::Http),
                "shop.apps.example.com",
                None,
                "/a?b=c",
            ),
            (
                "shop.apps.example.com?x=1",
                None,
                "shop.apps.example.com",
                None,
                "/?x=1",
            ),
            (
                "shop.apps.example.com./",
                None,
                "shop.apps.example.com",
                None,
                "/",
            ),
            (
                "backend.apps.internal:8080/health",
                None,
                "backend.apps.internal",
                Some(8080),
                "/health",
            ),
        ];
        for (url, scheme, host, port, path) in cases {
            let r = Request::parse(url).unwrap();
            assert_eq!(
                (r.scheme, r.host.as_str(), r.port, r.path.as_str()),
                (*scheme, *host, *port, *path),
                "{url}"
            );
        }
        assert_eq!(Request::parse("a.b/x?y").unwrap().bare_path(), "/x");
    }

    #[test]
    fn bad_urls_say_what_to_give() {
        for (url, why) in [
            ("", "the host is empty"),
            ("https://", "the host is empty"),
            ("ftp://a.example.com", "scheme \"ftp\""),
            ("a.example.com:99999", "port \"99999\""),
            ("a.example.com:0", "port \"0\""),
            ("user@a.example.com", "user information"),
            ("a_b.example.com", "character '_'"),
        ] {
            let err = Request::parse(url).unwrap_err().to_string();
            assert!(err.contains(why), "{url}: {err}");
            assert!(err.ends_with("http(s)://host[:port]/path"), "{err}");
        }
    }
}

//! `routes()`: one row per Envoy route, per route configuration and virtual host.
//!
//! The JSON shape (`route_config`, `virtual_host`, `domains`, `match`, `clusters`, `request_headers_to_add`) is
//! read by checks outside the repository: keep the names.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3::{HeaderValueOption, Metadata, data_source};
use envoy_types::pb::envoy::config::route::v3::{
    RedirectAction, Route, RouteConfiguration, RouteMatch, VirtualHost, redirect_action, route,
    route_action, route_match,
};
use envoy_types::pb::google::protobuf::value::Kind;
use serde::Serialize;

use crate::config::ProxyConfig;

/// One Envoy route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteView {
    pub route_config: String,
    pub virtual_host: String,
    pub domains: Vec<String>,
    /// The route's name (istiod: the VirtualService http entry's `name`), empty when unnamed.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(rename = "match")]
    pub route_match: MatchView,
    /// Where the route sends requests: one cluster with weight 100, or the weighted clusters.
    pub clusters: Vec<ClusterWeightView>,
    /// Headers added by the route (istiod puts a single destination's headers here).
    pub request_headers_to_add: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct_response: Option<DirectResponseView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect: Option<RedirectView>,
    /// `namespace/name` of the VirtualService istiod built the route from (route metadata `istio.config`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_service: Option<String>,
}

/// A route's match: one path key (`prefix`, `path`, `safe_regex`, `path_separated_prefix`, …), `case_sensitive`
/// only when false, and the names of any header / query parameter conditions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MatchView {
    #[serde(flatten)]
    pub path: PathView,
    #[serde(skip_serializing_if = "is_true")]
    pub case_sensitive: bool,
    /// Header matchers (names): the route only applies to requests that satisfy them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub query_parameters: Vec<String>,
    /// Other conditions (`grpc`, `runtime_fraction`, `tls_context`, …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<String>,
}

fn is_true(b: &bool) -> bool {
    *b
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PathView {
    Prefix(String),
    Path(String),
    SafeRegex(String),
    PathSeparatedPrefix(String),
    /// An extension's name (`path_match_policy`, e.g. URI templates).
    PathMatchPolicy(String),
    ConnectMatcher(bool),
    /// A route without a path specifier (Envoy refuses it).
    Unspecified(bool),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClusterWeightView {
    pub name: String,
    pub weight: u32,
    /// Headers added when this cluster is picked (istiod puts weighted destinations' headers here).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub request_headers_to_add: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DirectResponseView {
    pub status: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RedirectView {
    pub status: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scheme: String,
}

/// Every route of every route configuration: route configurations by name, virtual hosts by name, routes in
/// the order Envoy tries them.
pub fn routes(config: &ProxyConfig) -> Vec<RouteView> {
    config
        .route_configs
        .values()
        .flat_map(|rc| route_config_routes(rc))
        .collect()
}

/// The routes of one route configuration, virtual hosts by name.
pub fn route_config_routes(rc: &RouteConfiguration) -> Vec<RouteView> {
    let mut vhosts: Vec<&VirtualHost> = rc.virtual_hosts.iter().collect();
    vhosts.sort_by(|a, b| a.name.cmp(&b.name));
    vhosts
        .into_iter()
        .flat_map(|vh| vh.routes.iter().map(move |r| route_view(&rc.name, vh, r)))
        .collect()
}

pub fn route_view(route_config: &str, vh: &VirtualHost, r: &Route) -> RouteView {
    let mut view = RouteView {
        route_config: route_config.to_owned(),
        virtual_host: vh.name.clone(),
        domains: vh.domains.clone(),
        name: r.name.clone(),
        route_match: match_view(r.r#match.as_ref()),
        clusters: Vec::new(),
        request_headers_to_add: header_map(&r.request_headers_to_add),
        direct_response: None,
        redirect: None,
        virtual_service: r.metadata.as_ref().and_then(virtual_service),
    };
    match &r.action {
        Some(route::Action::Route(action)) => {
            view.clusters = match &action.cluster_specifier {
                Some(route_action::ClusterSpecifier::Cluster(name)) => vec![ClusterWeightView {
                    name: name.clone(),
                    weight: 100,
                    request_headers_to_add: BTreeMap::new(),
                }],
                Some(route_action::ClusterSpecifier::WeightedClusters(w)) => w
                    .clusters
                    .iter()
                    .map(|c| ClusterWeightView {
                        name: c.name.clone(),
                        weight: c.weight.as_ref().map_or(0, |w| w.value),
                        request_headers_to_add: header_map(&c.request_headers_to_add),
                    })
                    .collect(),
                _ => Vec::new(),
            }
        }
        Some(route::Action::DirectResponse(d)) => {
            view.direct_response = Some(DirectResponseView {
                status: d.status,
                body: d.body.as_ref().and_then(|b| match &b.specifier {
                    Some(data_source::Specifier::InlineString(s)) => Some(s.clone()),
                    Some(data_source::Specifier::InlineBytes(b)) => {
                        Some(String::from_utf8_lossy(b).into_owned())
                    }
                    _ => None,
                }),
            })
        }
        Some(route::Action::Redirect(r)) => view.redirect = Some(redirect_view(r)),
        _ => {}
    }
    view
}

pub fn match_view(m: Option<&RouteMatch>) -> MatchView {
    let Some(m) = m else {
        return MatchView {
            path: PathView::Unspecified(true),
            case_sensitive: true,
            headers: Vec::new(),
            query_parameters: Vec::new(),
            conditions: Vec::new(),
        };
    };
    let path = match &m.path_specifier {
        Some(route_match::PathSpecifier::Prefix(p)) => PathView::Prefix(p.clone()),
        Some(route_match::PathSpecifier::Path(p)) => PathView::Path(p.clone()),
        Some(route_match::PathSpecifier::SafeRegex(r)) => PathView::SafeRegex(r.regex.clone()),
        Some(route_match::PathSpecifier::PathSeparatedPrefix(p)) => {
            PathView::PathSeparatedPrefix(p.clone())
        }
        Some(route_match::PathSpecifier::PathMatchPolicy(ext)) => {
            PathView::PathMatchPolicy(ext.name.clone())
        }
        Some(route_match::PathSpecifier::ConnectMatcher(_)) => PathView::ConnectMatcher(true),
        None => PathView::Unspecified(true),
    };
    let mut conditions = Vec::new();
    let mut flag = |present: bool, name: &str| {
        if present {
            conditions.push(name.to_owned());
        }
    };
    flag(m.runtime_fraction.is_some(), "runtime_fraction");
    flag(!m.cookies.is_empty(), "cookies");
    flag(m.grpc.is_some(), "grpc");
    flag(m.tls_context.is_some(), "tls_context");
    flag(!m.dynamic_metadata.is_empty(), "dynamic_metadata");
    flag(!m.filter_state.is_empty(), "filter_state");
    MatchView {
        path,
        case_sensitive: m.case_sensitive.as_ref().is_none_or(|b| b.value),
        headers: m.headers.iter().map(|h| h.name.clone()).collect(),
        query_parameters: m.query_parameters.iter().map(|q| q.name.clone()).collect(),
        conditions,
    }
}

/// Header name → value; with a repeated name the last value wins (Envoy would add both).
pub fn header_map(headers: &[HeaderValueOption]) -> BTreeMap<String, String> {
    headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .map(|h| {
            let value = if h.value.is_empty() && !h.raw_value.is_empty() {
                String::from_utf8_lossy(&h.raw_value).into_owned()
            } else {
                h.value.clone()
            };
            (h.key.clone(), value)
        })
        .collect()
}

fn redirect_view(r: &RedirectAction) -> RedirectView {
    use redirect_action::RedirectResponseCode as Code;
    let status = match Code::try_from(r.response_code) {
        Ok(Code::Found) => 302,
        Ok(Code::SeeOther) => 303,
        Ok(Code::TemporaryRedirect) => 307,
        Ok(Code::PermanentRedirect) => 308,
        Ok(Code::MovedPermanently) | Err(_) => 301,
    };
    RedirectView {
        status,
        host: r.host_redirect.clone(),
        path: match &r.path_rewrite_specifier {
            Some(redirect_action::PathRewriteSpecifier::PathRedirect(p)) => p.clone(),
            Some(redirect_action::PathRewriteSpecifier::PrefixRewrite(p)) => format!("{p}*"),
            _ => String::new(),
        },
        scheme: match &r.scheme_rewrite_specifier {
            Some(redirect_action::SchemeRewriteSpecifier::SchemeRedirect(s)) => s.clone(),
            Some(redirect_action::SchemeRewriteSpecifier::HttpsRedirect(true)) => {
                "https".to_owned()
            }
            _ => String::new(),
        },
    }
}

/// istiod marks each route with the config it came from: metadata `istio.config` =
/// `/apis/networking.istio.io/v1/namespaces/<ns>/virtual-service/<name>`.
fn virtual_service(metadata: &Metadata) -> Option<String> {
    let fields = &metadata.filter_metadata.get("istio")?.fields;
    let Some(Kind::StringValue(config)) = fields.get("config")?.kind.as_ref() else {
        return None;
    };
    let rest = config.split("/namespaces/").nth(1)?;
    match rest.split('/').collect::<Vec<_>>()[..] {
        [ns, "virtual-service", name] => Some(format!("{ns}/{name}")),
        _ => Some(config.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use envoy_types::pb::envoy::config::route::v3::{DirectResponseAction, HeaderMatcher};
    use envoy_types::pb::envoy::r#type::matcher::v3::RegexMatcher;
    use envoy_types::pb::google::protobuf::{Struct, Value};
    use serde_json::json;
    use std::sync::Arc;

    fn config(rcs: Vec<RouteConfiguration>) -> ProxyConfig {
        ProxyConfig {
            route_configs: rcs
                .into_iter()
                .map(|rc| (rc.name.clone(), Arc::new(rc)))
                .collect(),
            ..ProxyConfig::default()
        }
    }

    #[test]
    fn single_and_weighted_destinations_as_json() {
        let cf = [("CF-App-Id", "a1"), ("CF-App-Process-Type", "web")];
        let rc = catnip_http_8080(&cf, &[], prefix("/"));
        let got = serde_json::to_value(routes(&config(vec![rc]))).unwrap();
        assert_eq!(
            got,
            json!([
                {
                    "route_config": "http.8080",
                    "virtual_host": "catnip.apps.example.com:80",
                    "domains": ["catnip.apps.example.com", "catnip.apps.example.com:*"],
                    "match": {"prefix": "/api"},
                    "clusters": [
                        {"name": "outbound|8080||s-a.apps.svc.cluster.local", "weight": 80,
                         "request_headers_to_add": {"CF-App-Id": "a1", "CF-App-Process-Type": "web"}},
                        {"name": "outbound|8080||s-b.apps.svc.cluster.local", "weight": 20}
                    ],
                    "request_headers_to_add": {}
                },
                {
                    "route_config": "http.8080",
                    "virtual_host": "catnip.apps.example.com:80",
                    "domains": ["catnip.apps.example.com", "catnip.apps.example.com:*"],
                    "match": {"prefix": "/"},
                    "clusters": [{"name": "outbound|8080||s-a.apps.svc.cluster.local", "weight": 100}],
                    "request_headers_to_add": {"CF-App-Id": "a1", "CF-App-Process-Type": "web"}
                }
            ])
        );
    }

    #[test]
    fn match_kinds_as_json() {
        use route_match::PathSpecifier as P;
        let cases = [
            (prefix("/a"), json!({"prefix": "/a"})),
            (
                path_match(P::Prefix("/a".into()), Some(false)),
                json!({"prefix": "/a", "case_sensitive": false}),
            ),
            (
                path_match(P::Prefix("/a".into()), Some(true)),
                json!({"prefix": "/a"}),
            ),
            (
                path_match(P::Path("/x".into()), None),
                json!({"path": "/x"}),
            ),
            (
                path_match(
                    P::SafeRegex(RegexMatcher {
                        regex: "/v[0-9]+".into(),
                        ..RegexMatcher::default()
                    }),
                    None,
                ),
                json!({"safe_regex": "/v[0-9]+"}),
            ),
            (
                path_match(P::PathSeparatedPrefix("/b".into()), None),
                json!({"path_separated_prefix": "/b"}),
            ),
            (
                RouteMatch {
                    headers: vec![HeaderMatcher {
                        name: "x-canary".into(),
                        ..HeaderMatcher::default()
                    }],
                    ..prefix("/")
                },
                json!({"prefix": "/", "headers": ["x-canary"]}),
            ),
        ];
        for (m, want) in cases {
            assert_eq!(serde_json::to_value(match_view(Some(&m))).unwrap(), want);
        }
    }

    #[test]
    fn direct_response_redirect_and_virtual_service() {
        let mut direct = to_cluster(prefix("/"), "x", &[]);
        direct.action = Some(route::Action::DirectResponse(DirectResponseAction {
            status: 404,
            ..DirectResponseAction::default()
        }));
        let mut redirect = to_cluster(prefix("/old"), "x", &[]);
        redirect.action = Some(route::Action::Redirect(RedirectAction {
            host_redirect: "new.example.com".into(),
            response_code: redirect_action::RedirectResponseCode::PermanentRedirect as i32,
            scheme_rewrite_specifier: Some(redirect_action::SchemeRewriteSpecifier::HttpsRedirect(
                true,
            )),
            ..RedirectAction::default()
        }));
        let mut from_vs = to_cluster(prefix("/"), "c", &[]);
        from_vs.metadata = Some(Metadata {
            filter_metadata: [(
                "istio".to_owned(),
                Struct {
                    fields: [(
                        "config".to_owned(),
                        Value {
                            kind: Some(Kind::StringValue(
                                "/apis/networking.istio.io/v1/namespaces/apps/virtual-service/vs-abc".into(),
                            )),
                        },
                    )]
                    .into(),
                },
            )]
            .into(),
            ..Metadata::default()
        });
        let vh = vhost("v", &["*"], &[]);
        let d = route_view("rc", &vh, &direct);
        assert_eq!(
            d.direct_response,
            Some(DirectResponseView {
                status: 404,
                body: None
            })
        );
        assert!(d.clusters.is_empty());
        let r = serde_json::to_value(route_view("rc", &vh, &redirect)).unwrap();
        assert_eq!(
            r["redirect"],
            json!({"status": 308, "host": "new.example.com", "scheme": "https"})
        );
        assert_eq!(
            route_view("rc", &vh, &from_vs).virtual_service.as_deref(),
            Some("apps/vs-abc")
        );
    }

    #[test]
    fn order_route_configs_and_virtual_hosts_by_name_routes_as_served() {
        let rc_b = route_config(
            "b",
            &[
                vhost("z", &["z"], &[to_cluster(prefix("/"), "c", &[])]),
                vhost(
                    "y",
                    &["y"],
                    &[
                        to_cluster(prefix("/2"), "c", &[]),
                        to_cluster(prefix("/1"), "c", &[]),
                    ],
                ),
            ],
        );
        let rc_a = route_config(
            "a",
            &[vhost("x", &["x"], &[to_cluster(prefix("/"), "c", &[])])],
        );
        let got: Vec<(String, String, String)> = routes(&config(vec![rc_b, rc_a]))
            .into_iter()
            .map(|r| {
                let PathView::Prefix(p) = r.route_match.path else {
                    panic!()
                };
                (r.route_config, r.virtual_host, p)
            })
            .collect();
        let want = [
            ("a", "x", "/"),
            ("b", "y", "/2"),
            ("b", "y", "/1"),
            ("b", "z", "/"),
        ];
        assert_eq!(
            got,
            want.map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
        );
    }

    #[test]
    fn raw_header_values_and_repeated_names() {
        let mut hs = headers(&[("a", "1"), ("a", "2")]);
        hs.push(HeaderValueOption {
            header: Some(envoy_types::pb::envoy::config::core::v3::HeaderValue {
                key: "raw".into(),
                raw_value: b"bytes".to_vec(),
                ..Default::default()
            }),
            ..HeaderValueOption::default()
        });
        let map = header_map(&hs);
        assert_eq!(map["a"], "2");
        assert_eq!(map["raw"], "bytes");
    }
}

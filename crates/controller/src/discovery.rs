//! Which routing kinds the API server serves, and the watches that depend on it. A cluster without the
//! Gateway API CRDs is normal in Istio mode, and a cluster without Istio's in gateway-api mode: a watch of
//! a kind that is not served would fail for ever and hold readiness. So the HTTPRoute watch (both modes:
//! a switch back to Istio prunes HTTPRoutes) and, in gateway-api mode, the VirtualService watch (which
//! prunes what the Istio mode left) start only where API discovery lists the kind.
//!
//! In gateway-api mode without the CRDs the controller still becomes ready: it logs what to install,
//! every Route that needs an HTTPRoute gets Ready=False naming the CRDs (plan.rs, `Action::Unserved`),
//! and discovery is asked again every [`RECHECK`]; once HTTPRoutes are served their watch starts and
//! every key is reconciled again.

use std::sync::Arc;
use std::time::Duration;

use cfnet_api::VirtualService;
use cfnet_api::gateway_api::HTTPRoute;
use cfnet_translate::RoutingApi;
use kube::{Client, Resource};
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::child::Child;
use crate::index::{read, write};
use crate::watch::{Feed, Gate, watch_child};

/// How often discovery is asked again while a kind is not served (or discovery failed).
pub(crate) const RECHECK: Duration = Duration::from_secs(10);

/// Does the API server serve kind `C` (its group/version lists its plural)? `Err`: discovery failed.
pub(crate) async fn serves<C: Child>(client: &Client) -> Result<bool, kube::Error> {
    let group_version = C::api_version(&());
    match client.list_api_group_resources(&group_version).await {
        Ok(list) => Ok(list.resources.iter().any(|r| r.name == C::plural(&()))),
        // A group/version nobody serves is a plain 404 page, not a Status object.
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Asks discovery about `C` until it answers (failures are logged and retried every [`RECHECK`]).
async fn served<C: Child>(client: &Client) -> bool {
    loop {
        match serves::<C>(client).await {
            Ok(served) => return served,
            Err(e) => {
                warn!(kind = C::KIND, error = %crate::error_chain(&e),
                      "API discovery failed; asking again in {RECHECK:?}");
                tokio::time::sleep(RECHECK).await;
            }
        }
    }
}

/// Starts the watches of the routing kinds that depend on discovery (see the module comment) and keeps
/// them running; aborting this task stops them.
pub(crate) async fn watch_routing_kinds(
    client: Client,
    scopes: Vec<Option<String>>,
    feed: Arc<Feed>,
    routing_api: RoutingApi,
) {
    let mut watches = JoinSet::new();
    let gateway_api = routing_api == RoutingApi::GatewayApi;
    if gateway_api {
        if served::<VirtualService>(&client).await {
            start::<VirtualService>(&client, &scopes, &feed, Gate::Not, &mut watches);
        } else {
            info!("VirtualServices are not served (no Istio CRDs): none to prune");
        }
    }
    let gate = if gateway_api { Gate::Ready } else { Gate::Not };
    // In Istio mode HTTPRoutes matter only after a switch: ask less often.
    let recheck = if gateway_api { RECHECK } else { RECHECK * 6 };
    let mut announced = false;
    while !served::<HTTPRoute>(&client).await {
        if gateway_api && !announced {
            error!(
                "--routing-api gateway-api, but the API server does not serve {} HTTPRoutes: install \
                 the Gateway API standard CRDs (v1.5 or later); until then every Route that needs an \
                 HTTPRoute is Ready=False with reason ApplyFailed. Asking again every {RECHECK:?}",
                HTTPRoute::api_version(&())
            );
            // Readiness does not wait for a watch that cannot start: the Routes get their status.
            for _ in &scopes {
                feed.sync.synced_one();
            }
        }
        announced = true;
        tokio::time::sleep(recheck).await;
    }
    write(&feed.index).http_routes_served = true;
    start::<HTTPRoute>(&client, &scopes, &feed, gate, &mut watches);
    if announced {
        info!("HTTPRoutes are served now: watching them and reconciling every key again");
        let keys = read(&feed.index).all_keys();
        for k in keys {
            feed.queue.add(k, None);
        }
    }
    while watches.join_next().await.is_some() {}
}

fn start<C: Child>(
    client: &Client,
    scopes: &[Option<String>],
    feed: &Arc<Feed>,
    gate: Gate,
    watches: &mut JoinSet<()>,
) {
    for scope in scopes {
        watches.spawn(watch_child::<C>(client, scope, feed, gate));
    }
}

//! Leader election on a coordination.k8s.io Lease (kube-lease-manager). The result is a watch channel
//! that gates every write: it turns false the moment the lease is lost or cannot be confirmed.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::LeaderElection;

const RETRY_MIN: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(10);

async fn build(
    client: &Client,
    le: &LeaderElection,
) -> Result<LeaseManager, kube_lease_manager::LeaseManagerError> {
    LeaseManagerBuilder::new(client.clone(), le.lease_name.clone())
        .with_namespace(le.namespace.clone())
        .with_identity(le.identity.clone())
        .with_duration(le.lease_duration.as_secs().max(2))
        .with_grace(le.renew_before.as_secs().max(1))
        .with_field_manager(format!("{}-{}", cfnet_api::FIELD_MANAGER, le.identity))
        .build()
        .await
}

/// Campaigns for the lease until `shutdown` turns true, then releases it (a standby takes over at once).
pub(crate) async fn campaign(
    client: Client,
    le: LeaderElection,
    gate: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut delay = RETRY_MIN;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let manager = tokio::select! {
            m = build(&client, &le) => m,
            _ = shutdown.changed() => return,
        };
        let manager = match manager {
            Ok(m) => m,
            Err(e) => {
                warn!(lease = %format!("{}/{}", le.namespace, le.lease_name), error = %e, retry_in = ?delay,
                      "cannot reach the Lease; retrying (does the namespace exist, is leases RBAC granted?)");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => return,
                }
                delay = (delay * 2).min(RETRY_MAX);
                continue;
            }
        };
        loop {
            tokio::select! {
                changed = manager.changed() => match changed {
                    Ok(leader) => {
                        delay = RETRY_MIN;
                        gate.send_replace(leader);
                        info!(identity = %le.identity, leader, lease = %format!("{}/{}", le.namespace, le.lease_name),
                              "{}", if leader { "acquired the lease: this replica writes" } else { "lost the lease: this replica stops writing" });
                    }
                    Err(e) => {
                        // Cannot confirm the lease: stop writing now, rebuild the manager and campaign again.
                        gate.send_replace(false);
                        warn!(identity = %le.identity, error = %e, "lease renewal failed: this replica stops writing and campaigns again");
                        break;
                    }
                },
                _ = shutdown.changed() => {
                    gate.send_replace(false);
                    if let Err(e) = manager.release().await {
                        warn!(error = %e, "could not release the lease; a standby takes over when it expires");
                    } else {
                        info!(identity = %le.identity, "released the lease");
                    }
                    return;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => return,
        }
        delay = (delay * 2).min(RETRY_MAX);
    }
}

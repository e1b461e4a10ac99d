//! Istio's validating webhook, registered with the local API server so that invalid Istio objects are refused
//! exactly as on a real cluster. istiod serves `/validate`; we register it ourselves (istiod's own webhook
//! controller is off: `VALIDATION_WEBHOOK_CONFIG_NAME=`).

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    RuleWithOperations, ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ObjectMeta, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};

use crate::Error;

/// The name Istio's chart gives this configuration for the default revision in istio-system.
pub const CONFIG_NAME: &str = "istio-validator-istio-system";
/// The webhook's name in Istio's chart; it is quoted in every refusal: `admission webhook "<name>" denied`.
pub const WEBHOOK_NAME: &str = "rev.validation.istio.io";
/// Marks the configuration as ours, so a stale one is removed only if we wrote it.
const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "cfnet-testenv");
const FIELD_MANAGER: &str = "cfnet-testenv";

/// The ValidatingWebhookConfiguration of Istio's chart (istio-discovery's validatingwebhookconfiguration.yaml)
/// pointed at `url`, trusting `ca_pem`. Differences from the chart: a URL instead of the `istiod` Service
/// (there are no pods or endpoints here), no `istio.io/rev` objectSelector (the chart's second, default-revision
/// webhook covers unlabelled objects; together they validate everything, as this one does), and
/// `failurePolicy: Fail` from the start, which istiod's webhook controller would set once ready.
pub fn configuration(url: &str, ca_pem: &str) -> ValidatingWebhookConfiguration {
    ValidatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(CONFIG_NAME.to_string()),
            labels: Some(
                [
                    (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
                    ("app".to_string(), "istiod".to_string()),
                    ("istio".to_string(), "istiod".to_string()),
                ]
                .into(),
            ),
            ..Default::default()
        },
        webhooks: Some(vec![ValidatingWebhook {
            name: WEBHOOK_NAME.to_string(),
            client_config: WebhookClientConfig {
                url: Some(url.to_string()),
                ca_bundle: Some(ByteString(ca_pem.as_bytes().to_vec())),
                service: None,
            },
            rules: Some(vec![RuleWithOperations {
                operations: Some(vec!["CREATE".into(), "UPDATE".into()]),
                api_groups: Some(vec![
                    "security.istio.io".into(),
                    "networking.istio.io".into(),
                    "telemetry.istio.io".into(),
                    "extensions.istio.io".into(),
                ]),
                api_versions: Some(vec!["*".into()]),
                resources: Some(vec!["*".into()]),
                scope: None,
            }]),
            failure_policy: Some("Fail".into()),
            side_effects: "None".into(),
            admission_review_versions: vec!["v1".into()],
            ..Default::default()
        }]),
    }
}

/// Writes the configuration (server-side apply, replacing a stale one of an earlier run).
pub(crate) async fn register(
    client: Client,
    config: &ValidatingWebhookConfiguration,
) -> Result<(), Error> {
    Api::<ValidatingWebhookConfiguration>::all(client)
        .patch(
            CONFIG_NAME,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(config),
        )
        .await
        .map_err(Error::kube(format!(
            "registering ValidatingWebhookConfiguration {CONFIG_NAME}"
        )))?;
    Ok(())
}

/// A VirtualService that passes the CRD schema but not Istio's validation ("virtual service must have at
/// least one host"): the webhook has taken effect once a dry-run create of it is refused by the webhook.
fn probe_object() -> DynamicObject {
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "networking.istio.io",
        "v1",
        "VirtualService",
    ));
    let mut probe = DynamicObject::new("cfnet-testenv-webhook-probe", &resource)
        .within(crate::istiod::ISTIO_NAMESPACE);
    probe.data = serde_json::json!({"spec": {"hosts": []}});
    probe
}

/// Waits until the API server calls the webhook (it picks up new configurations asynchronously) and the
/// webhook refuses an invalid object. `Err(last answer)` at the deadline.
pub(crate) async fn wait_effective(client: Client, deadline: Instant) -> Result<(), String> {
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "networking.istio.io",
        "v1",
        "VirtualService",
    ));
    let api: Api<DynamicObject> =
        Api::namespaced_with(client, crate::istiod::ISTIO_NAMESPACE, &resource);
    let params = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let probe = probe_object();
    loop {
        let last = match api.create(&params, &probe).await {
            Err(kube::Error::Api(status))
                if status
                    .message
                    .contains(&format!("admission webhook \"{WEBHOOK_NAME}\" denied")) =>
            {
                return Ok(());
            }
            Err(e) => e.to_string(),
            Ok(_) => "the invalid VirtualService was accepted (webhook not called yet)".to_string(),
        };
        if Instant::now() > deadline {
            return Err(last);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Deletes the configuration if we wrote it (its label says so); absent is fine.
pub(crate) async fn remove(client: Client) -> Result<(), Error> {
    let api = Api::<ValidatingWebhookConfiguration>::all(client);
    let context = || format!("removing ValidatingWebhookConfiguration {CONFIG_NAME}");
    let Some(existing) = api
        .get_opt(CONFIG_NAME)
        .await
        .map_err(Error::kube(context()))?
    else {
        return Ok(());
    };
    let ours = existing
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY.0))
        .is_some_and(|v| v == MANAGED_BY.1);
    if !ours {
        return Ok(());
    }
    match api.delete(CONFIG_NAME, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
        Err(e) => Err(Error::kube(context())(e)),
    }
}

/// [`remove`] from synchronous code (`Drop`): on a thread of its own with a fresh client from the admin
/// kubeconfig, because the caller's runtime may be the current-thread runtime we would block, or gone.
pub(crate) fn remove_blocking(kubeconfig: &Path) {
    let kubeconfig = kubeconfig.to_path_buf();
    let removal = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let yaml = std::fs::read_to_string(&kubeconfig).map_err(|e| e.to_string())?;
            let client = crate::kubeconfig::client_from_yaml(&yaml, "for the admin")
                .await
                .map_err(|e| e.to_string())?;
            tokio::time::timeout(Duration::from_secs(5), remove(client))
                .await
                .map_err(|_| "timed out after 5 s".to_string())?
                .map_err(|e| e.to_string())
        })
    });
    match removal.join() {
        Ok(Ok(())) => {}
        // The API server may already be gone, and the configuration with it.
        Ok(Err(e)) => tracing::debug!(error = %e, "could not remove the Istio validating webhook"),
        Err(_) => tracing::warn!("the thread removing the Istio validating webhook panicked"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_validates_istio_groups_through_the_url() {
        let config = configuration("https://127.0.0.1:4443/validate", "PEM");
        let value = serde_json::to_value(&config).unwrap();
        let webhook = &value["webhooks"][0];
        assert_eq!(webhook["name"], WEBHOOK_NAME);
        assert_eq!(
            webhook["clientConfig"]["url"],
            "https://127.0.0.1:4443/validate"
        );
        // base64 of "PEM"
        assert_eq!(webhook["clientConfig"]["caBundle"], "UEVN");
        assert_eq!(webhook["failurePolicy"], "Fail");
        assert_eq!(webhook["sideEffects"], "None");
        assert_eq!(
            webhook["rules"][0]["operations"],
            serde_json::json!(["CREATE", "UPDATE"])
        );
        let groups = webhook["rules"][0]["apiGroups"].as_array().unwrap();
        assert!(groups.contains(&"networking.istio.io".into()), "{groups:?}");
        assert!(groups.contains(&"security.istio.io".into()), "{groups:?}");
        assert!(
            !groups.contains(&"gateway.networking.k8s.io".into()),
            "Gateway API objects are not Istio's to validate"
        );
        assert_eq!(value["metadata"]["labels"][MANAGED_BY.0], MANAGED_BY.1);
    }
}

//! The routing-API flags shared by `cfnet controller`, `cfnet render` and `cfnet demo`:
//! `--routing-api istio|gateway-api` (env `CFNET_ROUTING_API`, default `istio`) and
//! `--gateway-api-parent NS/NAME` (env `CFNET_GATEWAY_API_PARENT`, default `cf-system/cf-gateway`).
//! docs/gateway-api.md describes the gateway-api mode.

use cfnet_translate::{GatewayRef, RoutingApi};

/// Default of `--gateway-api-parent`.
pub const DEFAULT_GATEWAY_API_PARENT: &str = "cf-system/cf-gateway";

#[derive(clap::Args, Clone, Debug)]
pub struct RoutingArgs {
    /// Program routes as Istio VirtualServices (istio) or Gateway API HTTPRoutes (gateway-api).
    #[arg(long, value_name = "API", env = "CFNET_ROUTING_API", default_value = "istio",
          value_parser = parse_routing_api)]
    pub routing_api: RoutingApi,
    /// The Gateway API Gateway the HTTPRoutes attach to (gateway-api mode), NAMESPACE/NAME.
    #[arg(long, value_name = "NS/NAME", env = "CFNET_GATEWAY_API_PARENT",
          default_value = DEFAULT_GATEWAY_API_PARENT, value_parser = GatewayRef::parse)]
    pub gateway_api_parent: GatewayRef,
}

fn parse_routing_api(text: &str) -> Result<RoutingApi, String> {
    text.parse()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        routing: RoutingArgs,
    }

    #[test]
    fn defaults_are_istio_and_cf_gateway() {
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(cli.routing.routing_api, RoutingApi::Istio);
        assert_eq!(cli.routing.gateway_api_parent, GatewayRef::default());
    }

    #[test]
    fn values_are_parsed_and_bad_ones_named() {
        let cli = Cli::try_parse_from([
            "x",
            "--routing-api",
            "gateway-api",
            "--gateway-api-parent",
            "infra/gw",
        ])
        .unwrap();
        assert_eq!(cli.routing.routing_api, RoutingApi::GatewayApi);
        assert_eq!(cli.routing.gateway_api_parent.to_string(), "infra/gw");
        let err = Cli::try_parse_from(["x", "--routing-api", "nginx"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("use istio or gateway-api"), "{err}");
        let err = Cli::try_parse_from(["x", "--gateway-api-parent", "gw"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("must be namespace/name"), "{err}");
    }
}

//! `cfnet crd`: prints the Route CustomResourceDefinition generated from the types (the same YAML as
//! deploy/crds/networking.cloudfoundry.org_routes.yaml, which a test keeps in step).

use std::io::Write;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> ExitCode {
    match serde_yaml_ng::to_string(&cfnet_api::route_crd()) {
        Ok(yaml) => {
            if std::io::stdout().lock().write_all(yaml.as_bytes()).is_err() {
                eprintln!("error: cannot write the CRD to stdout");
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot serialize the Route CRD: {e}");
            ExitCode::from(2)
        }
    }
}

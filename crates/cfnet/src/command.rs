//! The process edge shared by commands that print their own output (`demo`, `dev up`): quiet logging and
//! an async runtime whose error is one `cfnet <command>: <message>` line and exit status 1.

use std::future::Future;
use std::process::ExitCode;

/// Warnings only, and none of kube's: it logs every 500 of /readyz while the API server warms up.
pub fn init_quiet_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,kube_client=off")),
        )
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs `work` on a multi-threaded runtime; `command` names the command in the error line.
pub fn block_on(command: &str, work: impl Future<Output = Result<(), String>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cfnet {command}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("cfnet {command}: {message}");
            ExitCode::FAILURE
        }
    }
}

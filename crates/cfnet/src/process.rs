//! The process edge every command shares: logging to stderr, the async runtime with the one-line error
//! and exit status, and SIGINT/SIGTERM.

use std::fmt::Display;
use std::future::Future;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};

/// How long leftover tasks get once a command's work has returned (a task that ignores cancellation,
/// e.g. blocking I/O, must not hold the exit).
const RUNTIME_SHUTDOWN: Duration = Duration::from_millis(300);

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Logs to stderr, filtered by `RUST_LOG` or else `default_filter`. Text carries ANSI colours only when
/// stderr is a terminal (not in files, pipes or `cfnet bench`'s controller.log). A second call (tests)
/// keeps the first subscriber.
pub fn init_logging(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Warnings only, and none of kube's: it logs every 500 of /readyz while the API server warms up. For
/// the commands that print their own progress (`demo`, `dev up`).
#[cfg(feature = "dev-tools")]
pub const QUIET: &str = "warn,kube_client=off";

/// An error and its causes on one line, each cause once (kube's errors repeat their source in their
/// own message, which anyhow's `{:#}` would print twice).
pub fn one_line(error: anyhow::Error) -> String {
    cfnet_controller::error_chain(error.as_ref())
}

/// Runs `work` on a multi-threaded runtime. An error is one `cfnet <command>: <message>` line on stderr
/// and exit status 1.
pub fn run_async<E: Display>(command: &str, work: impl Future<Output = Result<(), E>>) -> ExitCode {
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
    let result = runtime.block_on(work);
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cfnet {command}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// SIGINT and SIGTERM, handled from the moment [`Signals::install`] returns, so that neither kills the
/// process half-way through starting or stopping.
pub struct Signals {
    int: Signal,
    term: Signal,
}

impl Signals {
    /// Must be called on a runtime.
    pub fn install() -> Result<Self, String> {
        let int = signal(SignalKind::interrupt())
            .map_err(|e| format!("cannot install the SIGINT handler: {e}"))?;
        let term = signal(SignalKind::terminate())
            .map_err(|e| format!("cannot install the SIGTERM handler: {e}"))?;
        Ok(Signals { int, term })
    }

    /// The name of the next signal received: `SIGINT` or `SIGTERM`.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        }
    }
}

//! A controller running in-process, on the caller's runtime: what `cfnet demo` and the integration
//! tests use (`cfnet controller` runs [`crate::Controller::run`] itself, as the process's main task).

use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::error::StartError;
use crate::{Config, Controller, Metrics};

/// Why an in-process controller did not become ready, or did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("the controller failed to start")]
    Start(#[source] StartError),
    #[error("the controller task failed")]
    Task(#[source] tokio::task::JoinError),
    #[error("the controller stopped before its caches were synced")]
    Stopped,
    #[error("the controller's caches were not synced within {0:?}")]
    NotReady(Duration),
    #[error("the controller did not stop within {0:?}; stopped it")]
    NotStopped(Duration),
}

/// A running controller and the means to stop it.
pub struct InProcess {
    pub metrics: Arc<Metrics>,
    /// True while it writes (always, without leader election).
    pub leading: watch::Receiver<bool>,
    ready: watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), StartError>>,
}

impl InProcess {
    /// Spawns `Controller::run` for `config` on the current runtime.
    pub fn start(config: Config, client: Client) -> Self {
        let controller = Controller::new(config, client);
        let metrics = controller.metrics();
        let leading = controller.leading();
        let ready = controller.ready();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(controller.run(async move {
            let _ = stopped.await;
        }));
        InProcess {
            metrics,
            leading,
            ready,
            stop: Some(stop),
            task,
        }
    }

    /// Waits until Routes, Services and VirtualServices are listed.
    pub async fn wait_ready(&mut self, within: Duration) -> Result<(), RunnerError> {
        match tokio::time::timeout(within, self.ready.wait_for(|r| *r)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(RunnerError::Stopped),
            Err(_) => Err(RunnerError::NotReady(within)),
        }
    }

    /// Whether the controller's task has ended (it runs until stopped, so: failed).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Sum of the controller's `cfnet_api_writes_total`.
    pub fn writes(&self) -> u64 {
        self.metrics.api_writes_total()
    }

    /// Lets in-flight reconciles finish (the SIGTERM path) and waits up to `within` for the stop.
    pub async fn stop(mut self, within: Duration) -> Result<(), RunnerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match tokio::time::timeout(within, &mut self.task).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(RunnerError::Start(e)),
            Ok(Err(e)) => Err(RunnerError::Task(e)),
            Err(_) => {
                self.task.abort();
                Err(RunnerError::NotStopped(within))
            }
        }
    }

    /// Like a SIGKILL: no graceful shutdown, no lease release.
    pub fn kill(self) {
        self.task.abort();
    }
}

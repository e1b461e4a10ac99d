//! One server process (etcd, kube-apiserver or istiod) that cannot outlive us.
//!
//! Three layers make orphans impossible:
//! - `Drop` signals the server's process group: SIGTERM then SIGKILL after a grace period when its state is
//!   kept, SIGKILL at once when its temp dir is about to be deleted;
//! - every server runs in its own process group, so the group signal reaches anything it forks;
//! - `PR_SET_PDEATHSIG(SIGKILL)` makes the kernel kill the server when its parent dies, even on SIGKILL of the
//!   test process. The kernel ties that signal to the *thread* that forked, not the process: with tokio's
//!   multi-thread runtime a worker thread may exit while the server should live on. So all servers are forked
//!   from one dedicated thread that lives as long as the process (see [`spawn_from_spawner_thread`]).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::Error;

/// A running server. Dropping it stops it.
#[derive(Debug)]
pub(crate) struct Server {
    name: &'static str,
    child: Child,
    log: PathBuf,
    stopped: bool,
    /// SIGTERM first (state worth keeping) or SIGKILL at once (a temp dir about to be deleted).
    graceful: bool,
}

/// How long a server gets to exit after SIGTERM before it is SIGKILLed.
const STOP_GRACE: Duration = Duration::from_secs(5);

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Forks `command` from the process-lifetime spawner thread, so that PDEATHSIG fires only when the whole
/// process dies.
fn spawn_from_spawner_thread(command: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<mpsc::Sender<SpawnRequest>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        // If the thread cannot be created, `rx` is dropped and every send below reports the failure.
        let _ = std::thread::Builder::new()
            .name("cfnet-testenv-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            });
        tx
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .send((command, reply_tx))
        .map_err(|_| io::Error::other("the cfnet-testenv spawner thread is not running"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("the cfnet-testenv spawner thread stopped"))?
}

impl Server {
    /// Starts `binary args…` with stdout and stderr appended to `log`.
    pub(crate) fn spawn(
        name: &'static str,
        binary: &Path,
        args: &[String],
        log: &Path,
        graceful: bool,
    ) -> Result<Server, Error> {
        Self::spawn_with_env(name, binary, args, &[], log, graceful)
    }

    /// Like [`Server::spawn`], with `env` set on top of our own environment.
    pub(crate) fn spawn_with_env(
        name: &'static str,
        binary: &Path,
        args: &[String],
        env: &[(String, String)],
        log: &Path,
        graceful: bool,
    ) -> Result<Server, Error> {
        let out = File::create(log).map_err(Error::io(format!(
            "creating the {name} log {}",
            log.display()
        )))?;
        let err = out.try_clone().map_err(Error::io(format!(
            "opening the {name} log {}",
            log.display()
        )))?;
        let parent = std::process::id();
        let mut command = Command::new(binary);
        command
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        // SAFETY: the closure runs between fork and exec and only calls async-signal-safe functions
        // (prctl, getppid, io::Error::last_os_error reads errno).
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died before prctl took effect: then nobody would ever kill us.
                if libc::getppid() as u32 != parent {
                    return Err(io::Error::other("parent exited during spawn"));
                }
                Ok(())
            });
        }
        let child = spawn_from_spawner_thread(command).map_err(|source| Error::Spawn {
            binary: name,
            path: binary.to_path_buf(),
            source,
        })?;
        tracing::debug!(server = name, pid = child.id(), log = %log.display(), "started");
        Ok(Server {
            name,
            child,
            log: log.to_path_buf(),
            stopped: false,
            graceful,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn log(&self) -> &Path {
        &self.log
    }

    /// `Some(status)` once the server has exited.
    pub(crate) fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The error to report when the server died during start-up.
    pub(crate) fn exited_error(&self, status: ExitStatus) -> Error {
        Error::ServerExited {
            server: self.name,
            status: status.to_string(),
            log: self.log.clone(),
            log_tail: log_tail(&self.log),
        }
    }

    /// SIGTERM to the process group, SIGKILL after [`STOP_GRACE`] (at once when not graceful), then reap.
    /// Idempotent.
    pub(crate) fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if self.exit_status().is_some() {
            return;
        }
        // The child is not reaped yet, so its pid (= its process-group id) cannot have been reused.
        let group = -(self.child.id() as libc::pid_t);
        // SAFETY: plain syscall on a process group we created.
        unsafe {
            libc::kill(
                group,
                if self.graceful {
                    libc::SIGTERM
                } else {
                    libc::SIGKILL
                },
            )
        };
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if self.exit_status().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        tracing::warn!(
            server = self.name,
            pid = self.child.id(),
            "did not stop on SIGTERM; sending SIGKILL"
        );
        // SAFETY: as above; the leader is still unreaped.
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The last lines of a log file, for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    const TAIL_BYTES: u64 = 3000;
    let mut text = String::new();
    let read = File::open(path).and_then(|mut f| {
        let len = f.metadata()?.len();
        f.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes)?;
        text = String::from_utf8_lossy(&bytes).into_owned();
        Ok(())
    });
    match read {
        Ok(()) => text,
        Err(e) => format!("(could not read {}: {e})", path.display()),
    }
}

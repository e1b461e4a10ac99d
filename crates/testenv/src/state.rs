//! The control plane's state directory: where it is (kept or temp), the secrets written into it, and the
//! servers' flags that point into it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use crate::{ADMIN_USER, Error, TEMP_PREFIX, secrets};

/// The directory holding a control plane's state.
#[derive(Debug)]
pub(crate) enum StateDir {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

impl StateDir {
    pub(crate) fn path(&self) -> &Path {
        match self {
            StateDir::Temp(t) => t.path(),
            StateDir::Kept(p) => p,
        }
    }

    /// `path` created (and kept), or a fresh temp dir (removed on drop; stale ones of dead processes go first).
    pub(crate) fn prepare(path: Option<&Path>) -> Result<StateDir, Error> {
        match path {
            Some(path) => {
                std::fs::create_dir_all(path)
                    .map_err(Error::io(format!("creating state dir {}", path.display())))?;
                let path = std::fs::canonicalize(path)
                    .map_err(Error::io(format!("resolving state dir {}", path.display())))?;
                Ok(StateDir::Kept(path))
            }
            None => {
                remove_stale_temp_dirs();
                let temp = tempfile::Builder::new()
                    .prefix(&format!("{TEMP_PREFIX}{}-", std::process::id()))
                    .tempdir()
                    .map_err(Error::io("creating a temp dir for the control plane"))?;
                Ok(StateDir::Temp(temp))
            }
        }
    }
}

pub(crate) fn remove_if_present(path: &Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io(format!("removing stale {}", path.display()))(e))
        }
        _ => Ok(()),
    }
}

/// The API server's service-account key pair, the admin's token file and its certificate directory.
pub(crate) struct Secrets {
    pub sa_key: PathBuf,
    pub sa_pub: PathBuf,
    pub tokens: PathBuf,
    pub admin_token: String,
    pub cert_dir: PathBuf,
}

impl Secrets {
    pub(crate) fn write(root: &Path) -> Result<Secrets, Error> {
        let signing_key = secrets::service_account_key()?;
        let sa_key = root.join("service-account.key");
        write_private(&sa_key, &signing_key.private_pem)?;
        let sa_pub = root.join("service-account.pub");
        write_private(&sa_pub, &signing_key.public_pem)?;
        let admin_token = secrets::random_hex(24)?;
        let tokens = root.join("tokens.csv");
        write_private(
            &tokens,
            &format!("{admin_token},{ADMIN_USER},{ADMIN_USER},\"system:masters\"\n"),
        )?;
        let cert_dir = root.join("apiserver-certs");
        // The API server regenerates its self-signed serving certificate when the files are missing.
        let _ = std::fs::remove_dir_all(&cert_dir);
        Ok(Secrets {
            sa_key,
            sa_pub,
            tokens,
            admin_token,
            cert_dir,
        })
    }
}

pub(crate) fn etcd_args(etcd: &Path, root: &Path, etcd_url: &str, peer_url: &str) -> Vec<String> {
    let mut args = vec![
        "--name=default".to_string(),
        format!("--data-dir={}", root.join("etcd").display()),
        format!("--listen-client-urls={etcd_url}"),
        format!("--advertise-client-urls={etcd_url}"),
        format!("--listen-peer-urls={peer_url}"),
        format!("--initial-advertise-peer-urls={peer_url}"),
        format!("--initial-cluster=default={peer_url}"),
    ];
    if etcd_supports_no_fsync(etcd) {
        // Tests and the demo do not need durability; fsync dominates write latency.
        args.push("--unsafe-no-fsync=true".to_string());
    }
    args
}

pub(crate) fn apiserver_args(
    etcd_url: &str,
    api_port: u16,
    server_url: &str,
    secrets: &Secrets,
) -> Vec<String> {
    vec![
        format!("--etcd-servers={etcd_url}"),
        format!("--secure-port={api_port}"),
        "--bind-address=127.0.0.1".to_string(),
        "--advertise-address=127.0.0.1".to_string(),
        // The `kubernetes` Service's endpoints may not be loopback; nothing here needs them.
        "--endpoint-reconciler-type=none".to_string(),
        format!("--cert-dir={}", secrets.cert_dir.display()),
        format!("--token-auth-file={}", secrets.tokens.display()),
        "--authorization-mode=RBAC".to_string(),
        format!("--service-account-issuer={server_url}"),
        format!("--service-account-key-file={}", secrets.sa_pub.display()),
        format!(
            "--service-account-signing-key-file={}",
            secrets.sa_key.display()
        ),
        "--service-cluster-ip-range=10.0.0.0/16".to_string(),
        // Admission plugins that wait for objects a controller-manager would create.
        "--disable-admission-plugins=ServiceAccount".to_string(),
        "--allow-privileged=true".to_string(),
        "--profiling=false".to_string(),
    ]
}

/// Whether this etcd knows `--unsafe-no-fsync` (3.5+; Debian's 3.4 fallback may not). Asked once per process.
fn etcd_supports_no_fsync(etcd: &Path) -> bool {
    static SUPPORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        std::process::Command::new(etcd)
            .arg("--help")
            .output()
            .is_ok_and(|out| {
                String::from_utf8_lossy(&out.stdout).contains("unsafe-no-fsync")
                    || String::from_utf8_lossy(&out.stderr).contains("unsafe-no-fsync")
            })
    })
}

/// Distinct free loopback ports: all listeners are held until every port is picked, so none repeats.
pub(crate) fn free_ports<const N: usize>() -> Result<[u16; N], Error> {
    let mut listeners = Vec::with_capacity(N);
    let mut ports = [0u16; N];
    for port in &mut ports {
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(Error::io("finding a free port on 127.0.0.1"))?;
        *port = listener
            .local_addr()
            .map_err(Error::io("finding a free port on 127.0.0.1"))?
            .port();
        listeners.push(listener);
    }
    Ok(ports)
}

pub(crate) fn write_private(path: &Path, contents: &str) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(Error::io(format!("creating {}", path.display())))?;
    file.write_all(contents.as_bytes())
        .map_err(Error::io(format!("writing {}", path.display())))
}

/// Removes temp dirs left by test processes that were killed (their servers died with them via PDEATHSIG,
/// but nothing removed the directory).
fn remove_stale_temp_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TEMP_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest
            .split('-')
            .next()
            .and_then(|p| p.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // SAFETY: signal 0 only checks for existence.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

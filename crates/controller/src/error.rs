//! Errors of the controller library. Each names the object and what to do about it; the cause is the
//! error's `source()`, never part of its message, so that a chain printer (anyhow's `{:#}`,
//! [`error_chain`]) shows it once.

use std::error::Error as StdError;
use std::fmt;
use std::net::SocketAddr;

/// Why [`crate::Controller::run`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot serve {what} on {addr} (choose a free address with {flag})")]
    Bind {
        what: &'static str,
        flag: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What kind of failure an API error is: the `reason` label of the error and write metrics, so that a
/// dashboard tells missing RBAC from conflicts from an unreachable API server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Category {
    /// 403: the controller's RBAC does not allow the request.
    Forbidden,
    /// 409: a precondition or a concurrent change (the next reconcile sees the new state).
    Conflict,
    /// 400 or 422: the API refused the object.
    Invalid,
    /// 404 or 410.
    NotFound,
    /// No answer, 429 or a 5xx: the API server is down, overloaded or restarting.
    Unavailable,
    Other,
}

impl Category {
    pub const ALL: [Category; 6] = [
        Category::Forbidden,
        Category::Conflict,
        Category::Invalid,
        Category::NotFound,
        Category::Unavailable,
        Category::Other,
    ];

    pub fn of(error: &kube::Error) -> Category {
        match error {
            kube::Error::Api(status) => match status.code {
                403 => Category::Forbidden,
                409 => Category::Conflict,
                400 | 422 => Category::Invalid,
                404 | 410 => Category::NotFound,
                429 | 500..=599 => Category::Unavailable,
                _ => Category::Other,
            },
            kube::Error::HyperError(_) | kube::Error::Service(_) => Category::Unavailable,
            _ => Category::Other,
        }
    }

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Forbidden => "forbidden",
            Category::Conflict => "conflict",
            Category::Invalid => "invalid",
            Category::NotFound => "not_found",
            Category::Unavailable => "unavailable",
            Category::Other => "other",
        }
    }
}

/// The write (or read) the reconcile of a key attempted and the API refused or failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Apply,
    Delete,
    Lookup,
    Finalizer,
    Status,
}

/// One failed API call of a reconcile; the object is named, the cause is the source.
#[derive(Debug, thiserror::Error)]
#[error("{}", describe(*.operation, .kind, .namespace, .name))]
pub struct Failure {
    pub operation: Operation,
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    #[source]
    pub source: Box<kube::Error>,
}

fn describe(operation: Operation, kind: &str, namespace: &str, name: &str) -> String {
    let retry = "the controller retries with back-off";
    match operation {
        Operation::Create => format!(
            "create of {kind} {namespace}/{name} failed ({retry}; check its RBAC: create on {kind})"
        ),
        Operation::Apply => format!(
            "server-side apply of {kind} {namespace}/{name} failed ({retry}; check its RBAC: patch on {kind})"
        ),
        Operation::Delete => format!("delete of {kind} {namespace}/{name} failed ({retry})"),
        Operation::Lookup => format!("reading {kind} {namespace}/{name} failed ({retry})"),
        Operation::Finalizer => {
            format!("patching the finalizer of Route {namespace}/{name} failed ({retry})")
        }
        Operation::Status => {
            format!("writing the status of Route {namespace}/{name} failed ({retry})")
        }
    }
}

impl Failure {
    pub fn new(
        operation: Operation,
        kind: &'static str,
        namespace: &str,
        name: &str,
        source: kube::Error,
    ) -> Self {
        Failure {
            operation,
            kind,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            source: Box::new(source),
        }
    }

    pub fn category(&self) -> Category {
        Category::of(&self.source)
    }
}

/// The failed calls of one reconcile of a key (at least one), in the order they happened. Each was
/// logged where it happened; the key is retried with back-off.
#[derive(Debug)]
pub struct ReconcileError {
    failures: Vec<Failure>,
}

impl ReconcileError {
    /// `None` when nothing failed.
    pub(crate) fn from_failures(failures: Vec<Failure>) -> Option<Self> {
        (!failures.is_empty()).then_some(ReconcileError { failures })
    }

    /// The first failure's category.
    pub fn category(&self) -> Category {
        self.failures
            .first()
            .map_or(Category::Other, Failure::category)
    }

    pub fn failures(&self) -> &[Failure] {
        &self.failures
    }
}

impl fmt::Display for ReconcileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.failures.as_slice() {
            [one] => write!(f, "{one}"),
            [first, rest @ ..] => write!(f, "{first} and {} more call(s) failed", rest.len()),
            [] => f.write_str("no call failed"),
        }
    }
}

impl StdError for ReconcileError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.failures.first().map(|f| &*f.source as _)
    }
}

/// `error: cause: cause…`, leaving out a cause whose text the line already holds (kube's errors repeat
/// their source in their own message).
pub fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            message: format!("refused with {code}"),
            ..Default::default()
        }))
    }

    #[test]
    fn categories_follow_the_http_status() {
        let cases = [
            (403, Category::Forbidden),
            (409, Category::Conflict),
            (422, Category::Invalid),
            (400, Category::Invalid),
            (404, Category::NotFound),
            (503, Category::Unavailable),
            (429, Category::Unavailable),
            (418, Category::Other),
        ];
        for (code, category) in cases {
            assert_eq!(Category::of(&api(code)), category, "{code}");
        }
        let unreachable = kube::Error::Service("connection refused".into());
        assert_eq!(Category::of(&unreachable), Category::Unavailable);
    }

    #[test]
    fn the_cause_is_printed_once() {
        let failure = Failure::new(Operation::Apply, "Service", "ns", "s-1", api(403));
        let message = failure.to_string();
        assert!(!message.contains("refused with 403"), "{message}");
        // kube's own message repeats its status; what matters is that it comes once.
        let cause = api(403).to_string();
        let chain = error_chain(&failure);
        assert_eq!(chain.matches(&cause).count(), 1, "{chain}");
        assert!(
            chain.starts_with("server-side apply of Service ns/s-1 failed"),
            "{chain}"
        );
        let error = ReconcileError::from_failures(vec![failure]).unwrap();
        assert_eq!(error.category(), Category::Forbidden);
        assert_eq!(error_chain(&error).matches(&cause).count(), 1);
    }

    #[test]
    fn the_error_chain_names_the_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("client error (Connect)")
            }
        }
        impl StdError for Outer {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        assert_eq!(
            error_chain(&Outer(io)),
            "client error (Connect): Connection refused"
        );
    }
}

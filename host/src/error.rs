//! Errors of the host API: a lock error reported by the component (pip-services category and
//! code), or a failure of the wasm runtime itself.

use std::fmt;

use crate::bindings;

/// pip-services `ErrorCategory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCategory {
    Unknown,
    Internal,
    Misconfiguration,
    NoResponse,
    FailedInvocation,
    BadRequest,
    InvalidState,
    Conflict,
    Unsupported,
    Unauthorized,
}

impl ErrorCategory {
    /// The pip-services spelling (`ErrorCategory.Conflict` is `"Conflict"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCategory::Unknown => "Unknown",
            ErrorCategory::Internal => "Internal",
            ErrorCategory::Misconfiguration => "Misconfiguration",
            ErrorCategory::NoResponse => "NoResponse",
            ErrorCategory::FailedInvocation => "FailedInvocation",
            ErrorCategory::BadRequest => "BadRequest",
            ErrorCategory::InvalidState => "InvalidState",
            ErrorCategory::Conflict => "Conflict",
            ErrorCategory::Unsupported => "Unsupported",
            ErrorCategory::Unauthorized => "Unauthorized",
        }
    }
}

/// pip-services error codes, as the component reports them (README "Errors" says when): the
/// component's own list, so host and component cannot disagree. `as_str` gives the pip-services
/// spelling (`ErrorCode::LockTimeout` is `"LOCK_TIMEOUT"`).
pub use memlock_guest::Code as ErrorCode;

/// The WIT enum as the component's list.
fn code_from_wit(code: bindings::ErrorCode) -> ErrorCode {
    use bindings::ErrorCode as W;
    match code {
        W::InvalidConfig => ErrorCode::InvalidConfig,
        W::NoConnection => ErrorCode::NoConnection,
        W::CannotResolve => ErrorCode::CannotResolve,
        W::NotOpened => ErrorCode::NotOpened,
        W::InvalidKey => ErrorCode::InvalidKey,
        W::InvalidTtl => ErrorCode::InvalidTtl,
        W::InvalidLease => ErrorCode::InvalidLease,
        W::LockTimeout => ErrorCode::LockTimeout,
        W::LockLost => ErrorCode::LockLost,
        W::Unsupported => ErrorCode::Unsupported,
        W::ConnectFailed => ErrorCode::ConnectFailed,
        W::Timeout => ErrorCode::Timeout,
        W::ServerDown => ErrorCode::ServerDown,
        W::ProtocolError => ErrorCode::Protocol,
        W::ServerError => ErrorCode::ServerError,
        W::ClientError => ErrorCode::ClientError,
        W::Cancelled => ErrorCode::Cancelled,
        W::Unauthorized => ErrorCode::Unauthorized,
        W::TlsFailed => ErrorCode::TlsFailed,
        W::NoQuorum => ErrorCode::NoQuorum,
    }
}

/// A failure reported by the lock (see README "Errors" for every code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockError {
    pub category: ErrorCategory,
    pub code: ErrorCode,
    pub message: String,
    pub correlation_id: Option<String>,
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl From<bindings::LockError> for LockError {
    fn from(e: bindings::LockError) -> Self {
        use bindings::ErrorCategory as W;
        let category = match e.category {
            W::Unknown => ErrorCategory::Unknown,
            W::Internal => ErrorCategory::Internal,
            W::Misconfiguration => ErrorCategory::Misconfiguration,
            W::NoResponse => ErrorCategory::NoResponse,
            W::FailedInvocation => ErrorCategory::FailedInvocation,
            W::BadRequest => ErrorCategory::BadRequest,
            W::InvalidState => ErrorCategory::InvalidState,
            W::Conflict => ErrorCategory::Conflict,
            W::Unsupported => ErrorCategory::Unsupported,
            W::Unauthorized => ErrorCategory::Unauthorized,
        };
        LockError {
            category,
            code: code_from_wit(e.code),
            message: e.message,
            correlation_id: e.correlation_id,
        }
    }
}

/// Everything the host API can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The lock refused or failed the operation.
    #[error("{0}")]
    Lock(LockError),
    /// The component could not be compiled, instantiated or run (a trap, or an instance left
    /// unusable by an interrupted call).
    #[error("memlock component runtime: {0:#}")]
    Runtime(wasmtime::Error),
}

impl Error {
    pub(crate) fn runtime(e: impl Into<wasmtime::Error>) -> Self {
        Error::Runtime(e.into())
    }

    /// The pip-services code of a lock error; `None` for runtime failures.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Lock(e) => Some(e.code),
            Error::Runtime(_) => None,
        }
    }

    pub fn category(&self) -> ErrorCategory {
        match self {
            Error::Lock(e) => e.category,
            Error::Runtime(_) => ErrorCategory::Internal,
        }
    }
}

impl From<bindings::LockError> for Error {
    fn from(e: bindings::LockError) -> Self {
        Error::Lock(e.into())
    }
}

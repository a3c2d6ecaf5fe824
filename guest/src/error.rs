//! Errors of the lock, shaped like pip-services `ApplicationException`s.
//!
//! Callers of the seed branch on the category and code (`LOCK_TIMEOUT`, `NOT_OPENED`, ...), so those
//! are part of the contract; the message is for people. Every error carries one [`Code`] from the
//! list below, and README.md's Errors table lists them all.

use crate::prelude::*;

use core::fmt;

/// pip-services `ErrorCategory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
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

/// The error codes this crate produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// A config value is missing, malformed or out of range.
    InvalidConfig,
    /// No connection is configured (or discovery resolved none).
    NoConnection,
    /// `connection.discovery_key` is set but no discovery reference was given, or discovery failed.
    CannotResolve,
    /// The operation needs `open` first.
    NotOpened,
    /// A key is empty or too long.
    InvalidKey,
    /// A ttl or timeout is zero, negative or too large.
    InvalidTtl,
    /// A lease handle or lease does not belong to this configuration.
    InvalidLease,
    /// Blocking acquire ran out of time.
    LockTimeout,
    /// The lease is no longer held: expired, evicted, released, taken over, or its server restarted.
    LockLost,
    /// The server cannot support the lock (CAS disabled with `-C`).
    Unsupported,
    /// Could not connect, or the connection failed.
    ConnectFailed,
    /// The server did not answer within `options.timeout`.
    Timeout,
    /// The server is marked down after `options.failures` failures.
    ServerDown,
    /// The server answered something that is not memcached's protocol.
    Protocol,
    /// The server answered `SERVER_ERROR` (out of memory, ...): not acquired.
    ServerError,
    /// The server refused our command (`CLIENT_ERROR`): a bug or an incompatible server.
    ClientError,
    /// The host cancelled a blocking acquire while it waited (its caller gave up).
    Cancelled,
    /// The server requires authentication and the configured credentials are missing or wrong.
    Unauthorized,
    /// The TLS handshake failed: the server's certificate did not verify, the server does not
    /// speak TLS, a certificate file cannot be read, or the host has no TLS.
    TlsFailed,
    /// Quorum mode: too few servers answered, or counted (a process younger than
    /// `options.max_lease`), for a majority.
    NoQuorum,
}

impl Code {
    /// The pip-services code string.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidConfig => "INVALID_CONFIG",
            Code::NoConnection => "NO_CONNECTION",
            Code::CannotResolve => "CANNOT_RESOLVE",
            Code::NotOpened => "NOT_OPENED",
            Code::InvalidKey => "INVALID_KEY",
            Code::InvalidTtl => "INVALID_TTL",
            Code::InvalidLease => "INVALID_LEASE",
            Code::LockTimeout => "LOCK_TIMEOUT",
            Code::LockLost => "LOCK_LOST",
            Code::Unsupported => "UNSUPPORTED",
            Code::ConnectFailed => "CONNECT_FAILED",
            Code::Timeout => "TIMEOUT",
            Code::ServerDown => "SERVER_DOWN",
            Code::Protocol => "PROTOCOL_ERROR",
            Code::ServerError => "SERVER_ERROR",
            Code::ClientError => "CLIENT_ERROR",
            Code::Cancelled => "CANCELLED",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::TlsFailed => "TLS_FAILED",
            Code::NoQuorum => "NO_QUORUM",
        }
    }

    /// The category pip-services gives this kind of failure.
    pub fn category(self) -> Category {
        match self {
            Code::InvalidConfig | Code::NoConnection | Code::CannotResolve => {
                Category::Misconfiguration
            }
            Code::NotOpened | Code::Cancelled => Category::InvalidState,
            Code::InvalidKey | Code::InvalidTtl | Code::InvalidLease => Category::BadRequest,
            Code::LockTimeout | Code::LockLost => Category::Conflict,
            Code::Unsupported => Category::Unsupported,
            Code::ConnectFailed
            | Code::Timeout
            | Code::ServerDown
            | Code::TlsFailed
            | Code::NoQuorum => Category::NoResponse,
            Code::Unauthorized => Category::Unauthorized,
            Code::Protocol | Code::ServerError | Code::ClientError => Category::FailedInvocation,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure of a lock operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockError {
    pub code: Code,
    pub message: String,
    pub correlation_id: Option<String>,
}

impl LockError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        LockError {
            code,
            message: message.into(),
            correlation_id: None,
        }
    }

    pub fn category(&self) -> Category {
        self.code.category()
    }

    /// Attaches the caller's correlation id (kept if one is already set).
    pub fn with_correlation(mut self, correlation_id: Option<&str>) -> Self {
        if self.correlation_id.is_none() {
            self.correlation_id = correlation_id.map(str::to_owned);
        }
        self
    }

    pub fn config(key: &str, problem: impl fmt::Display) -> Self {
        LockError::new(Code::InvalidConfig, format!("config key {key}: {problem}"))
    }
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)?;
        if let Some(id) = &self.correlation_id {
            write!(f, " (correlation id {id})")?;
        }
        Ok(())
    }
}

impl core::error::Error for LockError {}

pub type Result<T, E = LockError> = core::result::Result<T, E>;

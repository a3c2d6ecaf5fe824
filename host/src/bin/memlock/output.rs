//! What the CLI prints and how it exits.
//!
//! Human mode: the lease handle alone on stdout (so `LEASE=$(memlock acquire job)` works), a
//! sentence on stderr. `--json`: one JSON object on stdout for every outcome, errors included.

use std::process::ExitCode;

use memlock_host::{Error, ErrorCategory, ErrorCode, Lease};
use serde_json::json;

/// Documented exit codes (README "CLI").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Acquired, released, done.
    Ok,
    /// `try-acquire`: someone else holds the key. `release`/`extend`: the lease was no longer held.
    Busy,
    // 2 is clap's usage error.
    /// `acquire`: the timeout passed (`LOCK_TIMEOUT`).
    Timeout,
    /// Invalid configuration, key, ttl or lease handle.
    Invalid,
    /// memcached unreachable, stalled, or answering garbage.
    Unavailable,
    /// A failure of memlock itself.
    Internal,
    /// `run`: the lease was lost while the command ran; the command was stopped.
    LeaseLost,
    /// `run`: the command cannot be executed.
    CannotExecute,
    /// `run`: the command was not found.
    NotFound,
    /// `run`: the command's own exit status (128 + N if killed by signal N).
    Code(u8),
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Busy => 1,
            Exit::Timeout => 3,
            Exit::Invalid => 4,
            Exit::Unavailable => 5,
            Exit::Internal => 6,
            Exit::LeaseLost => 7,
            Exit::CannotExecute => 126,
            Exit::NotFound => 127,
            Exit::Code(code) => code,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e.code())
    }
}

pub struct Output {
    pub json: bool,
}

fn secs(d: std::time::Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

impl Output {
    pub fn extended(&self, lease: &Lease) -> Exit {
        if self.json {
            println!(
                "{}",
                json!({
                    "status": "extended",
                    "key": lease.key_text(),
                    "lease": lease.handle(),
                    "fencing_token": lease.fencing_token.to_string(),
                    "valid_for_ms": lease.remaining().as_millis() as u64,
                })
            );
        } else {
            println!("{}", lease.handle());
            eprintln!(
                "extended {:?}: valid for {}",
                lease.key_text(),
                secs(lease.remaining())
            );
        }
        Exit::Ok
    }

    pub fn acquired(&self, lease: &Lease, waited: std::time::Duration) -> Exit {
        if self.json {
            println!(
                "{}",
                json!({
                    "status": "acquired",
                    "key": lease.key_text(),
                    "lease": lease.handle(),
                    "owner_token": lease.owner_token.to_string(),
                    "cas": lease.cas,
                    "server_process": lease.server_process.to_string(),
                    "fencing_token": lease.fencing_token.to_string(),
                    "ttl_ms": lease.ttl.as_millis() as u64,
                    "valid_for_ms": lease.remaining().as_millis() as u64,
                    "waited_ms": waited.as_millis() as u64,
                })
            );
        } else {
            println!("{}", lease.handle());
            eprintln!(
                "acquired {:?} for {} (valid for {}, waited {}, fencing token {})",
                lease.key_text(),
                secs(lease.ttl),
                secs(lease.remaining()),
                secs(waited),
                lease.fencing_token
            );
        }
        Exit::Ok
    }

    pub fn busy(&self, key: &str) -> Exit {
        if self.json {
            println!("{}", json!({ "status": "busy", "key": key }));
        } else {
            eprintln!("{key:?} is held by another owner");
        }
        Exit::Busy
    }

    pub fn released(&self, lease: &Lease, deleted: bool) -> Exit {
        let key = lease.key_text();
        if self.json {
            println!(
                "{}",
                json!({ "status": if deleted { "released" } else { "not_held" }, "key": key })
            );
        } else if deleted {
            eprintln!("released {key:?}");
        } else {
            eprintln!(
                "{key:?} was not held by this lease any more (expired, released, or taken over); nothing deleted"
            );
        }
        if deleted { Exit::Ok } else { Exit::Busy }
    }

    pub fn error(&self, error: &Error) -> Exit {
        let exit = match error {
            Error::Lock(e) if e.code == ErrorCode::LockTimeout => Exit::Timeout,
            Error::Lock(e) if e.code == ErrorCode::LockLost => Exit::Busy,
            Error::Lock(e) => match e.category {
                // Refused credentials are the configuration's to fix, like a bad value.
                ErrorCategory::BadRequest
                | ErrorCategory::Misconfiguration
                | ErrorCategory::Unauthorized => Exit::Invalid,
                ErrorCategory::NoResponse | ErrorCategory::FailedInvocation => Exit::Unavailable,
                _ => Exit::Internal,
            },
            Error::Runtime(_) => Exit::Internal,
        };
        if self.json {
            let (category, code, message) = match error {
                Error::Lock(e) => (e.category.as_str(), e.code.as_str(), e.message.clone()),
                Error::Runtime(_) => ("Internal", "RUNTIME", error.to_string()),
            };
            println!(
                "{}",
                json!({ "status": "error", "category": category, "code": code, "message": message, "exit": exit.code() })
            );
        } else {
            eprintln!("memlock: {error}");
        }
        exit
    }

    /// A failure before the lock was reached (unreadable config file, bad handle, bad flag).
    pub fn invalid(&self, message: &str) -> Exit {
        if self.json {
            println!(
                "{}",
                json!({ "status": "error", "category": "BadRequest", "code": "INVALID_INPUT", "message": message, "exit": Exit::Invalid.code() })
            );
        } else {
            eprintln!("memlock: {message}");
        }
        Exit::Invalid
    }
}

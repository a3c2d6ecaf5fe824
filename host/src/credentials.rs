//! pip-services credential stores on the host side: resolves `credential.store_key` for the
//! component's `credentials` import.

use std::collections::HashMap;
use std::fmt;

/// A credential's ConfigParams (`username`, `password`, ...).
pub use memlock_guest::driver::ConnectionParams as CredentialParams;

/// pip-services `ICredentialStore.lookup`.
pub trait CredentialStore: Send + Sync + 'static {
    /// The credential stored under `key`; `None` when the store does not know it.
    fn lookup(
        &self,
        correlation_id: Option<&str>,
        key: &str,
    ) -> Result<Option<CredentialParams>, String>;
}

/// Credentials from a fixed table (pip-services `MemoryCredentialStore`).
#[derive(Clone, Default)]
pub struct MemoryCredentialStore {
    entries: HashMap<String, CredentialParams>,
}

/// Names the stored keys, never their values (a password is among them).
impl fmt::Debug for MemoryCredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCredentialStore")
            .field("keys", &self.entries.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl MemoryCredentialStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores a user name and password under `key`.
    pub fn store(&mut self, key: impl Into<String>, username: &str, password: &str) -> &mut Self {
        self.entries.insert(
            key.into(),
            vec![
                ("username".to_owned(), username.to_owned()),
                ("password".to_owned(), password.to_owned()),
            ],
        );
        self
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl CredentialStore for MemoryCredentialStore {
    fn lookup(
        &self,
        _correlation_id: Option<&str>,
        key: &str,
    ) -> Result<Option<CredentialParams>, String> {
        Ok(self.entries.get(key).cloned())
    }
}

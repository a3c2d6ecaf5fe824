//! pip-services discovery on the host side: resolves `connection.discovery_key` for the
//! component's `discovery` import.

use std::collections::HashMap;

/// One connection's ConfigParams (`host`, `port`, `uri`): the component's own type.
pub use memlock_guest::driver::ConnectionParams;

/// pip-services `IDiscovery.resolveAll`.
pub trait Discovery: Send + Sync + 'static {
    fn resolve_all(
        &self,
        correlation_id: Option<&str>,
        key: &str,
    ) -> Result<Vec<ConnectionParams>, String>;
}

/// Discovery from a fixed table (pip-services `MemoryDiscovery`): `key -> connections`.
#[derive(Debug, Clone, Default)]
pub struct MemoryDiscovery {
    entries: HashMap<String, Vec<ConnectionParams>>,
}

impl MemoryDiscovery {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a connection for `key`.
    pub fn register(&mut self, key: impl Into<String>, params: ConnectionParams) -> &mut Self {
        self.entries.entry(key.into()).or_default().push(params);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Discovery for MemoryDiscovery {
    fn resolve_all(
        &self,
        _correlation_id: Option<&str>,
        key: &str,
    ) -> Result<Vec<ConnectionParams>, String> {
        Ok(self.entries.get(key).cloned().unwrap_or_default())
    }
}

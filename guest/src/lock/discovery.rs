//! Where the servers are: the configured connections, with `connection.discovery_key` resolved
//! through the host's pip-services discovery.

use crate::prelude::*;

use super::MemcachedLock;
use crate::config::{ConnectionSpec, Endpoint};
use crate::driver::Host;
use crate::error::{Code, LockError, Result};

impl<H: Host> MemcachedLock<H> {
    pub(super) fn resolve(&self, correlation_id: Option<&str>) -> Result<Vec<Endpoint>> {
        let mut endpoints = Vec::new();
        for spec in &self.config.connections {
            match spec {
                ConnectionSpec::Endpoint(e) => endpoints.push(e.clone()),
                ConnectionSpec::Discovery {
                    key,
                    params: inherited,
                } => {
                    if !self.discovery_referenced {
                        return Err(LockError::new(
                            Code::CannotResolve,
                            format!(
                                "connection.discovery_key \"{key}\" is set but no discovery service is referenced"
                            ),
                        ));
                    }
                    let resolved = self.host.resolve_all(correlation_id, key).map_err(|msg| {
                        LockError::new(
                            Code::CannotResolve,
                            format!("discovery of \"{key}\" failed: {msg}"),
                        )
                    })?;
                    for params in resolved {
                        // The discovered location; protocol and credentials as configured: a
                        // discovered value cannot turn TLS off or change whose credentials go
                        // where.
                        let mut params: crate::small_map::SmallMap<&str, &str> = params
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_str()))
                            .collect();
                        for (k, v) in inherited {
                            params.insert(k.as_str(), v.as_str());
                        }
                        let prefix = format!("discovery \"{key}\"");
                        match crate::config::connection_spec(&prefix, &params)? {
                            ConnectionSpec::Endpoint(e) => endpoints.push(e),
                            ConnectionSpec::Discovery { .. } => {
                                return Err(LockError::config(
                                    &prefix,
                                    "discovery resolved to another discovery key",
                                ));
                            }
                        }
                    }
                }
            }
        }
        if endpoints.is_empty() {
            return Err(LockError::new(
                Code::NoConnection,
                "Connection is not configured",
            ));
        }
        Ok(endpoints)
    }
}

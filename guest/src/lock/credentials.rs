//! Who the lock is to each server: `credential.store_key` resolved through the host's
//! pip-services credential store, once per key per `open`.

use crate::prelude::*;

use super::MemcachedLock;
use crate::config::Endpoint;
use crate::driver::Host;
use crate::error::{Code, LockError, Result};
use crate::security::{Credential, from_store};

impl<H: Host> MemcachedLock<H> {
    #[inline(never)]
    pub(super) fn resolve_credentials(
        &self,
        correlation_id: Option<&str>,
        mut endpoints: Vec<Endpoint>,
    ) -> Result<Vec<Endpoint>> {
        let mut resolved: Vec<(String, Credential)> = Vec::new();
        for endpoint in &mut endpoints {
            let Credential::StoreKey(key) = &endpoint.security.credential else {
                continue;
            };
            if let Some((_, credential)) = resolved.iter().find(|(k, _)| k == key) {
                endpoint.security.credential = credential.clone();
                continue;
            }
            if !self.credential_store_referenced {
                return Err(LockError::new(
                    Code::CannotResolve,
                    format!(
                        "credential.store_key \"{key}\" is set but no credential store is referenced"
                    ),
                ));
            }
            let found = self
                .host
                .lookup_credential(correlation_id, key)
                .map_err(|msg| {
                    LockError::new(
                        Code::CannotResolve,
                        format!("credential store lookup of \"{key}\" failed: {msg}"),
                    )
                })?
                .ok_or_else(|| {
                    LockError::new(
                        Code::CannotResolve,
                        format!("the credential store has no credential \"{key}\""),
                    )
                })?;
            let credential = from_store(key, &found)?;
            resolved.push((key.clone(), credential.clone()));
            endpoint.security.credential = credential;
        }
        Ok(endpoints)
    }
}

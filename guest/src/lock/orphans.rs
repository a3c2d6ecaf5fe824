//! Acquires whose outcome is unknown: a stalled server may still apply them after we stopped
//! waiting. Their owner tokens are remembered and the items deleted, owner-checked, before the
//! next operation on that server (they expire with their ttl anyway).

use super::MemcachedLock;
use crate::driver::{Host, ms_to_ns};
use crate::key::LockKey;
use crate::lease::OwnerToken;
use crate::ttl::Ttl;

/// Orphans remembered at most; older ones expire on the server by their ttl anyway.
const MAX_ORPHANS: usize = 64;

/// An acquire that may have been stored after we stopped waiting for its reply.
pub(super) struct Orphan {
    key: LockKey,
    token: OwnerToken,
    /// Index of the server it was sent to.
    pub(super) server: usize,
    expires_ns: u64,
}

impl<H: Host> MemcachedLock<H> {
    pub(super) fn remember_orphan(
        &mut self,
        key: LockKey,
        token: OwnerToken,
        server: usize,
        sent_at: u64,
        ttl: Ttl,
    ) {
        if self.orphans.len() >= MAX_ORPHANS {
            self.orphans.remove(0);
        }
        let expires_ns = sent_at.saturating_add(ms_to_ns(u64::from(ttl.wire_secs()) * 1000));
        self.orphans.push(Orphan {
            key,
            token,
            server,
            expires_ns,
        });
    }

    /// Deletes, owner-checked, the orphans on server `index` that have not expired yet.
    pub(super) fn clean_orphans(&mut self, index: usize) {
        if self.orphans.is_empty() {
            return;
        }
        let now = self.host.now_ns();
        let pending = core::mem::take(&mut self.orphans);
        for orphan in pending {
            if orphan.expires_ns <= now {
                continue;
            }
            if orphan.server != index
                || self
                    .delete_if_token(index, &orphan.key, &orphan.token)
                    .is_err()
            {
                self.orphans.push(orphan);
            }
        }
    }
}

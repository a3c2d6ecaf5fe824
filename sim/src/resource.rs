//! The guarded resource of the simulated world: it remembers, per key, the largest fencing token
//! it accepted and rejects writes that carry a smaller one. This is how a stale holder — paused
//! past its lease, or holding a lease whose item was evicted — is stopped by the resource itself.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

#[derive(Clone, Default)]
pub struct GuardedResource(Rc<RefCell<BTreeMap<String, u128>>>);

impl GuardedResource {
    /// Accepts the write if `fence` is at least the largest accepted so far for `key`.
    pub fn write(&self, key: &str, fence: u128) -> bool {
        let mut highest = self.0.borrow_mut();
        let entry = highest.entry(key.to_string()).or_insert(0);
        if fence >= *entry {
            *entry = fence;
            true
        } else {
            false
        }
    }
}

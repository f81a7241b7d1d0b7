//! What frps knows about all clients at once: live control sessions by run id, the proxy
//! names in use (unique across clients, as frp's `proxy.Manager`) and the port allocator.
//! One owner with methods; the locks are never held across an `.await`.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use control::TokenAuth;
use proxies::ports::PortManager;

use crate::proxy::group::Groups;
use crate::session::ControlHandle;
use crate::settings::ServerSettings;

/// The server-wide registry.
pub(crate) struct Registry {
    controls: Mutex<HashMap<String, ControlHandle>>,
    proxy_names: Mutex<HashSet<String>>,
    ports: Mutex<PortManager>,
    groups: Groups,
    verifier: TokenAuth,
}

impl Registry {
    pub(crate) fn new(settings: &ServerSettings) -> Self {
        Self {
            controls: Mutex::new(HashMap::new()),
            proxy_names: Mutex::new(HashSet::new()),
            ports: Mutex::new(crate::settings_map::port_manager(settings)),
            groups: Groups::default(),
            verifier: settings.auth.clone(),
        }
    }

    /// The token verifier for logins, pings and work connections.
    pub(crate) fn verifier(&self) -> &TokenAuth {
        &self.verifier
    }

    /// Registers a session; returns the one it replaces (same run id), which must be closed.
    pub(crate) fn insert_control(&self, handle: ControlHandle) -> Option<ControlHandle> {
        lock(&self.controls).insert(handle.run_id().to_string(), handle)
    }

    /// Removes a session if it is still the registered one for its run id.
    pub(crate) fn remove_control(&self, handle: &ControlHandle) {
        let mut controls = lock(&self.controls);
        if controls
            .get(handle.run_id())
            .is_some_and(|h| h.same(handle))
        {
            controls.remove(handle.run_id());
        }
    }

    /// The live session of a run id.
    pub(crate) fn control(&self, run_id: &str) -> Option<ControlHandle> {
        lock(&self.controls).get(run_id).cloned()
    }

    /// How many clients are logged in.
    pub(crate) fn client_count(&self) -> usize {
        lock(&self.controls).len()
    }

    /// Work connections waiting in every client's pool.
    pub(crate) fn pooled_work_conns(&self) -> usize {
        lock(&self.controls)
            .values()
            .map(ControlHandle::pooled)
            .sum()
    }

    /// The proxy names in use, sorted.
    pub(crate) fn proxy_names(&self) -> Vec<String> {
        let mut names: Vec<String> = lock(&self.proxy_names).iter().cloned().collect();
        names.sort();
        names
    }

    /// Asks every session to end (server shutdown).
    pub(crate) fn close_all(&self) {
        for h in lock(&self.controls).values() {
            h.close();
        }
    }

    /// Claims a proxy name; false if another proxy holds it.
    pub(crate) fn claim_proxy_name(&self, name: &str) -> bool {
        lock(&self.proxy_names).insert(name.to_string())
    }

    /// Frees a proxy name.
    pub(crate) fn release_proxy_name(&self, name: &str) {
        lock(&self.proxy_names).remove(name);
    }

    /// The tcp load-balancing groups.
    pub(crate) fn groups(&self) -> &Groups {
        &self.groups
    }

    /// Runs `f` with the port allocator.
    pub(crate) fn with_ports<T>(&self, f: impl FnOnce(&mut PortManager) -> T) -> T {
        f(&mut lock(&self.ports))
    }
}

/// Locks a mutex, recovering from poisoning: every critical section here leaves the data
/// consistent, so a panic elsewhere must not take the registry down with it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

//! Load-balancing groups for tcp proxies (`loadBalancer.group` / `groupKey`; frp v0.65.0
//! `server/group/tcp.go`): proxies of one group, from any clients, share one listener on one
//! port. The first member binds the port and sets the group key; later members must present
//! the same key and `remotePort`; the port is released when the last member leaves.
//!
//! Spreading: frp hands each connection to whichever member's accept loop wins a channel
//! receive (random). We pick the member with the fewest active connections, breaking ties in
//! rotation, so load evens out even when connections differ in length. A member leaving takes
//! only its own connections with it; the others' keep running.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use control::wire_error;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::tcp::ConnOptions;
use super::ProxyError;
use crate::session::ControlHandle;

static NEXT_MEMBER: AtomicU64 = AtomicU64::new(1);

/// One proxy in a group.
#[derive(Clone)]
pub(crate) struct Member {
    pub(crate) id: u64,
    pub(crate) ctl: ControlHandle,
    pub(crate) opts: ConnOptions,
    /// The member proxy's own cancellation: ends its connections when it leaves.
    pub(crate) cancel: CancellationToken,
}

impl Member {
    pub(crate) fn new(ctl: ControlHandle, opts: ConnOptions, cancel: CancellationToken) -> Self {
        Self {
            id: NEXT_MEMBER.fetch_add(1, Ordering::Relaxed),
            ctl,
            opts,
            cancel,
        }
    }

    fn active(&self) -> usize {
        self.opts.active.load(Ordering::Relaxed)
    }
}

struct Group {
    key: String,
    requested_port: u16,
    port: u16,
    members: Vec<Member>,
    next: usize,
    /// Stops the group's listener task.
    listener: CancellationToken,
    /// The listener task, awaited when the group closes.
    task: Option<JoinHandle<()>>,
}

/// Outcome of [`Groups::join`].
pub(crate) enum Join {
    /// Added to an existing group listening on this port.
    Joined(u16),
    /// No such group: the caller binds a port and calls [`Groups::create`].
    Absent,
}

/// All groups of the server.
#[derive(Default)]
pub(crate) struct Groups {
    inner: Mutex<HashMap<String, Group>>,
}

impl Groups {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Group>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Joins `name` if it exists, checking key and port as frp does.
    pub(crate) fn join(
        &self,
        name: &str,
        key: &str,
        requested_port: u16,
        member: Member,
    ) -> Result<Join, ProxyError> {
        let mut groups = self.lock();
        let Some(g) = groups.get_mut(name) else {
            return Ok(Join::Absent);
        };
        if g.requested_port != requested_port {
            return Err(ProxyError::Group(wire_error::GROUP_DIFFERENT_PORT));
        }
        if g.key != key {
            return Err(ProxyError::Group(wire_error::GROUP_AUTH_FAILED));
        }
        g.members.push(member);
        Ok(Join::Joined(g.port))
    }

    /// Creates `name` with its first member, listening on `port`. Returns false (and changes
    /// nothing) if another member created the group meanwhile: the caller releases its port and
    /// joins instead.
    pub(crate) fn create(
        &self,
        name: &str,
        key: &str,
        requested_port: u16,
        port: u16,
        member: Member,
        listener: CancellationToken,
    ) -> bool {
        let mut groups = self.lock();
        if groups.contains_key(name) {
            return false;
        }
        groups.insert(
            name.to_string(),
            Group {
                key: key.to_string(),
                requested_port,
                port,
                members: vec![member],
                next: 0,
                listener,
                task: None,
            },
        );
        true
    }

    /// Records the listener task of a group just created.
    pub(crate) fn attach_task(&self, name: &str, task: JoinHandle<()>) {
        if let Some(g) = self.lock().get_mut(name) {
            g.task = Some(task);
        }
    }

    /// Removes a member; when it was the last, stops the listener and returns the port to
    /// release and the listener task to await.
    pub(crate) fn leave(
        &self,
        name: &str,
        member_id: u64,
    ) -> Option<(u16, Option<JoinHandle<()>>)> {
        let mut groups = self.lock();
        let g = groups.get_mut(name)?;
        g.members.retain(|m| m.id != member_id);
        if !g.members.is_empty() {
            return None;
        }
        let g = groups.remove(name)?;
        g.listener.cancel();
        Some((g.port, g.task))
    }

    /// The member that should take the next connection: fewest active connections, ties in
    /// rotation.
    pub(crate) fn pick(&self, name: &str) -> Option<Member> {
        let mut groups = self.lock();
        let g = groups.get_mut(name)?;
        let n = g.members.len();
        if n == 0 {
            return None;
        }
        let actives: Vec<usize> = g.members.iter().map(Member::active).collect();
        let best = pick_index(&actives, g.next)?;
        g.next = best + 1;
        Some(g.members[best].clone())
    }

    /// Member count of a group (tests, metrics).
    #[allow(dead_code)]
    pub(crate) fn members(&self, name: &str) -> usize {
        self.lock().get(name).map_or(0, |g| g.members.len())
    }

    /// Member count of every group, sorted by group name (server stats).
    pub(crate) fn member_counts(&self) -> Vec<(String, usize)> {
        let mut counts: Vec<(String, usize)> = self
            .lock()
            .iter()
            .map(|(name, g)| (name.clone(), g.members.len()))
            .collect();
        counts.sort();
        counts
    }
}

/// Index of the least busy member, scanning from `start` (mod len) so ties rotate.
fn pick_index(actives: &[usize], start: usize) -> Option<usize> {
    let n = actives.len();
    if n == 0 {
        return None;
    }
    (0..n).map(|i| (start + i) % n).min_by_key(|&i| actives[i])
}

/// Counts a proxy's open user connections while alive.
pub(crate) struct ActiveGuard(Arc<AtomicUsize>);

impl ActiveGuard {
    pub(crate) fn new(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter.clone())
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::pick_index;

    #[test]
    fn least_busy_wins_and_ties_rotate() {
        assert_eq!(pick_index(&[], 0), None);
        assert_eq!(pick_index(&[3, 1, 2], 0), Some(1));
        // All idle: successive picks (start = previous + 1) visit every member in turn.
        let mut next = 0;
        let mut seen = Vec::new();
        for _ in 0..6 {
            let i = pick_index(&[0, 0, 0], next).expect("member");
            seen.push(i);
            next = i + 1;
        }
        assert_eq!(seen, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn busy_member_is_skipped_until_others_catch_up() {
        // Simulate 9 long connections arriving at 3 members, one already holding 3.
        let mut actives = [3usize, 0, 0];
        let mut next = 0;
        for _ in 0..9 {
            let i = pick_index(&actives, next).expect("member");
            actives[i] += 1;
            next = i + 1;
        }
        assert_eq!(actives, [4, 4, 4]);
    }
}

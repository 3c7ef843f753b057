//! How entries leave: evicting to budget, reclaiming expired entries, removals the caller
//! asks for, and telling listeners, statistics and events once each entry is out.

use super::*;

impl<K, V, S> Engine<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    /// Takes the entry out of `idx` and the table. The caller tells the policy.
    pub(super) fn remove_slot(&self, data: &mut ShardData<K, V>, idx: u32) -> (K, V, u64) {
        let Some(e) = data.slots[idx as usize].take() else {
            unreachable!("slot {idx} is in the table but empty")
        };
        let hash = self.hasher.hash_one(&e.key);
        if let Ok(entry) = data.table.find_entry(hash, |&i| i == idx) {
            entry.remove();
        }
        data.free.push(idx);
        data.len -= 1;
        let w = u64::from(e.weight.get());
        data.weight -= w;
        (e.key, e.value, w)
    }

    /// Evicts until the shard is within budget. `now` is only used for entries with a deadline,
    /// which cannot exist unless the caller read the clock.
    pub(super) fn evict_to_budget(
        &self,
        data: &mut ShardData<K, V>,
        now: Timestamp,
        removed: &mut Removed<K, V>,
    ) {
        while data.weight > data.max_weight {
            let victim = {
                let mut view = View { slots: &data.slots, hasher: &self.hasher };
                data.policy.evict(&mut view)
            };
            let Some(idx) = victim else { break };
            if data.slots.get(idx as usize).is_none_or(Option::is_none) {
                continue; // a policy bug; never loop on it forever
            }
            let d = data.slots[idx as usize].as_ref().map_or(NEVER, Entry::deadline);
            let (k, v, w) = self.remove_slot(data, idx);
            // A victim that had already expired is reported as such.
            let cause =
                if d != NEVER && now >= d { RemovalCause::Expired } else { RemovalCause::Capacity };
            removed.push(k, v, cause, w);
        }
    }

    pub(super) fn sweep(
        &self,
        data: &mut ShardData<K, V>,
        budget: usize,
        removed: &mut Removed<K, V>,
    ) {
        if self.has_deadlines.load(Relaxed) {
            let now = self.clock.now();
            self.sweep_at(data, budget, now, removed);
        }
    }

    /// Looks at up to `budget` slots from the sweep hand and reclaims the expired ones.
    pub(super) fn sweep_at(
        &self,
        data: &mut ShardData<K, V>,
        budget: usize,
        now: Timestamp,
        removed: &mut Removed<K, V>,
    ) {
        let n = data.slots.len();
        if n == 0 {
            return;
        }
        for _ in 0..budget.min(n) {
            let idx = data.hand % n;
            data.hand = (idx + 1) % n;
            let expired = match &data.slots[idx] {
                // Kept through the stale grace, for a loader that fails (`peek_stale`).
                Some(e) => {
                    let d = e.deadline();
                    d != NEVER && now >= d.saturating_add(self.grace)
                }
                None => false,
            };
            if expired {
                let (k, v, w) = self.remove_slot(data, idx as u32);
                data.policy.on_remove(idx as u32);
                removed.push(k, v, RemovalCause::Expired, w);
            }
        }
    }

    /// Removes `key`, returning its value if it was live.
    #[inline]
    pub(crate) fn remove<Q>(&self, key: &Q, cause: RemovalCause) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.remove_if(key, cause, |_| true)
    }

    /// Removes `key` if its value satisfies `pred` (checked under the shard's lock), returning
    /// the value if it was live and removed.
    pub(crate) fn remove_if<Q>(
        &self,
        key: &Q,
        cause: RemovalCause,
        pred: impl FnOnce(&V) -> bool,
    ) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let shard = self.shard(hash);
        let mut removed = Removed::None;
        let out = {
            let mut guard = shard.data.write();
            let data = &mut *guard;
            match data.find(hash, key) {
                None => None,
                Some(idx) if !data.slots[idx as usize].as_ref().is_some_and(|e| pred(&e.value)) => {
                    None
                }
                Some(idx) => {
                    let d = data.slots[idx as usize].as_ref().map_or(NEVER, Entry::deadline);
                    let expired = d != NEVER && self.clock.now() >= d;
                    let (k, v, w) = self.remove_slot(data, idx);
                    data.policy.on_remove(idx);
                    if expired {
                        removed.push(k, v, RemovalCause::Expired, w);
                        None
                    } else {
                        let out = v.clone();
                        removed.push(k, v, cause, w);
                        Some(out)
                    }
                }
            }
        };
        self.notify(removed);
        out
    }

    /// Removes every entry for which `pred` is true (all if `None`).
    pub(crate) fn remove_where(&self, pred: Option<Predicate<'_, K, V>>, cause: RemovalCause) {
        for shard in self.shards.iter() {
            let mut removed = Removed::None;
            {
                let mut guard = shard.data.write();
                let data = &mut *guard;
                shard.reads.drain(&mut *data.policy);
                let now = if self.has_deadlines.load(Relaxed) { self.clock.now() } else { 0 };
                for idx in 0..data.slots.len() {
                    let hit = match &data.slots[idx] {
                        Some(e) => pred.is_none_or(|p| p(&e.key, &e.value)),
                        None => false,
                    };
                    if hit {
                        let d = data.slots[idx].as_ref().map_or(NEVER, Entry::deadline);
                        let (k, v, w) = self.remove_slot(data, idx as u32);
                        data.policy.on_remove(idx as u32);
                        let c = if d != NEVER && now >= d { RemovalCause::Expired } else { cause };
                        removed.push(k, v, c, w);
                    }
                }
            }
            self.notify(removed);
        }
    }

    /// Drains read buffers and reclaims every expired entry now.
    pub(crate) fn run_pending_tasks(&self) {
        for shard in self.shards.iter() {
            let mut removed = Removed::None;
            {
                let mut data = shard.data.write();
                shard.reads.drain(&mut *data.policy);
                let n = data.slots.len();
                self.sweep(&mut data, n, &mut removed);
            }
            self.notify(removed);
        }
    }

    pub(crate) fn notify(&self, removed: Removed<K, V>) {
        match removed {
            Removed::None => {}
            Removed::One(k, v, c, w) => self.notify_one(k, v, c, w),
            Removed::Many(all) => {
                for (k, v, c, w) in all {
                    self.notify_one(k, v, c, w);
                }
            }
        }
    }

    #[inline]
    pub(super) fn notify_one(&self, k: K, v: V, cause: RemovalCause, weight: u64) {
        if let Some(s) = &self.stats {
            s.record_removal(cause, weight);
        }
        if let Some(e) = &self.events {
            e.listener.on_event(&CacheEvent::Removed { key: (e.key)(&k), cause });
        }
        if let Some(l) = &self.listener {
            l(k, v, cause);
        }
    }
}

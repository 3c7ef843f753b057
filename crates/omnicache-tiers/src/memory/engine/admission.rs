//! The admission step: when a new key arrives in a full shard, the eviction policy names the
//! victims that would make room and the cache's [`AdmissionPolicy`] weighs the candidate
//! against them. Only caches built with an admission policy come here.

use super::{Engine, Entry, Removed, ShardData, View, NEVER};
use omnicache_core::{AdmissionPolicy, EntryInfo, RemovalCause, Timestamp};
use std::hash::{BuildHasher, Hash};

impl<K, V, S> Engine<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    fn info(&self, data: &ShardData<K, V>, idx: u32) -> Option<EntryInfo> {
        let e = data.slots.get(idx as usize)?.as_ref()?;
        let d = e.deadline();
        Some(EntryInfo {
            hash: self.hasher.hash_one(&e.key),
            weight: u64::from(e.weight.get()),
            expires: (d != NEVER).then_some(d),
        })
    }

    /// Brings a shard that just took `candidate` (a new key) back within budget, asking
    /// `admission` whether the candidate is worth the victims the eviction policy picks.
    pub(super) fn admit_or_evict(
        &self,
        admission: &dyn AdmissionPolicy,
        data: &mut ShardData<K, V>,
        candidate: u32,
        now: Timestamp,
        removed: &mut Removed<K, V>,
    ) {
        let mut victims: Vec<u32> = Vec::new();
        let mut freed = 0u64;
        let mut candidate_picked = false;
        while data.weight.saturating_sub(freed) > data.max_weight {
            let victim = {
                let mut view = View { slots: &data.slots, hasher: &self.hasher };
                data.policy.evict(&mut view)
            };
            let Some(idx) = victim else { break };
            if idx == candidate {
                // The eviction policy itself turned the newcomer away.
                candidate_picked = true;
                break;
            }
            let Some(e) = data.slots.get(idx as usize).and_then(Option::as_ref) else {
                continue; // a policy bug; never loop on it forever
            };
            freed += u64::from(e.weight.get());
            victims.push(idx);
        }
        let admitted = !candidate_picked
            && (victims.is_empty() || {
                let infos: Vec<EntryInfo> =
                    victims.iter().filter_map(|&v| self.info(data, v)).collect();
                match self.info(data, candidate) {
                    Some(c) => admission.admit(&c, &infos),
                    None => true,
                }
            });
        if admitted {
            for idx in victims {
                self.drop_victim(data, idx, now, removed);
            }
        } else {
            // The victims stay, as if just inserted; the candidate leaves.
            for idx in victims {
                if let Some(info) = self.info(data, idx) {
                    data.policy.on_insert(idx, info);
                }
            }
            let (k, v, w) = self.remove_slot(data, candidate);
            if !candidate_picked {
                data.policy.on_remove(candidate);
            }
            removed.push(k, v, RemovalCause::Capacity, w);
        }
        // Whatever the decision left over budget goes the usual way.
        self.evict_to_budget(data, now, removed);
    }

    /// Removes a victim the eviction policy already forgot.
    fn drop_victim(
        &self,
        data: &mut ShardData<K, V>,
        idx: u32,
        now: Timestamp,
        removed: &mut Removed<K, V>,
    ) {
        let d = data.slots[idx as usize].as_ref().map_or(NEVER, Entry::deadline);
        let (k, v, w) = self.remove_slot(data, idx);
        let cause =
            if d != NEVER && now >= d { RemovalCause::Expired } else { RemovalCause::Capacity };
        removed.push(k, v, cause, w);
    }

    /// Tells the admission policy about an access to `hash`, when there is one.
    #[inline]
    pub(super) fn record_access(&self, hash: u64) {
        if let Some(a) = &self.admission {
            a.record(hash);
        }
    }
}

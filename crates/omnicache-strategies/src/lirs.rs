//! LIRS, Low Inter-reference Recency Set (Jiang & Zhang, SIGMETRICS'02), weighted.

use crate::list::SlotList;
use omnicache_core::{AccessView, EntryInfo, EvictionPolicy, PolicyFactory, SlotId};
use std::collections::HashMap;

const NIL: u32 = u32::MAX;
const FREE: u8 = 0;
/// Resident, low inter-reference recency: protected.
const LIR: u8 = 1;
/// Resident, high inter-reference recency: the eviction candidates, in queue Q.
const HIR: u8 = 2;
/// Not resident, still in the stack S: a ghost whose next reference makes it LIR.
const GHOST: u8 = 3;

#[derive(Clone, Copy)]
struct Node {
    hash: u64,
    weight: u64,
    slot: u32,
    state: u8,
}

/// LIRS keeps the entries whose last two references were close together (low inter-reference
/// recency, LIR) and evicts from a small queue of the others (HIR), so a loop or a scan larger
/// than the cache cannot push out what is reused. A recency stack S holds the LIR entries, the
/// resident HIR entries and the ghosts (evicted HIR entries still recent enough to matter); a
/// reference to an HIR entry or a ghost that is still in S makes it LIR, and the least recent
/// LIR entry moves to the queue Q. The bottom of S is always LIR ("stack pruning").
///
/// Budgets are in weight units: the HIR queue holds `hir_share` of the budget (1%, at least one
/// unit, as in the paper), the LIR set the rest. Ghosts are bounded at `ghost_factor` times the
/// largest resident entry count seen; past that the ghost that has been one longest is dropped.
pub struct Lirs {
    nodes: Vec<Node>,
    free: Vec<u32>,
    by_hash: HashMap<u64, u32>,
    by_slot: Vec<u32>,
    /// The recency stack, most recent at the front.
    s: SlotList,
    /// Resident HIR entries, the next victim at the back.
    q: SlotList,
    /// Ghosts in the order they became ghosts, oldest at the back.
    ghosts: SlotList,
    lir_weight: u64,
    hir_weight: u64,
    lir_max: u64,
    resident: usize,
    peak: usize,
    ghost_factor: f64,
}

impl std::fmt::Debug for Lirs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lirs")
            .field("lir_weight", &self.lir_weight)
            .field("hir_weight", &self.hir_weight)
            .field("lir_max", &self.lir_max)
            .field("stack", &self.s.len())
            .field("ghosts", &self.ghosts.len())
            .finish()
    }
}

impl Lirs {
    /// A LIRS for a cache of `max_weight`, with `hir_share` of it for the HIR queue and ghosts
    /// bounded at `ghost_factor` times the resident entry count.
    pub fn new(max_weight: u64, hir_share: f64, ghost_factor: f64) -> Self {
        let share = if hir_share.is_finite() { hir_share.clamp(0.0, 1.0) } else { 0.01 };
        let max = max_weight.max(1);
        let hir = ((max as f64 * share).ceil() as u64).clamp(1, max);
        Lirs {
            nodes: Vec::new(),
            free: Vec::new(),
            by_hash: HashMap::new(),
            by_slot: Vec::new(),
            s: SlotList::new(),
            q: SlotList::new(),
            ghosts: SlotList::new(),
            lir_weight: 0,
            hir_weight: 0,
            lir_max: max - hir,
            resident: 0,
            peak: 0,
            ghost_factor: if ghost_factor.is_finite() { ghost_factor.max(0.0) } else { 2.0 },
        }
    }

    /// (LIR, resident HIR, ghost) counts, for tests and debugging.
    pub fn sizes(&self) -> (usize, usize, usize) {
        let hir = self.q.len();
        (self.resident - hir, hir, self.ghosts.len())
    }

    fn node_of_slot(&self, slot: SlotId) -> Option<u32> {
        let n = *self.by_slot.get(slot as usize)?;
        (n != NIL).then_some(n)
    }

    fn alloc(&mut self, node: Node) -> u32 {
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        self.by_hash.insert(node.hash, i);
        i
    }

    fn release(&mut self, n: u32) {
        let node = &mut self.nodes[n as usize];
        if self.by_hash.get(&node.hash) == Some(&n) {
            self.by_hash.remove(&node.hash);
        }
        node.state = FREE;
        self.s.unlink(n);
        self.q.unlink(n);
        self.ghosts.unlink(n);
        self.free.push(n);
    }

    fn bind_slot(&mut self, slot: SlotId, n: u32) {
        let i = slot as usize;
        if i >= self.by_slot.len() {
            self.by_slot.resize(i + 1, NIL);
        }
        self.by_slot[i] = n;
        self.nodes[n as usize].slot = slot;
        self.resident += 1;
        self.peak = self.peak.max(self.resident);
    }

    fn unbind_slot(&mut self, n: u32) -> SlotId {
        let slot = self.nodes[n as usize].slot;
        self.by_slot[slot as usize] = NIL;
        self.nodes[n as usize].slot = NIL;
        self.resident -= 1;
        slot
    }

    /// Removes non-LIR entries from the bottom of S: resident HIR ones stay in Q, ghosts go.
    fn prune(&mut self) {
        while let Some(b) = self.s.back() {
            match self.nodes[b as usize].state {
                LIR => break,
                GHOST => self.release(b),
                _ => {
                    self.s.unlink(b);
                }
            }
        }
    }

    /// Moves the least recent LIR entries to Q while the LIR set is over its budget.
    fn demote_lirs(&mut self) {
        while self.lir_weight > self.lir_max {
            self.prune();
            let Some(b) = self.s.pop_back() else { break };
            let w = self.nodes[b as usize].weight;
            self.nodes[b as usize].state = HIR;
            self.lir_weight -= w;
            self.hir_weight += w;
            self.q.push_front(b);
        }
        self.prune();
    }

    fn make_lir(&mut self, n: u32) {
        let node = &mut self.nodes[n as usize];
        let w = node.weight;
        match node.state {
            HIR => self.hir_weight -= w,
            GHOST => {}
            _ => return,
        }
        node.state = LIR;
        self.lir_weight += w;
        self.q.unlink(n);
        self.ghosts.unlink(n);
        self.s.push_front(n);
        self.demote_lirs();
    }

    fn bound_ghosts(&mut self) {
        let bound = (self.peak as f64 * self.ghost_factor) as usize;
        while self.ghosts.len() > bound {
            let Some(g) = self.ghosts.back() else { break };
            self.release(g);
        }
    }

    fn forget(&mut self, n: u32) {
        let node = self.nodes[n as usize];
        match node.state {
            LIR => self.lir_weight -= node.weight,
            HIR => self.hir_weight -= node.weight,
            _ => {}
        }
        self.unbind_slot(n);
        self.release(n);
        self.prune();
    }
}

impl EvictionPolicy for Lirs {
    fn name(&self) -> &'static str {
        "lirs"
    }

    fn on_insert(&mut self, slot: SlotId, info: EntryInfo) {
        if let Some(n) = self.node_of_slot(slot) {
            self.forget(n);
        }
        let w = info.weight.max(1);
        match self.by_hash.get(&info.hash).copied() {
            Some(n) if self.nodes[n as usize].state == GHOST => {
                // A reference to a ghost still in S: its reuse distance beats the oldest LIR's.
                self.nodes[n as usize].weight = w;
                self.bind_slot(slot, n);
                self.make_lir(n);
            }
            // New, or the same hash resident in another slot (a collision): a node of its own.
            _ => {
                let state = if self.lir_weight + w <= self.lir_max { LIR } else { HIR };
                let n = self.alloc(Node { hash: info.hash, weight: w, slot: NIL, state });
                self.bind_slot(slot, n);
                self.s.push_front(n);
                if state == LIR {
                    self.lir_weight += w;
                } else {
                    self.hir_weight += w;
                    self.q.push_front(n);
                }
            }
        }
        self.bound_ghosts();
    }

    fn on_access(&mut self, slot: SlotId) {
        let Some(n) = self.node_of_slot(slot) else { return };
        match self.nodes[n as usize].state {
            LIR => {
                self.s.move_to_front(n);
                self.prune();
            }
            HIR if self.s.contains(n) => self.make_lir(n),
            HIR => {
                self.s.push_front(n);
                self.q.move_to_front(n);
            }
            _ => {}
        }
    }

    fn on_update(&mut self, slot: SlotId, info: EntryInfo) {
        let Some(n) = self.node_of_slot(slot) else { return };
        let w = info.weight.max(1);
        let node = &mut self.nodes[n as usize];
        let old = std::mem::replace(&mut node.weight, w);
        match node.state {
            LIR => self.lir_weight = self.lir_weight - old + w,
            HIR => self.hir_weight = self.hir_weight - old + w,
            _ => {}
        }
        self.on_access(slot);
        self.demote_lirs();
    }

    fn on_remove(&mut self, slot: SlotId) {
        if let Some(n) = self.node_of_slot(slot) {
            self.forget(n);
        }
    }

    fn evict(&mut self, _accesses: &mut dyn AccessView) -> Option<SlotId> {
        if let Some(v) = self.q.pop_back() {
            let w = self.nodes[v as usize].weight;
            self.hir_weight -= w;
            let slot = self.unbind_slot(v);
            if self.s.contains(v) {
                self.nodes[v as usize].state = GHOST;
                self.ghosts.push_front(v);
                self.bound_ghosts();
            } else {
                self.release(v);
            }
            return Some(slot);
        }
        // Only LIR entries (the budget shrank, or weights): the least recent LIR leaves.
        self.prune();
        let v = self.s.back()?;
        self.lir_weight -= self.nodes[v as usize].weight;
        let slot = self.unbind_slot(v);
        self.release(v);
        self.prune();
        Some(slot)
    }

    fn len(&self) -> usize {
        self.resident
    }
}

/// Makes [`Lirs`] policies: 1% HIR queue, ghosts bounded at twice the resident count, unless
/// set otherwise.
#[derive(Debug, Clone, Copy)]
pub struct LirsFactory {
    /// The HIR queue's share of the budget. Default 0.01.
    pub hir_share: f64,
    /// Ghosts kept, as a multiple of the resident entry count. Default 2.0.
    pub ghost_factor: f64,
}

impl Default for LirsFactory {
    fn default() -> Self {
        LirsFactory { hir_share: 0.01, ghost_factor: 2.0 }
    }
}

impl PolicyFactory for LirsFactory {
    fn name(&self) -> &str {
        "lirs"
    }
    fn build(&self, max_weight: u64) -> Box<dyn EvictionPolicy> {
        Box::new(Lirs::new(max_weight, self.hir_share, self.ghost_factor))
    }
}

//! An LRU-ordered set of hashes with weights: the ghost lists of ARC.

use std::collections::HashMap;

const NIL: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Node {
    hash: u64,
    weight: u64,
    prev: u32,
    next: u32,
}

/// Hashes from most (front) to least recent (back), with O(1) insert, remove and membership.
#[derive(Default)]
pub(crate) struct GhostList {
    nodes: Vec<Node>,
    free: Vec<u32>,
    index: HashMap<u64, u32>,
    head: u32,
    tail: u32,
    weight: u64,
}

impl GhostList {
    pub(crate) fn new() -> Self {
        GhostList { head: NIL, tail: NIL, ..Default::default() }
    }

    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    pub(crate) fn weight(&self) -> u64 {
        self.weight
    }

    pub(crate) fn contains(&self, hash: u64) -> bool {
        self.index.contains_key(&hash)
    }

    pub(crate) fn push_front(&mut self, hash: u64, weight: u64) {
        self.remove(hash);
        let node = Node { hash, weight, prev: NIL, next: self.head };
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
        if self.head != NIL {
            self.nodes[self.head as usize].prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
        self.index.insert(hash, i);
        self.weight += weight;
    }

    /// Removes `hash`; returns its weight if it was there.
    pub(crate) fn remove(&mut self, hash: u64) -> Option<u64> {
        let i = self.index.remove(&hash)?;
        let Node { prev, next, weight, .. } = self.nodes[i as usize];
        if prev != NIL {
            self.nodes[prev as usize].next = next;
        } else {
            self.head = next;
        }
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        } else {
            self.tail = prev;
        }
        self.free.push(i);
        self.weight -= weight;
        Some(weight)
    }

    pub(crate) fn pop_back(&mut self) -> Option<u64> {
        if self.tail == NIL {
            return None;
        }
        let hash = self.nodes[self.tail as usize].hash;
        self.remove(hash);
        Some(hash)
    }
}

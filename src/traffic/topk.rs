//! A fixed-size "heavy hitters" counter (the Space-Saving algorithm): at most `k` keys are
//! kept whatever the number of distinct keys seen; a key that is not kept replaces the
//! smallest, inheriting its count as an over-estimate bound. Memory is O(k), an update is
//! O(1) for a kept key and O(k) for a new one.

use std::collections::HashMap;
use std::hash::Hash;

#[derive(Debug, Clone)]
struct Slot<K> {
    key: K,
    count: u64,
    /// How much of `count` may belong to keys this slot replaced.
    error: u64,
    /// A second quantity summed alongside (bytes when counting packets).
    extra: u64,
}

/// Top-k by count, with a summed extra quantity per key.
#[derive(Debug, Clone)]
pub struct TopK<K> {
    k: usize,
    slots: Vec<Slot<K>>,
    index: HashMap<K, usize>,
}

impl<K: Eq + Hash + Clone> TopK<K> {
    /// `k` is at least 1.
    pub fn new(k: usize) -> Self {
        let k = k.max(1);
        TopK {
            k,
            slots: Vec::with_capacity(k),
            index: HashMap::with_capacity(k),
        }
    }

    /// Adds `count` (and `extra`) to `key`.
    pub fn add(&mut self, key: &K, count: u64, extra: u64) {
        if let Some(&i) = self.index.get(key) {
            let s = &mut self.slots[i];
            s.count = s.count.saturating_add(count);
            s.extra = s.extra.saturating_add(extra);
            return;
        }
        if self.slots.len() < self.k {
            self.index.insert(key.clone(), self.slots.len());
            self.slots.push(Slot {
                key: key.clone(),
                count,
                error: 0,
                extra,
            });
            return;
        }
        // Replace the smallest.
        let Some((i, _)) = self.slots.iter().enumerate().min_by_key(|(_, s)| s.count) else {
            return;
        };
        let s = &mut self.slots[i];
        self.index.remove(&s.key);
        let min = s.count;
        *s = Slot {
            key: key.clone(),
            count: min.saturating_add(count),
            error: min,
            extra,
        };
        self.index.insert(key.clone(), i);
    }

    /// Halves every count, so the ranking follows recent traffic; keys that reach zero go.
    pub fn decay(&mut self) {
        for s in &mut self.slots {
            s.count /= 2;
            s.error /= 2;
            s.extra /= 2;
        }
        self.slots.retain(|s| s.count > 0);
        self.index.clear();
        for (i, s) in self.slots.iter().enumerate() {
            self.index.insert(s.key.clone(), i);
        }
    }

    /// The `n` largest, largest first: (key, count, extra, error bound).
    pub fn top(&self, n: usize) -> Vec<(K, u64, u64, u64)> {
        let mut v: Vec<&Slot<K>> = self.slots.iter().collect();
        v.sort_by_key(|s| std::cmp::Reverse(s.count));
        v.into_iter()
            .take(n)
            .map(|s| (s.key.clone(), s.count, s.extra, s.error))
            .collect()
    }

    /// Keys held (never more than `k`).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn heavy_hitters_survive_a_flood_of_singletons() {
        let mut t = TopK::new(8);
        for i in 0..10_000u32 {
            t.add(&(i % 3), 5, 0); // three heavy keys
            t.add(&(1000 + i), 1, 0); // many light ones
        }
        assert!(t.len() <= 8);
        let top: Vec<u32> = t.top(3).into_iter().map(|x| x.0).collect();
        let mut sorted = top.clone();
        sorted.sort();
        assert_eq!(sorted, vec![0, 1, 2]);
    }

    #[test]
    fn decay_halves_and_drops() {
        let mut t = TopK::new(4);
        t.add(&"a", 4, 400);
        t.add(&"b", 1, 100);
        t.decay();
        assert_eq!(t.top(5), vec![("a", 2, 200, 0)]);
    }
}

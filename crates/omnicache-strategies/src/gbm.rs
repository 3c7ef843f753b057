//! Gradient-boosted regression trees over byte-binned features: the model behind [`Lrb`].
//!
//! Squared loss, depth-wise trees, split search over 256-bin histograms (as LightGBM does,
//! without its sampling tricks). Small and exact enough to retrain every few thousand
//! samples, inside a policy or on the process's training thread ([`Learner`]), from the
//! samples awaiting their labels ([`Pending`]).
//!
//! [`Lrb`]: crate::Lrb

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};

/// Feature value for "no such value" (a missing reuse interval); sorts after every real bin.
pub(crate) const MISSING: u8 = u8::MAX;

/// Log-scale bin of `x`: 0 for 0, then eight bins per power of two, at most 254.
pub(crate) fn log_bin(x: u64) -> u8 {
    if x == 0 {
        return 0;
    }
    let octave = 63 - u64::from(x.leading_zeros());
    let frac = if octave >= 3 { (x >> (octave - 3)) & 7 } else { (x << (3 - octave)) & 7 };
    (1 + octave * 8 + frac).min(254) as u8
}

/// How a model is trained.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Boosting {
    pub(crate) trees: usize,
    pub(crate) depth: usize,
    pub(crate) learning_rate: f32,
    pub(crate) min_leaf: usize,
}

impl Default for Boosting {
    /// LightGBM's usual small model: 32 trees of up to 32 leaves, learning rate 0.1.
    fn default() -> Self {
        Boosting { trees: 32, depth: 5, learning_rate: 0.1, min_leaf: 20 }
    }
}

/// A split (`feature <= threshold` goes left) or, with `feature == LEAF`, a leaf's `value`.
#[derive(Debug, Clone, Copy)]
struct Node {
    feature: u8,
    threshold: u8,
    left: u32,
    right: u32,
    value: f32,
}

const LEAF: u8 = u8::MAX;

/// A trained ensemble: a base value plus the sum of every tree's leaf.
#[derive(Debug, Clone, Default)]
pub(crate) struct Model {
    base: f32,
    trees: Vec<Vec<Node>>,
}

fn leaf_of(tree: &[Node], x: &[u8]) -> f32 {
    let mut i = 0usize;
    loop {
        let Some(n) = tree.get(i) else { return 0.0 };
        if n.feature == LEAF {
            return n.value;
        }
        let v = x.get(n.feature as usize).copied().unwrap_or(MISSING);
        i = if v <= n.threshold { n.left } else { n.right } as usize;
    }
}

impl Model {
    /// The prediction for one feature row.
    pub(crate) fn predict(&self, x: &[u8]) -> f32 {
        self.base + self.trees.iter().map(|t| leaf_of(t, x)).sum::<f32>()
    }

    /// Fits `rows` (each `width` features) to `targets`. An empty set gives the zero model.
    pub(crate) fn train(rows: &[u8], width: usize, targets: &[f32], b: &Boosting) -> Model {
        let n = targets.len().min(rows.len() / width.max(1));
        if n == 0 || width == 0 {
            return Model::default();
        }
        let base = targets[..n].iter().sum::<f32>() / n as f32;
        let mut pred = vec![base; n];
        let mut resid = vec![0f32; n];
        let mut t = Trainer {
            rows,
            width,
            resid: &mut resid,
            sums: vec![0.0; width * 256],
            counts: vec![0; width * 256],
            b,
        };
        let mut trees = Vec::with_capacity(b.trees);
        let mut order: Vec<u32> = (0..n as u32).collect();
        for _ in 0..b.trees {
            for i in 0..n {
                t.resid[i] = targets[i] - pred[i];
            }
            let mut tree = Vec::new();
            t.grow(&mut tree, &mut order, 0);
            for (i, p) in pred.iter_mut().enumerate() {
                *p += leaf_of(&tree, &rows[i * width..(i + 1) * width]);
            }
            trees.push(tree);
        }
        Model { base, trees }
    }
}

struct Trainer<'a> {
    rows: &'a [u8],
    width: usize,
    resid: &'a mut [f32],
    sums: Vec<f64>,
    counts: Vec<u32>,
    b: &'a Boosting,
}

impl Trainer<'_> {
    /// Grows the subtree for the samples in `idx` (reordered in place); returns its root.
    fn grow(&mut self, tree: &mut Vec<Node>, idx: &mut [u32], depth: usize) -> u32 {
        let me = tree.len() as u32;
        let total: f64 = idx.iter().map(|&i| f64::from(self.resid[i as usize])).sum();
        let n = idx.len();
        let value = (f64::from(self.b.learning_rate) * total / n.max(1) as f64) as f32;
        tree.push(Node { feature: LEAF, threshold: 0, left: 0, right: 0, value });
        if depth >= self.b.depth || n < 2 * self.b.min_leaf.max(1) {
            return me;
        }
        let Some((feature, threshold)) = self.best_split(idx, total) else { return me };
        let w = self.width;
        let rows = self.rows;
        let goes_left = |i: u32| rows[i as usize * w + feature] <= threshold;
        let mut split = 0;
        for j in 0..n {
            if goes_left(idx[j]) {
                idx.swap(j, split);
                split += 1;
            }
        }
        let (l, r) = idx.split_at_mut(split);
        let left = self.grow(tree, l, depth + 1);
        let right = self.grow(tree, r, depth + 1);
        tree[me as usize] = Node { feature: feature as u8, threshold, left, right, value: 0.0 };
        me
    }

    /// The split with the largest reduction in squared error, if any leaves both sides with
    /// at least `min_leaf` samples.
    fn best_split(&mut self, idx: &[u32], total: f64) -> Option<(usize, u8)> {
        let w = self.width;
        self.sums.iter_mut().for_each(|s| *s = 0.0);
        self.counts.iter_mut().for_each(|c| *c = 0);
        for &i in idx {
            let row = &self.rows[i as usize * w..(i as usize + 1) * w];
            let r = f64::from(self.resid[i as usize]);
            for (f, &bin) in row.iter().enumerate() {
                let k = f * 256 + bin as usize;
                self.sums[k] += r;
                self.counts[k] += 1;
            }
        }
        let n = idx.len();
        let min = self.b.min_leaf.max(1);
        let parent = total * total / n as f64;
        let mut best: Option<(f64, usize, u8)> = None;
        for f in 0..w {
            let (mut ls, mut lc) = (0f64, 0usize);
            for bin in 0..255usize {
                ls += self.sums[f * 256 + bin];
                lc += self.counts[f * 256 + bin] as usize;
                if lc < min {
                    continue;
                }
                if n - lc < min {
                    break;
                }
                let rs = total - ls;
                let gain = ls * ls / lc as f64 + rs * rs / (n - lc) as f64 - parent;
                if gain > best.map_or(1e-9, |b| b.0) {
                    best = Some((gain, f, bin as u8));
                }
            }
        }
        best.map(|(_, f, t)| (f, t))
    }
}

/// Where a learned policy trains its model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Training {
    /// Inside the policy's `evict`: a pause of milliseconds to a tenth of a second every
    /// few thousand labels, but deterministic, so a replay gives the same figures every run.
    /// What the trace simulator uses.
    #[default]
    Inline,
    /// On a training thread the process's learned policies share (one, started by the first
    /// training): evictions go on with the previous model until the new one is ready, so none
    /// waits for a training. What a served cache uses ([`by_name`](crate::by_name)). Falls
    /// back to inline if the thread cannot be spawned.
    Background,
}

/// Training data, schedule and model of a learned policy: the latest labelled rows in a
/// ring, retrained whenever an eighth as many new labels have arrived (at least
/// [`RETRAIN_MIN`]), inline or on the process's training thread.
pub(crate) struct Learner {
    width: usize,
    rows: Vec<u8>,
    targets: Vec<f32>,
    next_row: usize,
    fresh: usize,
    boosting: Boosting,
    model: Option<Model>,
    /// Where the training thread leaves models: `Some` for background training.
    handoff: Option<Arc<Handoff>>,
}

/// Labels kept for training (the latest).
pub(crate) const TRAIN_MAX: usize = 32_768;
/// Fewest new labels between trainings.
pub(crate) const RETRAIN_MIN: usize = 512;

/// A background learner's side of the training thread: at most one job in flight; a finished
/// model waits in `model` until adopted.
#[derive(Default)]
struct Handoff {
    model: Mutex<Option<Model>>,
    /// Set while a job is queued or training.
    busy: AtomicBool,
    /// Set when `model` holds a model not yet adopted.
    ready: AtomicBool,
}

/// A training job for the process's training thread.
struct Job {
    rows: Vec<u8>,
    targets: Vec<f32>,
    width: usize,
    boosting: Boosting,
    handoff: Arc<Handoff>,
}

/// The process's one training thread, shared by every background learner (a memory cache
/// builds one policy per shard, and a thread each would be dozens), started by the first
/// job; `None` if it could not be spawned.
fn trainer() -> Option<&'static mpsc::Sender<Job>> {
    static TRAINER: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();
    TRAINER
        .get_or_init(|| {
            let (jobs, inbox) = mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("omnicache-train".into())
                .spawn(move || {
                    while let Ok(job) = inbox.recv() {
                        let trained = std::panic::catch_unwind(AssertUnwindSafe(|| {
                            Model::train(&job.rows, job.width, &job.targets, &job.boosting)
                        }));
                        if let Ok(model) = trained {
                            *job.handoff.model.lock().unwrap_or_else(|e| e.into_inner()) =
                                Some(model);
                            job.handoff.ready.store(true, Ordering::Release);
                        }
                        job.handoff.busy.store(false, Ordering::Release);
                    }
                })
                .ok()
                .map(|_| jobs)
        })
        .as_ref()
}

impl Learner {
    pub(crate) fn new(width: usize, boosting: Boosting, training: Training) -> Learner {
        Learner {
            width,
            rows: Vec::new(),
            targets: Vec::new(),
            next_row: 0,
            fresh: 0,
            boosting,
            model: None,
            handoff: (training == Training::Background).then(Arc::default),
        }
    }

    /// Whether a model exists (trained, or finished in the background and not yet adopted).
    pub(crate) fn is_trained(&self) -> bool {
        self.model.is_some()
            || self.handoff.as_ref().is_some_and(|h| h.ready.load(Ordering::Acquire))
    }

    /// Adopts the model the background thread has finished, if any.
    pub(crate) fn adopt(&mut self) {
        if let Some(handoff) = &self.handoff {
            if handoff.ready.swap(false, Ordering::Acquire) {
                if let Some(m) = handoff.model.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    self.model = Some(m);
                }
            }
        }
    }

    /// The current model (see [`adopt`](Self::adopt)).
    pub(crate) fn model(&self) -> Option<&Model> {
        self.model.as_ref()
    }

    /// Adds a labelled row (its first `width` features) and retrains when due.
    pub(crate) fn add(&mut self, row: &[u8], target: f32) {
        let row = &row[..self.width];
        if self.targets.len() < TRAIN_MAX {
            self.rows.extend_from_slice(row);
            self.targets.push(target);
        } else {
            let i = self.next_row;
            self.rows[i * self.width..(i + 1) * self.width].copy_from_slice(row);
            self.targets[i] = target;
            self.next_row = (i + 1) % TRAIN_MAX;
        }
        self.fresh += 1;
        if self.fresh < RETRAIN_MIN.max(self.targets.len() / 8) {
            return;
        }
        if let Some(handoff) = &self.handoff {
            // Still training the last job: try again at the next label.
            if handoff.busy.swap(true, Ordering::AcqRel) {
                return;
            }
            let job = Job {
                rows: self.rows.clone(),
                targets: self.targets.clone(),
                width: self.width,
                boosting: self.boosting,
                handoff: handoff.clone(),
            };
            if trainer().is_some_and(|t| t.send(job).is_ok()) {
                self.fresh = 0;
                return;
            }
            // No training thread (it could not be spawned): train here from now on.
            self.handoff = None;
        }
        self.fresh = 0;
        self.model = Some(Model::train(&self.rows, self.width, &self.targets, &self.boosting));
    }
}

/// Feature rows of sampled entries awaiting their label: the log of the time to the key's
/// next reference, or of twice the memory window if none comes within it. At most `max` wait
/// at once (more are not taken).
pub(crate) struct Pending<const W: usize> {
    rows: HashMap<u64, (u64, [u8; W])>,
    order: VecDeque<(u64, u64)>,
    max: usize,
}

impl<const W: usize> Pending<W> {
    pub(crate) fn new(max: usize) -> Self {
        Pending { rows: HashMap::new(), order: VecDeque::new(), max }
    }

    /// Whether a sample of `hash` would be taken (none waits for it, and there is room).
    pub(crate) fn wants(&self, hash: u64) -> bool {
        self.rows.len() < self.max && !self.rows.contains_key(&hash)
    }

    /// Takes `row` as the sample of `hash` at time `now` (see [`wants`](Self::wants)).
    pub(crate) fn add(&mut self, hash: u64, now: u64, row: [u8; W]) {
        self.rows.insert(hash, (now, row));
        self.order.push_back((now, hash));
    }

    /// A reference to `hash` at `now`: labels its sample, if one waits.
    pub(crate) fn referenced(&mut self, hash: u64, now: u64, learner: &mut Learner) {
        if let Some((t, row)) = self.rows.remove(&hash) {
            learner.add(&row, ((now - t + 1) as f32).log2());
        }
    }

    /// Labels the samples taken more than `window` before `now` as not referenced again.
    pub(crate) fn expire(&mut self, now: u64, window: u64, learner: &mut Learner) {
        while let Some(&(t, hash)) = self.order.front() {
            if now - t <= window {
                break;
            }
            self.order.pop_front();
            if self.rows.get(&hash).is_some_and(|p| p.0 == t) {
                if let Some((_, row)) = self.rows.remove(&hash) {
                    learner.add(&row, ((2 * window + 1) as f32).log2());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_bins_are_monotone_and_bounded() {
        let mut last = 0;
        for x in (0..20).chain([100, 1_000, 1 << 20, u64::MAX]) {
            let b = log_bin(x);
            assert!(b >= last, "bin of {x} ({b}) below the previous ({last})");
            assert!(b < MISSING);
            last = b;
        }
        assert_eq!(log_bin(0), 0);
        assert!(log_bin(9) > log_bin(8), "eight bins per octave separate 8 and 9");
    }

    #[test]
    fn learns_a_step_and_an_interaction() {
        // y = 10 when x0 > 100 and x1 <= 50, else 0: needs two levels of splits.
        let mut rows = Vec::new();
        let mut ys = Vec::new();
        let mut s = 1u64;
        for _ in 0..4_000 {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let (a, b) = ((s >> 33) as u8, (s >> 45) as u8);
            rows.extend([a, b, 7]);
            ys.push(if a > 100 && b <= 50 { 10.0 } else { 0.0 });
        }
        let m = Model::train(&rows, 3, &ys, &Boosting::default());
        assert!(m.predict(&[200, 10, 7]) > 8.0, "{}", m.predict(&[200, 10, 7]));
        assert!(m.predict(&[200, 200, 7]) < 2.0);
        assert!(m.predict(&[50, 10, 7]) < 2.0);
        // A short row reads as missing features rather than panicking.
        let _ = m.predict(&[200]);
    }

    /// Rows of `y = 10 when x0 > 100 else 0`, the labels a learner gets.
    fn step_rows(n: usize) -> Vec<([u8; 2], f32)> {
        let mut s = 7u64;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let row = [(s >> 33) as u8, (s >> 45) as u8];
                (row, if row[0] > 100 { 10.0 } else { 0.0 })
            })
            .collect()
    }

    #[test]
    fn a_learner_trains_inline_once_enough_labels_arrive() {
        let mut l = Learner::new(2, Boosting::default(), Training::Inline);
        let rows = step_rows(RETRAIN_MIN);
        for (row, y) in &rows[..RETRAIN_MIN - 1] {
            l.add(row, *y);
        }
        assert!(!l.is_trained(), "no model before {RETRAIN_MIN} labels");
        l.add(&rows[RETRAIN_MIN - 1].0, rows[RETRAIN_MIN - 1].1);
        assert!(l.is_trained());
        assert!(l.model().is_some_and(|m| m.predict(&[200, 0]) > 8.0 && m.predict(&[50, 0]) < 2.0));
    }

    #[test]
    fn a_background_learner_trains_the_same_model_on_its_own_thread() {
        let rows = step_rows(RETRAIN_MIN);
        let mut inline = Learner::new(2, Boosting::default(), Training::Inline);
        let mut background = Learner::new(2, Boosting::default(), Training::Background);
        for (row, y) in &rows {
            inline.add(row, *y);
            background.add(row, *y);
        }
        assert!(
            background
                .handoff
                .as_ref()
                .is_some_and(|h| h.busy.load(Ordering::Acquire) || h.ready.load(Ordering::Acquire)),
            "a job went to the training thread"
        );
        assert!(background.model().is_none(), "nothing is adopted before `adopt`");
        // Wait for the thread (not for a clock): a training of 512 rows takes milliseconds.
        #[allow(clippy::disallowed_methods)]
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !background.is_trained() {
            #[allow(clippy::disallowed_methods)]
            let now = std::time::Instant::now();
            assert!(now < deadline, "no model from the training thread");
            std::thread::yield_now();
        }
        background.adopt();
        let (a, b) = (inline.model().unwrap(), background.model().unwrap());
        for x in [[0, 0], [99, 7], [101, 7], [255, 255]] {
            assert_eq!(a.predict(&x), b.predict(&x), "same rows, same model at {x:?}");
        }
    }

    #[test]
    fn an_empty_or_constant_set_gives_a_constant_model() {
        let m = Model::train(&[], 3, &[], &Boosting::default());
        assert_eq!(m.predict(&[1, 2, 3]), 0.0);
        let m = Model::train(&[1, 2, 3, 4, 5, 6], 3, &[2.0, 2.0], &Boosting::default());
        assert!((m.predict(&[9, 9, 9]) - 2.0).abs() < 1e-6);
    }
}

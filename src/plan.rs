//! The execution plan: schedule, value lifetimes and memory assignment.
//!
//! Three separate questions, answered in order for one concrete set of
//! shapes (a graph compiled for one batch and input size):
//!
//! 1. **Schedule** — the order nodes run in: the graph's topological order.
//! 2. **Storage** — which bytes hold each value. Most values are their own
//!    *storage root*. Two kinds of value live inside another's storage:
//!    in-place concat inputs ([`Graph::alias`]: a channel range of the
//!    concat output, resolved through nested concats by
//!    [`Graph::storage_of`]) and *views*: a `Flatten` of an `(N, C, 1, 1)`
//!    (or `(N, 1, H, W)`) tensor has the same bytes in NHWC as its input, so
//!    it is its input's storage. Any other flatten is a real value (the executor fills it
//!    with an NHWC → NCHW transpose, which is exactly PyTorch's flatten
//!    order).
//! 3. **Memory** — every storage root gets a *slot* (one GPU buffer), and
//!    roots whose lifetimes are disjoint share slots. A root lives from the
//!    first step at which any value stored in it is written to the last step
//!    at which any such value is read; the graph input lives from step 0;
//!    graph outputs live to step [`Plan::steps`] (the read-back, one past the
//!    last node). Assignment is greedy by size: roots largest first, each
//!    into the smallest existing slot holding no root whose lifetime
//!    overlaps, else a new slot. A slot's size is its first (largest) root's.
//!
//! Slots are whole buffers rather than offsets into one arena buffer: wgpu
//! tracks read/write usage per buffer, so a dispatch reading one value and
//! writing another must see two buffers. Values alive at the same step never
//! share a slot, so that always holds.
//!
//! 4. **Placement** — the byte layout the executor is moving to
//!    ([`Plan::placement`], [`Placement`]): every root at an aligned byte
//!    offset inside one of a few large buffers. wgpu's rule still holds per
//!    buffer: a dispatch may not bind one buffer both read-only and
//!    read-write, and the kernels bind what a node reads read-only and what
//!    it writes read-write, so the storage a dispatch writes must be in
//!    another buffer than everything it reads ([`Placement::apart`]). See
//!    [`Placement`] for how roots are coloured into buffers and packed.
//!
//! Invariants ([`Plan::verify`] re-checks them): every produced value has a
//! storage root; every root has a slot at least its size; two roots in one
//! slot have disjoint lifetimes. In the placement: every root lies inside
//! its buffer at an aligned offset; two roots alive at a common step never
//! share bytes of one buffer; the roots of every [`Placement::apart`] pair
//! are in different buffers; no buffer exceeds the maximum buffer size.

use crate::error::{Error, Result};
use crate::graph::{Graph, Op, ValueId};

/// Where a value's bytes are: inside `root`'s storage, starting at channel
/// `channel_offset` (NHWC: a strided channel range when nonzero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Storage {
    /// The value owning the storage (itself when not an alias or view).
    pub root: ValueId,
    /// First channel of this value within the root.
    pub channel_offset: usize,
}

/// Inclusive range of schedule steps during which a storage root must keep
/// its contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// First step that writes it.
    pub first: usize,
    /// Last step that reads it ([`Plan::steps`] for graph outputs).
    pub last: usize,
}

impl Lifetime {
    /// True when the two ranges share a step.
    pub fn overlaps(&self, other: &Lifetime) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

/// One shared buffer and the storage roots assigned to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// Size in bytes (the largest root assigned).
    pub bytes: u64,
    /// Roots sharing it, largest first; their lifetimes are disjoint.
    pub values: Vec<ValueId>,
}

/// Schedule, storage, lifetimes and slot assignment of a graph for one set
/// of shapes. See the module doc.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Node indices in execution order.
    pub schedule: Vec<usize>,
    /// Number of schedule steps; graph outputs live until this step.
    pub steps: usize,
    /// Shapes of every value (NCHW), as given to [`Plan::new`].
    pub shapes: Vec<[usize; 4]>,
    /// Per value: where it lives (`None` for values no node produces).
    pub storage: Vec<Option<Storage>>,
    /// Per value: its lifetime when it is a storage root.
    pub lifetimes: Vec<Option<Lifetime>>,
    /// Per value: its slot when it is a storage root.
    pub slot_of: Vec<Option<usize>>,
    /// The shared buffers.
    pub slots: Vec<Slot>,
    /// Sum of slot sizes: the activation memory the executor allocates.
    pub arena_bytes: u64,
    /// Sum of every storage root's size: the memory with no sharing.
    pub values_bytes: u64,
    /// Largest sum of root sizes alive at one step: no assignment can use
    /// less.
    pub lower_bound_bytes: u64,
    /// Every root at a byte offset in one of a few buffers (see
    /// [`Placement`]); [`Plan::new`] makes it for f32 values and
    /// [`MemoryOptions::default`].
    pub placement: Placement,
}

/// True when a `Flatten` of an input of `shape` is a view (no copy): NHWC
/// and NCHW orders agree when `H = W = 1` or `C = 1`.
pub fn is_flatten_view(shape: [usize; 4]) -> bool {
    (shape[2] == 1 && shape[3] == 1) || shape[1] == 1
}

fn graph_err(node: &str, message: String) -> Error {
    Error::Graph {
        node: node.into(),
        message,
    }
}

/// Checks every [`Graph::alias`] entry `v → (concat output, offset)`: the
/// target is produced by a concat that reads `v` exactly once, at channel
/// `offset`; `v` is produced by a conv, a windowed pool or a concat (the
/// nodes that can write at a channel offset), is read by nothing else, and
/// is neither the graph input nor a graph output. Errors name `v`'s producer.
pub fn check_alias(graph: &Graph) -> Result<()> {
    let mut idx = vec![None; graph.shapes.len()];
    for (i, n) in graph.nodes.iter().enumerate() {
        idx[n.output.0] = Some(i);
    }
    let consumers = graph.consumers();
    let mut keys: Vec<_> = graph.alias.iter().collect();
    keys.sort_by_key(|(k, _)| **k);
    for (&v, &(t, off)) in keys {
        let Some(p) = idx.get(v.0).copied().flatten() else {
            return Err(graph_err(
                "<alias>",
                format!("aliased value {} is never produced", v.0),
            ));
        };
        let name = &graph.nodes[p].name;
        if !matches!(graph.nodes[p].op, Op::Conv2d(_) | Op::Pool(_) | Op::Concat) {
            return Err(graph_err(
                name,
                format!(
                    "a {} cannot write at a channel offset, so its output cannot be an in-place concat input",
                    graph.nodes[p].op.kind()
                ),
            ));
        }
        let Some(c) = idx.get(t.0).copied().flatten() else {
            return Err(graph_err(
                name,
                format!("alias target value {} is never produced", t.0),
            ));
        };
        let cn = &graph.nodes[c];
        if cn.op != Op::Concat || cn.inputs.iter().filter(|&&u| u == v).count() != 1 {
            return Err(graph_err(
                name,
                format!(
                    "aliased into `{}`, which is not a concat reading it exactly once",
                    cn.name
                ),
            ));
        }
        let pos = cn.inputs.iter().position(|&u| u == v).unwrap();
        let want: usize = cn.inputs[..pos].iter().map(|u| graph.shapes[u.0][1]).sum();
        if want != off {
            return Err(graph_err(
                name,
                format!(
                    "aliased at channel {off} of `{}`, but it is that concat's input at channel {want}",
                    cn.name
                ),
            ));
        }
        if consumers[v.0] != [c] {
            return Err(graph_err(
                name,
                format!("aliased into `{}` but also read by other nodes", cn.name),
            ));
        }
        if graph.outputs.contains(&v) || graph.input == Some(v) {
            return Err(graph_err(
                name,
                "a graph input or output cannot be an in-place concat input".into(),
            ));
        }
    }
    Ok(())
}

impl Plan {
    /// Plans `graph` for the value shapes `shapes` (from
    /// [`Graph::infer_shapes`]). Validates the graph and its aliases. The
    /// [`Plan::placement`] is for f32 values ([`f32_bytes`]) under
    /// [`MemoryOptions::default`] (no size limits, so no
    /// [`Error::Limit`]).
    pub fn new(graph: &Graph, shapes: &[[usize; 4]]) -> Result<Plan> {
        Self::with_memory(graph, shapes, &f32_bytes, &MemoryOptions::default())
    }

    /// [`Plan::new`] with the placement made for `value_bytes` (the bytes
    /// of a storage root, given the value and its shape; rounded up to a
    /// multiple of 4 here) under `memory`'s alignment and limits. A root
    /// larger than `memory.max_binding_size` or `memory.max_buffer_size` is
    /// [`Error::Limit`] naming its producer; a bad alignment is
    /// [`Error::Invalid`]. The slots ([`Plan::slots`]) stay f32-sized.
    pub fn with_memory(
        graph: &Graph,
        shapes: &[[usize; 4]],
        value_bytes: &dyn Fn(ValueId, [usize; 4]) -> u64,
        memory: &MemoryOptions,
    ) -> Result<Plan> {
        graph.validate()?;
        check_alias(graph)?;
        if shapes.len() != graph.shapes.len() {
            return Err(graph_err(
                "<graph>",
                format!(
                    "{} shapes given for a graph of {} values",
                    shapes.len(),
                    graph.shapes.len()
                ),
            ));
        }
        let nv = shapes.len();
        let schedule: Vec<usize> = (0..graph.nodes.len()).collect();
        let steps = schedule.len();

        // Storage roots.
        let mut storage: Vec<Option<Storage>> = vec![None; nv];
        for &i in &schedule {
            let n = &graph.nodes[i];
            let v = n.output;
            storage[v.0] = Some(if graph.alias.contains_key(&v) {
                let (root, channel_offset) = graph.storage_of(v);
                Storage {
                    root,
                    channel_offset,
                }
            } else if n.op == Op::Flatten && is_flatten_view(shapes[n.inputs[0].0]) {
                storage[n.inputs[0].0].expect("inputs are produced earlier")
            } else {
                Storage {
                    root: v,
                    channel_offset: 0,
                }
            });
        }

        // Lifetimes of roots.
        let mut lifetimes: Vec<Option<Lifetime>> = vec![None; nv];
        let touch = |lt: &mut Vec<Option<Lifetime>>, root: ValueId, step: usize| {
            let e = lt[root.0].get_or_insert(Lifetime {
                first: step,
                last: step,
            });
            e.first = e.first.min(step);
            e.last = e.last.max(step);
        };
        for (step, &i) in schedule.iter().enumerate() {
            let n = &graph.nodes[i];
            let root = storage[n.output.0].unwrap().root;
            touch(&mut lifetimes, root, step);
            for v in &n.inputs {
                touch(&mut lifetimes, storage[v.0].unwrap().root, step);
            }
        }
        if let Some(v) = graph.input {
            touch(&mut lifetimes, storage[v.0].unwrap().root, 0);
        }
        for v in &graph.outputs {
            touch(&mut lifetimes, storage[v.0].unwrap().root, steps);
        }

        let bytes = |v: ValueId| shapes[v.0].iter().product::<usize>() as u64 * 4;
        let mut roots: Vec<ValueId> = (0..nv)
            .map(ValueId)
            .filter(|v| lifetimes[v.0].is_some())
            .collect();
        let values_bytes = roots.iter().map(|&v| bytes(v)).sum();

        // Lower bound: the most bytes alive at one step.
        let mut delta = vec![0i128; steps + 2];
        for &r in &roots {
            let lt = lifetimes[r.0].unwrap();
            delta[lt.first] += bytes(r) as i128;
            delta[lt.last + 1] -= bytes(r) as i128;
        }
        let (mut cur, mut lower_bound) = (0i128, 0i128);
        for d in delta {
            cur += d;
            lower_bound = lower_bound.max(cur);
        }

        // Greedy by size into shared slots.
        roots.sort_by_key(|&r| (std::cmp::Reverse(bytes(r)), lifetimes[r.0].unwrap().first));
        let mut slots: Vec<Slot> = Vec::new();
        let mut slot_of = vec![None; nv];
        for &r in &roots {
            let lt = lifetimes[r.0].unwrap();
            let best = slots
                .iter()
                .enumerate()
                .filter(|(_, s)| {
                    s.values
                        .iter()
                        .all(|u| !lifetimes[u.0].unwrap().overlaps(&lt))
                })
                .min_by_key(|(_, s)| s.bytes)
                .map(|(k, _)| k);
            let k = match best {
                Some(k) => k,
                None => {
                    slots.push(Slot {
                        bytes: bytes(r),
                        values: Vec::new(),
                    });
                    slots.len() - 1
                }
            };
            slots[k].values.push(r);
            slot_of[r.0] = Some(k);
        }
        let arena_bytes = slots.iter().map(|s| s.bytes).sum();
        let placement = Placement::new(
            graph,
            shapes,
            &schedule,
            &storage,
            &lifetimes,
            &slots,
            value_bytes,
            memory,
        )?;
        let plan = Plan {
            schedule,
            steps,
            shapes: shapes.to_vec(),
            storage,
            lifetimes,
            slot_of,
            slots,
            arena_bytes,
            values_bytes,
            lower_bound_bytes: lower_bound as u64,
            placement,
        };
        debug_assert!(plan.verify().is_ok(), "{:?}", plan.verify());
        Ok(plan)
    }

    /// Size in bytes of value `v`'s own elements (f32).
    pub fn value_bytes(&self, v: ValueId) -> u64 {
        self.shapes[v.0].iter().product::<usize>() as u64 * 4
    }

    /// The storage roots, in value order.
    pub fn roots(&self) -> impl Iterator<Item = ValueId> + '_ {
        (0..self.shapes.len())
            .map(ValueId)
            .filter(|v| self.lifetimes[v.0].is_some())
    }

    /// True when `v` is stored inside another value (alias or view).
    pub fn is_shared(&self, v: ValueId) -> bool {
        self.storage[v.0].is_some_and(|s| s.root != v)
    }

    /// The slot holding `v` (through its storage root).
    pub fn slot(&self, v: ValueId) -> Option<usize> {
        self.slot_of[self.storage[v.0]?.root.0]
    }

    /// Refuses values no buffer of this device can hold, with
    /// [`Error::Limit`] naming the value's producer, the limit and both
    /// values: `max_binding` is the device's `max_storage_buffer_binding_size`,
    /// `max_buffer` its `max_buffer_size` (plain numbers: the plan knows
    /// nothing of a GPU API).
    pub fn check_limits(&self, graph: &Graph, max_binding: u64, max_buffer: u64) -> Result<()> {
        for r in self.roots() {
            let needed = self.value_bytes(r);
            let name = graph
                .producer(r)
                .map_or_else(|| format!("value {}", r.0), |n| n.name.clone());
            for (limit, available) in [
                ("max_storage_buffer_binding_size", max_binding),
                ("max_buffer_size", max_buffer),
            ] {
                if needed > available {
                    return Err(Error::Limit {
                        node: name,
                        limit,
                        needed,
                        available,
                    });
                }
            }
        }
        Ok(())
    }

    /// Re-checks the plan's invariants: every value with storage has a root
    /// with a slot at least the value's size, and roots sharing a slot have
    /// disjoint lifetimes. Errors say which values break them.
    pub fn verify(&self) -> Result<()> {
        for (v, s) in self.storage.iter().enumerate() {
            let Some(s) = s else { continue };
            let Some(k) = self.slot_of[s.root.0] else {
                return Err(graph_err(
                    "<plan>",
                    format!("value {v}'s root {} has no slot", s.root.0),
                ));
            };
            let need = self.value_bytes(s.root).max(self.value_bytes(ValueId(v)));
            if self.slots[k].bytes < need {
                return Err(graph_err(
                    "<plan>",
                    format!(
                        "value {v} needs {need} bytes, slot {k} has {}",
                        self.slots[k].bytes
                    ),
                ));
            }
        }
        for (k, s) in self.slots.iter().enumerate() {
            for (i, a) in s.values.iter().enumerate() {
                for b in &s.values[i + 1..] {
                    let (la, lb) = (self.lifetimes[a.0].unwrap(), self.lifetimes[b.0].unwrap());
                    if la.overlaps(&lb) {
                        return Err(graph_err(
                            "<plan>",
                            format!(
                                "values {} {la:?} and {} {lb:?} overlap in slot {k}",
                                a.0, b.0
                            ),
                        ));
                    }
                }
            }
        }
        self.placement.verify(&self.lifetimes)
    }
}

/// Bytes of an f32 value of `shape`: its element count times 4. The byte
/// size [`Plan::new`] places with.
pub fn f32_bytes(_value: ValueId, shape: [usize; 4]) -> u64 {
    shape.iter().product::<usize>() as u64 * 4
}

/// Bytes of an f16 value of `shape` (the executor's f16 precision, native
/// or packed alike): its element count times 2, rounded up to a whole
/// 4-byte word (a packed pair, and wgpu's binding-size granule).
pub fn f16_bytes(_value: ValueId, shape: [usize; 4]) -> u64 {
    (shape.iter().product::<usize>() as u64 * 2).div_ceil(4) * 4
}

/// How [`Plan::with_memory`] lays storage roots out in bytes: plain
/// numbers, so that the plan depends on no GPU API (the executor copies them
/// from its device's limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryOptions {
    /// Every root's offset is a multiple of this: wgpu's
    /// `min_storage_buffer_offset_alignment` (256 on most devices). A power
    /// of two, at least 4.
    pub offset_alignment: u64,
    /// The largest root in bytes: the executor binds a root's whole byte
    /// range, so this is `max_storage_buffer_binding_size`.
    pub max_binding_size: u64,
    /// The largest buffer in bytes (`max_buffer_size`): a buffer never grows
    /// past it; roots that do not fit start another buffer.
    pub max_buffer_size: u64,
    /// Keep the storage a dispatch writes in another buffer than every
    /// value it reads (see [`Placement::apart`]). Needed while kernels bind
    /// their inputs read-only: wgpu refuses a buffer bound read-only and
    /// read-write in one dispatch. When every activation binding is
    /// read-write (wgpu accepts one buffer bound read-write several times),
    /// `false` lets a single buffer hold everything.
    pub split_read_write: bool,
}

impl Default for MemoryOptions {
    /// 256-byte offsets, no size limits, reads and writes in different
    /// buffers.
    fn default() -> Self {
        Self {
            offset_alignment: 256,
            max_binding_size: u64::MAX,
            max_buffer_size: u64::MAX,
            split_read_write: true,
        }
    }
}

/// Every storage root at a byte offset inside one of a few buffers.
///
/// **Lower bound.** At every schedule step the roots alive then need their
/// bytes at once, so no layout uses less than the largest such sum
/// ([`Placement::lower_bound_bytes`]). One buffer packed by offsets gets
/// close to it. But while a dispatch may not bind one buffer for read and
/// for write, the roots of every [`Placement::apart`] pair need different
/// buffers, and each buffer is as large as the most it ever holds at one
/// step, so the arena is the *sum of the buffers' peaks*, which can exceed
/// the lower bound however the bytes are packed. In a ResNet basic block
/// the input, conv1's output and the block's output are pairwise one
/// dispatch's read and write: three buffers of at least one unit each, one
/// of which also held the stem's four-unit conv output, so 6 units where
/// 5 are ever alive at once.
///
/// **Colouring.** Roots are coloured into buffers in birth order by a
/// dynamic programme over the schedule: a state is the buffer of every root
/// still alive plus each buffer's peak so far; a root may join any buffer
/// holding none of its `apart` partners, or a fresh one; the cost is the
/// sum of peaks. Of the states with the same alive roots in the same
/// buffers (buffers renamed canonically), only those whose peaks no other
/// one beats everywhere are kept, and of those the cheapest [`FRONT`] each
/// step. Without that cut the programme would be exact; with it, it still
/// reaches the optimum on every zoo model, as an exhaustive search in
/// `kernels-tests/tests/plan.rs` proves.
///
/// **Packing.** Inside its buffers, roots get offsets by greedy-by-size
/// (largest first, each into the tightest gap among the roots alive with
/// it, else above them), and separately by a narrow beam over birth order
/// that may also put a root just below an alive one. The old slot
/// assignment (each slot a buffer, every root at offset 0) is a third
/// candidate. The layout with the fewest bytes once every buffer is rounded
/// up to the alignment wins (then the fewest buffers), so the arena never
/// exceeds the slots' by more than that rounding. A root that would push
/// its buffer past [`MemoryOptions::max_buffer_size`] moves to an overflow
/// buffer holding none of its `apart` partners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Size in bytes of each buffer (a multiple of 4).
    pub buffers: Vec<u64>,
    /// Per value: `(buffer, byte offset)` when it is a storage root
    /// (`None` for aliases, views and values nothing produces). An alias or
    /// view lives in its root's bytes (see [`Plan::storage`]).
    pub at: Vec<Option<(usize, u64)>>,
    /// Per value: its bytes when it is a storage root (the size function's
    /// value rounded up to 4), else 0.
    pub bytes: Vec<u64>,
    /// Sum of [`Placement::buffers`]: the activation memory.
    pub arena_bytes: u64,
    /// Largest sum of [`Placement::bytes`] alive at one step: no layout can
    /// use less.
    pub lower_bound_bytes: u64,
    /// Pairs of roots that must be in different buffers: for every
    /// dispatch, the root it writes and each root it reads. A node reads its
    /// inputs (a fused conv also its residual) and writes its output's root,
    /// which for an in-place concat input is the concat's root; a concat's
    /// copy reads each input not aliased into it. Views and the input node
    /// dispatch nothing. Empty when not [`MemoryOptions::split_read_write`].
    pub apart: Vec<(ValueId, ValueId)>,
    /// The options it was made with.
    pub options: MemoryOptions,
}

/// The most states the colouring keeps per step (see [`Placement`]).
pub const FRONT: usize = 16;

/// States kept per step by the birth-order offset beam.
const PACK_WIDTH: usize = 16;

/// Offsets tried per state and root by the birth-order offset beam.
const PACK_TRIES: usize = 4;

fn align_up(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}

fn align_down(x: u64, a: u64) -> u64 {
    x / a * a
}

/// A candidate layout over root indices: buffer, offset, buffer sizes.
struct Layout {
    buf: Vec<usize>,
    off: Vec<u64>,
    sizes: Vec<u64>,
}

impl Layout {
    /// What the candidates are compared by: the bytes of the buffers laid
    /// end to end at aligned offsets (so that an extra buffer is never
    /// preferred for less than an alignment's worth of padding), then the
    /// number of buffers.
    fn score(&self, align: u64) -> (u64, usize) {
        let aligned = self.sizes.iter().map(|&s| align_up(s, align)).sum();
        (aligned, self.sizes.iter().filter(|&&s| s > 0).count())
    }
}

/// The roots to lay out, by root index: lifetimes, bytes, `apart` partners.
struct Problem {
    first: Vec<usize>,
    last: Vec<usize>,
    size: Vec<u64>,
    /// `size` rounded up to the alignment (at least one alignment unit):
    /// what a root takes from a buffer's running load.
    pad: Vec<u64>,
    /// Sorted indices of the roots each root must not share a buffer with.
    adj: Vec<Vec<u32>>,
    align: u64,
    max_buffer: u64,
}

impl Problem {
    fn overlaps(&self, a: usize, b: usize) -> bool {
        self.first[a] <= self.last[b] && self.first[b] <= self.last[a]
    }

    fn conflicts(&self, a: usize, b: usize) -> bool {
        self.adj[a].binary_search(&(b as u32)).is_ok()
    }

    /// Roots in birth order.
    fn births(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.first.len()).collect();
        order.sort_by_key(|&i| (self.first[i], i));
        order
    }
}

/// One colouring state: the buffer (canonical label) of every alive root,
/// sorted by root, each label's peak load, and its history entry.
struct ColourState {
    live: Vec<(u32, u8)>,
    caps: Vec<u64>,
    hist: u32,
}

/// How a state was reached: the root coloured, its label in the new
/// state, and the parent's labels renamed to the new state's (`u8::MAX`:
/// dropped, an idle empty buffer).
struct ColourHist {
    parent: u32,
    root: u32,
    label: u8,
    rename: Vec<u8>,
}

/// Colours roots into buffers minimising the sum of buffer peak loads (see
/// [`Placement`]). Returns each root's buffer.
fn colour(p: &Problem) -> Vec<usize> {
    let n = p.first.len();
    let mut hist = vec![ColourHist {
        parent: u32::MAX,
        root: 0,
        label: 0,
        rename: Vec::new(),
    }];
    let mut front = vec![ColourState {
        live: Vec::new(),
        caps: Vec::new(),
        hist: 0,
    }];
    for r in p.births() {
        // Per state: the roots still alive and each buffer's load now.
        type Alive = (Vec<(u32, u8)>, Vec<u64>);
        let alive: Vec<Alive> = front
            .iter()
            .map(|st| {
                let live: Vec<(u32, u8)> = st
                    .live
                    .iter()
                    .copied()
                    .filter(|&(u, _)| p.last[u as usize] >= p.first[r])
                    .collect();
                let mut load = vec![0u64; st.caps.len() + 1];
                for &(u, b) in &live {
                    load[b as usize] += p.pad[u as usize];
                }
                (live, load)
            })
            .collect();
        // Every move (state, buffer) with its cost, cheapest first; only
        // the moves examined until FRONT states are kept get built.
        let mut moves: Vec<(u64, usize, usize, usize)> = Vec::new();
        for (si, st) in front.iter().enumerate() {
            let (live, load) = &alive[si];
            let k = st.caps.len();
            let total: u64 = st.caps.iter().sum();
            for (b, &now) in load.iter().enumerate() {
                if b < k {
                    // Not with an apart partner, nor past the largest buffer
                    // (a fresh buffer is always allowed).
                    let partner = live
                        .iter()
                        .any(|&(u, l)| l as usize == b && p.conflicts(r, u as usize));
                    if partner || now + p.size[r] > p.max_buffer {
                        continue;
                    }
                } else if k + 1 >= u8::MAX as usize {
                    continue; // labels are u8, u8::MAX meaning "dropped"
                }
                let old = st.caps.get(b).copied().unwrap_or(0);
                let cost = total - old + old.max(now + p.pad[r]);
                moves.push((cost, k + usize::from(b == k), si, b));
            }
        }
        moves.sort_unstable();
        let mut next: Vec<ColourState> = Vec::new();
        let (mut caps, mut low, mut ids, mut rename, mut key) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (_, _, si, b) in moves {
            if next.len() == FRONT {
                break;
            }
            let (st, (live, load)) = (&front[si], &alive[si]);
            let k = st.caps.len();
            caps.clear();
            caps.extend_from_slice(&st.caps);
            if b == k {
                caps.push(0);
            }
            caps[b] = caps[b].max(load[b] + p.pad[r]);
            // Canonical names: buffers with alive roots by their lowest
            // root, then idle ones by peak (largest first); idle empty
            // buffers are dropped (a fresh one is always available).
            let kk = caps.len();
            low.clear();
            low.resize(kk, u32::MAX);
            for &(u, l) in live.iter().chain([(r as u32, b as u8)].iter()) {
                low[l as usize] = low[l as usize].min(u);
            }
            ids.clear();
            ids.extend((0..kk).filter(|&x| low[x] != u32::MAX || caps[x] > 0));
            ids.sort_by_key(|&x| (low[x], std::cmp::Reverse(caps[x])));
            rename.clear();
            rename.resize(kk, u8::MAX);
            for (i, &x) in ids.iter().enumerate() {
                rename[x] = i as u8;
            }
            key.clear();
            key.extend(live.iter().map(|&(u, l)| (u, rename[l as usize])));
            let at = key.partition_point(|&(u, _)| u < r as u32);
            key.insert(at, (r as u32, rename[b])); // `live` is sorted by root
            let new_caps: Vec<u64> = ids.iter().map(|&x| caps[x]).collect();
            // Keep only if no kept state (at most FRONT) with the same alive
            // layout has peaks at most these everywhere.
            let dominated = next.iter().any(|o| {
                o.live == key
                    && (0..o.caps.len().max(new_caps.len())).all(|i| {
                        o.caps.get(i).copied().unwrap_or(0) <= new_caps.get(i).copied().unwrap_or(0)
                    })
            });
            if dominated {
                continue;
            }
            hist.push(ColourHist {
                parent: st.hist,
                root: r as u32,
                label: rename[b],
                rename: rename[..k].to_vec(),
            });
            next.push(ColourState {
                live: key.clone(),
                caps: new_caps,
                hist: (hist.len() - 1) as u32,
            });
        }
        front = next;
    }
    let best = front
        .iter()
        .min_by_key(|s| (s.caps.iter().sum::<u64>(), s.caps.len()))
        .expect("a fresh buffer is always allowed");
    // Walk back, renaming each state's labels into the final state's.
    let mut col = vec![usize::MAX; n];
    let mut to_final: Vec<u8> = (0..best.caps.len() as u8).collect();
    let mut h = best.hist as usize;
    while h != 0 {
        let e = &hist[h];
        col[e.root as usize] = to_final[e.label as usize] as usize;
        to_final = e
            .rename
            .iter()
            .map(|&x| {
                if x == u8::MAX {
                    u8::MAX
                } else {
                    to_final[x as usize]
                }
            })
            .collect();
        h = e.parent as usize;
    }
    debug_assert!(col.iter().all(|&c| c != usize::MAX));
    col
}

/// The tightest aligned gap for `r` among `placed` roots (root, offset)
/// alive with it, else the aligned top of them.
fn best_offset(p: &Problem, placed: &[(usize, u64)], r: usize) -> u64 {
    let mut iv: Vec<(u64, u64)> = placed
        .iter()
        .filter(|&&(u, _)| p.overlaps(u, r))
        .map(|&(u, o)| (o, o + p.size[u]))
        .collect();
    iv.sort_unstable();
    let (mut cur, mut best) = (0u64, None::<(u64, u64)>);
    for (a, e) in iv {
        if a >= cur + p.size[r] {
            let waste = a - cur - p.size[r];
            if best.is_none_or(|(w, _)| waste < w) {
                best = Some((waste, cur));
            }
        }
        cur = cur.max(align_up(e, p.align));
    }
    best.map_or(cur, |(_, o)| o)
}

/// Greedy by size inside the buffers of `col`; a root that would push its
/// buffer past the maximum goes to an overflow buffer holding none of its
/// `apart` partners.
fn pack_greedy(p: &Problem, col: &[usize]) -> Layout {
    let n = p.first.len();
    let k = col.iter().map(|&c| c + 1).max().unwrap_or(0);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(p.size[i]), p.first[i], i));
    let mut placed: Vec<Vec<(usize, u64)>> = vec![Vec::new(); k];
    let mut buf = vec![0; n];
    let mut off = vec![0; n];
    for r in order {
        let mut b = col[r];
        let mut o = best_offset(p, &placed[b], r);
        if o + p.size[r] > p.max_buffer {
            let spill = (k..placed.len()).find_map(|c| {
                if placed[c].iter().any(|&(u, _)| p.conflicts(r, u)) {
                    return None;
                }
                let o = best_offset(p, &placed[c], r);
                (o + p.size[r] <= p.max_buffer).then_some((c, o))
            });
            (b, o) = spill.unwrap_or_else(|| {
                placed.push(Vec::new());
                (placed.len() - 1, 0)
            });
        }
        placed[b].push((r, o));
        buf[r] = b;
        off[r] = o;
    }
    let sizes = placed
        .iter()
        .map(|v| v.iter().map(|&(u, o)| o + p.size[u]).max().unwrap_or(0))
        .collect();
    Layout { buf, off, sizes }
}

/// Offsets for the buffers of `col` by a beam over birth order: each root
/// at 0, just above or just below an alive root of its buffer, or at the
/// buffer's top; the cheapest [`PACK_WIDTH`] partial layouts survive each
/// step. `None` when no state can keep every buffer within the maximum.
fn pack_beam(p: &Problem, col: &[usize]) -> Option<Layout> {
    struct State {
        sizes: Vec<u64>,
        live: Vec<(u32, u64)>,
        hist: u32,
    }
    let n = p.first.len();
    let k = col.iter().map(|&c| c + 1).max().unwrap_or(0);
    let mut hist: Vec<(u32, u32, u64)> = vec![(u32::MAX, 0, 0)];
    let mut states = vec![State {
        sizes: vec![0; k],
        live: Vec::new(),
        hist: 0,
    }];
    for r in p.births() {
        let (b, s) = (col[r], p.size[r]);
        // Per state: the roots still alive (in birth order, as in every
        // state), then every move (cost, offset, state), cheapest first.
        let alive: Vec<Vec<(u32, u64)>> = states
            .iter()
            .map(|st| {
                st.live
                    .iter()
                    .copied()
                    .filter(|&(u, _)| p.last[u as usize] >= p.first[r])
                    .collect()
            })
            .collect();
        let mut moves: Vec<(u64, u64, usize)> = Vec::new();
        for (si, st) in states.iter().enumerate() {
            let live = &alive[si];
            let mut offs = vec![0];
            for &(u, o) in live {
                if col[u as usize] == b {
                    offs.push(align_up(o + p.size[u as usize], p.align));
                    if o >= s {
                        offs.push(align_down(o - s, p.align));
                    }
                }
            }
            if st.sizes[b] >= s {
                offs.push(align_down(st.sizes[b] - s, p.align));
            }
            // The offsets where r fits, least growth first (then lowest);
            // at most PACK_TRIES of them.
            offs.sort_unstable();
            offs.dedup();
            offs.retain(|&o| {
                o + s <= p.max_buffer
                    && live.iter().all(|&(u, uo)| {
                        col[u as usize] != b || uo + p.size[u as usize] <= o || o + s <= uo
                    })
            });
            offs.sort_by_key(|&o| ((o + s).saturating_sub(st.sizes[b]), o));
            offs.truncate(PACK_TRIES);
            let total: u64 = st.sizes.iter().sum();
            for o in offs {
                moves.push((total - st.sizes[b] + st.sizes[b].max(o + s), o, si));
            }
        }
        if moves.is_empty() {
            return None;
        }
        moves.sort_unstable();
        // The cheapest PACK_WIDTH distinct layouts.
        let mut next: Vec<State> = Vec::new();
        for (_, o, si) in moves {
            if next.len() == PACK_WIDTH {
                break;
            }
            let mut sizes = states[si].sizes.clone();
            sizes[b] = sizes[b].max(o + s);
            let mut live = alive[si].clone();
            live.push((r as u32, o));
            if next.iter().any(|x| x.live == live && x.sizes == sizes) {
                continue;
            }
            hist.push((states[si].hist, r as u32, o));
            next.push(State {
                sizes,
                live,
                hist: (hist.len() - 1) as u32,
            });
        }
        states = next;
    }
    let best = &states[0];
    let mut off = vec![0; n];
    let mut h = best.hist as usize;
    while h != 0 {
        let (parent, r, o) = hist[h];
        off[r as usize] = o;
        h = parent as usize;
    }
    Some(Layout {
        buf: col.to_vec(),
        off,
        sizes: best.sizes.clone(),
    })
}

impl Placement {
    /// Lays out the roots of a plan under construction (see [`Placement`]).
    #[allow(clippy::too_many_arguments)]
    fn new(
        graph: &Graph,
        shapes: &[[usize; 4]],
        schedule: &[usize],
        storage: &[Option<Storage>],
        lifetimes: &[Option<Lifetime>],
        slots: &[Slot],
        value_bytes: &dyn Fn(ValueId, [usize; 4]) -> u64,
        options: &MemoryOptions,
    ) -> Result<Placement> {
        let align = options.offset_alignment;
        if align < 4 || !align.is_power_of_two() {
            return Err(Error::Invalid(format!(
                "offset alignment {align} is not a power of two of at least 4"
            )));
        }
        let nv = shapes.len();
        let roots: Vec<ValueId> = (0..nv)
            .map(ValueId)
            .filter(|v| lifetimes[v.0].is_some())
            .collect();
        let mut index = vec![usize::MAX; nv];
        for (i, r) in roots.iter().enumerate() {
            index[r.0] = i;
        }
        let mut bytes = vec![0u64; nv];
        for &r in &roots {
            let b = align_up(value_bytes(r, shapes[r.0]), 4);
            let name = || {
                graph
                    .producer(r)
                    .map_or_else(|| format!("value {}", r.0), |n| n.name.clone())
            };
            for (limit, available) in [
                ("max_storage_buffer_binding_size", options.max_binding_size),
                ("max_buffer_size", options.max_buffer_size),
            ] {
                if b > available {
                    return Err(Error::Limit {
                        node: name(),
                        limit,
                        needed: b,
                        available,
                    });
                }
            }
            bytes[r.0] = b;
        }

        // Lower bound: the most bytes alive at one step.
        let steps = schedule.len();
        let mut delta = vec![0i128; steps + 2];
        for &r in &roots {
            let lt = lifetimes[r.0].expect("roots have lifetimes");
            delta[lt.first] += bytes[r.0] as i128;
            delta[lt.last + 1] -= bytes[r.0] as i128;
        }
        let (mut cur, mut lower_bound) = (0i128, 0i128);
        for d in delta {
            cur += d;
            lower_bound = lower_bound.max(cur);
        }

        // Root pairs one dispatch writes and reads.
        let mut apart: Vec<(ValueId, ValueId)> = Vec::new();
        if options.split_read_write {
            let root = |v: ValueId| storage[v.0].expect("inputs are produced").root;
            for &i in schedule {
                let n = &graph.nodes[i];
                let view = n.op == Op::Flatten && is_flatten_view(shapes[n.inputs[0].0]);
                if n.op == Op::Input || view {
                    continue;
                }
                let w = root(n.output);
                for &v in &n.inputs {
                    let in_place = n.op == Op::Concat
                        && graph.alias.get(&v).is_some_and(|&(t, _)| t == n.output);
                    if in_place {
                        continue;
                    }
                    let r = root(v);
                    if r == w {
                        return Err(graph_err(
                            &n.name,
                            format!(
                                "reads value {} from the storage it writes (root {}), which no buffer layout can bind",
                                v.0, w.0
                            ),
                        ));
                    }
                    apart.push((w.min(r), w.max(r)));
                }
            }
            apart.sort_unstable();
            apart.dedup();
        }

        let nr = roots.len();
        let mut adj: Vec<Vec<u32>> = vec![Vec::new(); nr];
        for &(a, b) in &apart {
            adj[index[a.0]].push(index[b.0] as u32);
            adj[index[b.0]].push(index[a.0] as u32);
        }
        for a in &mut adj {
            a.sort_unstable();
        }
        let lt = |r: &ValueId| lifetimes[r.0].expect("roots have lifetimes");
        let p = Problem {
            first: roots.iter().map(|r| lt(r).first).collect(),
            last: roots.iter().map(|r| lt(r).last).collect(),
            size: roots.iter().map(|r| bytes[r.0]).collect(),
            pad: roots
                .iter()
                .map(|r| align_up(bytes[r.0].max(1), align))
                .collect(),
            adj,
            align,
            max_buffer: options.max_buffer_size,
        };

        // Candidates: the coloured layout packed two ways, and the slots.
        let col = colour(&p);
        let mut best = pack_greedy(&p, &col);
        if let Some(l) = pack_beam(&p, &col) {
            if l.score(align) < best.score(align) {
                best = l;
            }
        }
        let mut slot_layout = Layout {
            buf: vec![0; nr],
            off: vec![0; nr],
            sizes: vec![0; slots.len()],
        };
        for (k, s) in slots.iter().enumerate() {
            for r in &s.values {
                slot_layout.buf[index[r.0]] = k;
                slot_layout.sizes[k] = slot_layout.sizes[k].max(bytes[r.0]);
            }
        }
        if slot_layout.score(align) < best.score(align) {
            best = slot_layout;
        }

        // Drop empty buffers and number the rest in order of first use.
        let mut order: Vec<usize> = (0..nr).collect();
        order.sort_by_key(|&i| (p.first[i], i));
        let mut rename = vec![usize::MAX; best.sizes.len()];
        let mut buffers = Vec::new();
        for i in order {
            let b = best.buf[i];
            if rename[b] == usize::MAX {
                rename[b] = buffers.len();
                buffers.push(best.sizes[b]);
            }
        }
        let mut at = vec![None; nv];
        for (i, r) in roots.iter().enumerate() {
            at[r.0] = Some((rename[best.buf[i]], best.off[i]));
        }
        Ok(Placement {
            arena_bytes: buffers.iter().sum(),
            buffers,
            at,
            bytes,
            lower_bound_bytes: lower_bound as u64,
            apart,
            options: *options,
        })
    }

    /// `(buffer, byte offset)` of the storage holding `v` (its root's; an
    /// alias starts at a channel offset within it, see [`Plan::storage`]).
    pub fn of(&self, plan: &Plan, v: ValueId) -> Option<(usize, u64)> {
        self.at[plan.storage[v.0]?.root.0]
    }

    /// Re-checks the placement against the roots' `lifetimes` (those of its
    /// [`Plan`]): exactly the roots are placed; every root lies inside its
    /// buffer at an aligned offset and within the binding limit; no buffer
    /// exceeds the buffer limit; two roots alive at a common step share no
    /// byte of one buffer; `apart` pairs are in different buffers; the
    /// reported sizes add up. Errors name the values at fault.
    pub fn verify(&self, lifetimes: &[Option<Lifetime>]) -> Result<()> {
        let err = |m: String| Err(graph_err("<placement>", m));
        let o = &self.options;
        let mut by_buffer: Vec<Vec<usize>> = vec![Vec::new(); self.buffers.len()];
        for (v, lt) in lifetimes.iter().enumerate() {
            match (lt, self.at.get(v).copied().flatten()) {
                (None, None) => {}
                (None, Some(_)) => return err(format!("value {v} is placed but is no root")),
                (Some(_), None) => return err(format!("root {v} is not placed")),
                (Some(_), Some((b, off))) => {
                    let bytes = self.bytes[v];
                    let Some(&size) = self.buffers.get(b) else {
                        return err(format!(
                            "root {v} is in buffer {b} of {}",
                            self.buffers.len()
                        ));
                    };
                    if !off.is_multiple_of(o.offset_alignment) || !bytes.is_multiple_of(4) {
                        return err(format!(
                            "root {v} at offset {off} ({bytes} bytes) breaks the {}-byte alignment",
                            o.offset_alignment
                        ));
                    }
                    if off + bytes > size || bytes > o.max_binding_size {
                        return err(format!(
                            "root {v} ({bytes} bytes at {off}) does not fit buffer {b} ({size} bytes) or the binding limit {}",
                            o.max_binding_size
                        ));
                    }
                    by_buffer[b].push(v);
                }
            }
        }
        for (b, vs) in by_buffer.iter().enumerate() {
            if self.buffers[b] > o.max_buffer_size || !self.buffers[b].is_multiple_of(4) {
                return err(format!(
                    "buffer {b} has {} bytes (limit {})",
                    self.buffers[b], o.max_buffer_size
                ));
            }
            for (i, &u) in vs.iter().enumerate() {
                for &v in &vs[i + 1..] {
                    let (lu, lv) = (lifetimes[u].unwrap(), lifetimes[v].unwrap());
                    let (ou, ov) = (self.at[u].unwrap().1, self.at[v].unwrap().1);
                    let disjoint = ou + self.bytes[u] <= ov || ov + self.bytes[v] <= ou;
                    if lu.overlaps(&lv) && !disjoint {
                        return err(format!(
                            "roots {u} {lu:?} and {v} {lv:?} share bytes of buffer {b}"
                        ));
                    }
                }
            }
        }
        for &(a, b) in &self.apart {
            let (ba, bb) = (self.at[a.0].map(|x| x.0), self.at[b.0].map(|x| x.0));
            if ba.is_none() || ba == bb {
                return err(format!(
                    "roots {} and {} are read and written by one dispatch but share buffer {ba:?}",
                    a.0, b.0
                ));
            }
        }
        if self.arena_bytes != self.buffers.iter().sum::<u64>()
            || self.lower_bound_bytes > self.arena_bytes
        {
            return err(format!(
                "arena {} is not the sum of the buffers or is below the lower bound {}",
                self.arena_bytes, self.lower_bound_bytes
            ));
        }
        Ok(())
    }
}

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
//! Invariants ([`Plan::verify`] re-checks them): every produced value has a
//! storage root; every root has a slot at least its size; two roots in one
//! slot have disjoint lifetimes.

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
    /// [`Graph::infer_shapes`]). Validates the graph and its aliases.
    pub fn new(graph: &Graph, shapes: &[[usize; 4]]) -> Result<Plan> {
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
        };
        debug_assert!(plan.verify().is_ok());
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
        Ok(())
    }
}

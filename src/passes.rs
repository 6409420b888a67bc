//! Graph → graph optimisation passes.
//!
//! Each pass is a plain function over a [`Graph`], testable alone, that
//! rewrites it in place and returns how many rewrites it made. [`optimize`]
//! runs the enabled ones in a fixed order on a copy:
//!
//! 1. [`remove_dead`] — drop nodes whose output reaches no graph output (run
//!    first so that a dead reader does not block a fusion, and last again).
//! 2. [`fold_batchnorm`] — a BN reading a conv's only output becomes the
//!    conv's [`Conv2d::bn`](crate::graph::Conv2d::bn).
//! 3. [`fuse_epilogue`] — ReLU or a clamp (ReLU6, `Clip`) after conv/BN/add
//!    becomes the producer's `clamp` epilogue; an
//!    add of a conv output and another value becomes the conv's
//!    [`Conv2d::residual`](crate::graph::Conv2d::residual) (with the branch scale in [`Conv2d::out_scale`](crate::graph::Conv2d::out_scale)).
//! 4. [`inplace_concat`] — concat inputs written by a conv or pool straight
//!    into their channel range of the concat output ([`Graph::alias`]).
//!
//! Invariants every pass keeps:
//! - nodes stay in a topological order and the graph still validates;
//! - `Graph::shapes` stays indexable by every [`ValueId`] (a removed value
//!   keeps its shape entry, it is merely unused);
//! - graph outputs keep their meaning: results change by f32 rounding only
//!   (a folded BN computes `acc·scale + shift` instead of
//!   `(acc + bias − mean)·γ/√(var+eps) + β`);
//! - a value that is a graph output is never fused away or aliased.
//!
//! On error (the input graph does not validate) the graph is unchanged.

use crate::error::Result;
use crate::graph::{Clamp, Graph, Node, Op, ValueId};
use std::collections::HashSet;

/// Which passes [`optimize`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassOptions {
    /// Run [`fold_batchnorm`].
    pub fold_bn: bool,
    /// Run [`fuse_epilogue`].
    pub fuse_epilogue: bool,
    /// Run [`inplace_concat`].
    pub inplace_concat: bool,
    /// Run [`remove_dead`].
    pub remove_dead: bool,
}

impl Default for PassOptions {
    /// Every pass on.
    fn default() -> Self {
        Self {
            fold_bn: true,
            fuse_epilogue: true,
            inplace_concat: true,
            remove_dead: true,
        }
    }
}

impl PassOptions {
    /// Every pass off: [`optimize`] returns the graph as it is.
    pub fn none() -> Self {
        Self {
            fold_bn: false,
            fuse_epilogue: false,
            inplace_concat: false,
            remove_dead: false,
        }
    }
}

/// What [`optimize`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Batchnorms folded into convs.
    pub folded_bn: usize,
    /// ReLUs and adds fused into their producer's epilogue.
    pub fused_epilogues: usize,
    /// Concat inputs made zero-copy.
    pub inplace_concats: usize,
    /// Dead nodes removed.
    pub removed_dead: usize,
}

/// Runs the enabled passes on a copy of `graph` (see the module doc for the
/// order). Errors when `graph` does not validate.
pub fn optimize(graph: &Graph, opts: &PassOptions) -> Result<Graph> {
    optimize_report(graph, opts).map(|(g, _)| g)
}

/// [`optimize`], also saying how many rewrites each pass made.
pub fn optimize_report(graph: &Graph, opts: &PassOptions) -> Result<(Graph, PassReport)> {
    graph.validate()?;
    let mut g = graph.clone();
    let mut r = PassReport::default();
    if opts.remove_dead {
        r.removed_dead += remove_dead(&mut g)?;
    }
    if opts.fold_bn {
        r.folded_bn += fold_batchnorm(&mut g)?;
    }
    if opts.fuse_epilogue {
        r.fused_epilogues += fuse_epilogue(&mut g)?;
    }
    if opts.inplace_concat {
        r.inplace_concats += inplace_concat(&mut g)?;
    }
    if opts.remove_dead {
        r.removed_dead += remove_dead(&mut g)?;
    }
    g.validate()?;
    Ok((g, r))
}

/// Replaces every use of `from` by `to`: node inputs, graph outputs and
/// in-place concat aliases (keys and targets).
fn rewire(g: &mut Graph, from: ValueId, to: ValueId) {
    for n in &mut g.nodes {
        for v in &mut n.inputs {
            if *v == from {
                *v = to;
            }
        }
    }
    for v in &mut g.outputs {
        if *v == from {
            *v = to;
        }
    }
    if let Some(a) = g.alias.remove(&from) {
        g.alias.insert(to, a);
    }
    for (target, _) in g.alias.values_mut() {
        if *target == from {
            *target = to;
        }
    }
}

fn node_index(g: &Graph) -> Vec<Option<usize>> {
    let mut idx = vec![None; g.shapes.len()];
    for (i, n) in g.nodes.iter().enumerate() {
        idx[n.output.0] = Some(i);
    }
    idx
}

/// True when `v` may be fused away: read only by node `reader`, not a graph
/// output, not the graph input, not part of an in-place concat.
fn private_to(g: &Graph, consumers: &[Vec<usize>], v: ValueId, reader: usize) -> bool {
    consumers[v.0] == [reader]
        && !g.outputs.contains(&v)
        && g.input != Some(v)
        && !g.alias.contains_key(&v)
        && !g.alias.values().any(|(t, _)| *t == v)
}

/// Folds each batchnorm whose input is the output of a conv that (a) has no
/// other consumer, (b) is not a graph output, and (c) has no BN, residual,
/// clamp or branch scale yet, into that conv ([`crate::graph::Conv2d::bn`];
/// a fused BN clamp becomes the conv's clamp). The BN node is deleted and its
/// readers read the conv's output. Returns the number folded.
pub fn fold_batchnorm(g: &mut Graph) -> Result<usize> {
    g.validate()?;
    let mut count = 0;
    let mut i = 0;
    while i < g.nodes.len() {
        let Op::BatchNorm { eps, clamp } = g.nodes[i].op else {
            i += 1;
            continue;
        };
        let x = g.nodes[i].inputs[0];
        let consumers = g.consumers();
        let idx = node_index(g);
        let Some(p) = idx[x.0] else {
            i += 1;
            continue;
        };
        let ok = match &g.nodes[p].op {
            Op::Conv2d(c) => {
                c.bn.is_none() && c.residual.is_none() && c.clamp.is_none() && c.out_scale == 1.0
            }
            _ => false,
        };
        if !ok || !private_to(g, &consumers, x, i) {
            i += 1;
            continue;
        }
        let bn = g.nodes.remove(i);
        if let Op::Conv2d(c) = &mut g.nodes[p].op {
            c.bn = Some((bn.name.clone(), eps));
            c.clamp = clamp;
        }
        rewire(g, bn.output, x);
        count += 1;
        // `i` now points at the node after the removed BN.
    }
    Ok(count)
}

/// Fuses epilogues into their producers, until nothing changes:
/// - a ReLU or clamp (ReLU6, `Clip`) whose input is a conv, batchnorm or
///   add output read by nothing else (and with no clamp yet) becomes that
///   producer's `clamp` epilogue;
/// - `alpha·a + beta·b` where one operand is a conv output read by nothing
///   else, with no residual or clamp yet, becomes that conv with
///   `out_scale ·= its coefficient` and `residual = Some(other coefficient)`
///   reading the other operand; the add's clamp carries over. The conv moves
///   to the add's position so the residual is produced before it. When both
///   operands qualify the one produced later is chosen.
///
/// Returns the number of nodes fused away.
pub fn fuse_epilogue(g: &mut Graph) -> Result<usize> {
    g.validate()?;
    let mut count = 0;
    loop {
        let consumers = g.consumers();
        let idx = node_index(g);
        let mut done = false;
        for i in 0..g.nodes.len() {
            match g.nodes[i].op {
                Op::Relu | Op::Clip(_) => {
                    let clamp = match g.nodes[i].op {
                        Op::Clip(c) => c,
                        _ => Clamp::RELU,
                    };
                    let x = g.nodes[i].inputs[0];
                    let Some(p) = idx[x.0] else { continue };
                    let can = match &g.nodes[p].op {
                        Op::Conv2d(c) => c.clamp.is_none(),
                        Op::BatchNorm { clamp, .. } | Op::Add { clamp, .. } => clamp.is_none(),
                        _ => false,
                    };
                    if !can || !private_to(g, &consumers, x, i) {
                        continue;
                    }
                    // A BN or add cannot write at a channel offset: keep the
                    // ReLU or clamp when its output is an in-place concat input.
                    let out = g.nodes[i].output;
                    if g.alias.contains_key(&out) && !matches!(g.nodes[p].op, Op::Conv2d(_)) {
                        continue;
                    }
                    match &mut g.nodes[p].op {
                        Op::Conv2d(c) => c.clamp = Some(clamp),
                        Op::BatchNorm { clamp: k, .. } | Op::Add { clamp: k, .. } => {
                            *k = Some(clamp)
                        }
                        _ => unreachable!(),
                    }
                    g.nodes.remove(i);
                    rewire(g, out, x);
                    done = true;
                }
                Op::Add { alpha, beta, clamp } => {
                    let [a, b] = [g.nodes[i].inputs[0], g.nodes[i].inputs[1]];
                    if a == b {
                        continue;
                    }
                    let fusable = |v: ValueId| -> Option<usize> {
                        let p = idx[v.0]?;
                        match &g.nodes[p].op {
                            Op::Conv2d(c)
                                if c.residual.is_none()
                                    && c.clamp.is_none()
                                    && private_to(g, &consumers, v, i) =>
                            {
                                Some(p)
                            }
                            _ => None,
                        }
                    };
                    let (pa, pb) = (fusable(a), fusable(b));
                    // (conv node, its coefficient, other operand, its coefficient)
                    let pick = match (pa, pb) {
                        (Some(x), Some(y)) if y > x => (y, beta, a, alpha),
                        (Some(x), _) => (x, alpha, b, beta),
                        (None, Some(y)) => (y, beta, a, alpha),
                        (None, None) => continue,
                    };
                    let (p, k_conv, other, k_other) = pick;
                    let add = g.nodes[i].clone();
                    let mut conv = g.nodes[p].clone();
                    if let Op::Conv2d(c) = &mut conv.op {
                        c.out_scale *= k_conv;
                        c.residual = Some(k_other);
                        c.clamp = clamp;
                    }
                    conv.inputs.push(other);
                    // Move the conv to the add's place: its inputs come
                    // earlier still, and its readers (the add's) come later.
                    let conv_out = conv.output;
                    g.nodes[i] = conv;
                    g.nodes.remove(p);
                    rewire(g, add.output, conv_out);
                    done = true;
                }
                _ => continue,
            }
            count += 1;
            break;
        }
        if !done {
            return Ok(count);
        }
    }
}

/// Makes concats zero-copy where it can: each concat input that is produced
/// by a conv, a windowed pool or another concat (nested concats resolve via
/// [`Graph::storage_of`]), is read by nothing but this concat (and only
/// once), is not a graph output, not the graph input and not aliased yet, is
/// recorded in [`Graph::alias`] as living at its channel offset of the
/// concat's output. Returns the number of inputs aliased.
pub fn inplace_concat(g: &mut Graph) -> Result<usize> {
    g.validate()?;
    let consumers = g.consumers();
    let idx = node_index(g);
    let mut count = 0;
    for ci in 0..g.nodes.len() {
        if g.nodes[ci].op != Op::Concat {
            continue;
        }
        let out = g.nodes[ci].output;
        let mut off = 0;
        for &v in &g.nodes[ci].inputs {
            let c = g.shapes[v.0][1];
            let producer_ok = idx[v.0]
                .is_some_and(|p| matches!(g.nodes[p].op, Op::Conv2d(_) | Op::Pool(_) | Op::Concat));
            let once = g.nodes[ci].inputs.iter().filter(|&&u| u == v).count() == 1;
            if producer_ok
                && once
                && consumers[v.0] == [ci]
                && !g.outputs.contains(&v)
                && g.input != Some(v)
                && !g.alias.contains_key(&v)
            {
                g.alias.insert(v, (out, off));
                count += 1;
            }
            off += c;
        }
    }
    Ok(count)
}

/// Removes nodes whose output reaches no graph output (the input node always
/// stays), and alias entries of removed values. Returns the number removed.
pub fn remove_dead(g: &mut Graph) -> Result<usize> {
    g.validate()?;
    let mut live: HashSet<ValueId> = g.outputs.iter().copied().collect();
    for n in g.nodes.iter().rev() {
        if live.contains(&n.output) {
            live.extend(n.inputs.iter().copied());
        }
    }
    let before = g.nodes.len();
    let keep: Vec<Node> = g
        .nodes
        .drain(..)
        .filter(|n| n.op == Op::Input || live.contains(&n.output))
        .collect();
    g.nodes = keep;
    g.alias
        .retain(|k, (t, _)| live.contains(k) && live.contains(t));
    Ok(before - g.nodes.len())
}

//! Planner tests (CPU only): the memory plan never lets two values that are
//! alive at once share bytes, every value fits its slot, and the reported
//! sizes mean what they say. A property sweep over random DAGs, before and
//! after the passes, re-derives lifetimes from the graph independently of
//! the planner; named cases pin down views, outputs, the input and limits.

use kernels_tests::Rng;
use resincept::graph::{Conv2d, Graph, Op, Pool, ValueId};
use resincept::passes::{self, PassOptions};
use resincept::plan::{check_alias, is_flatten_view, Plan};
use resincept::Error;

/// A random DAG of every op kind: values are picked from anywhere earlier
/// (long skip connections stress the lifetimes), shapes vary through
/// strided convs and pools, some values are extra outputs, some dead.
fn random_dag(seed: u64) -> Graph {
    let mut r = Rng(seed);
    let mut g = Graph::new();
    let hw = 6 + r.below(6);
    let x = g
        .input("x", [1 + r.below(2), 1 + r.below(4), hw, hw])
        .unwrap();
    let mut vals = vec![x];
    let n = 6 + r.below(30);
    for i in 0..n {
        let v = r.pick(&vals);
        let [_, c, h, _] = g.shapes[v.0];
        let name = format!("n{i}");
        let out = match r.below(9) {
            0 | 1 => {
                let k = if h >= 3 { r.pick(&[1, 3]) } else { 1 };
                let s = if h >= 4 && r.below(4) == 0 { 2 } else { 1 };
                g.conv2d(
                    &name,
                    v,
                    Conv2d::new(1 + r.below(6), k).pad(k / 2).stride(s),
                )
            }
            2 => g.batchnorm(&name, v, 1e-5),
            3 => g.relu(&name, v),
            4 => {
                let same: Vec<_> = vals
                    .iter()
                    .copied()
                    .filter(|u| g.shapes[u.0] == g.shapes[v.0])
                    .collect();
                let u = r.pick(&same);
                g.add_scaled(&name, v, u, 1.0, 0.5)
            }
            5 => {
                let mut ins = vec![v];
                for _ in 0..r.below(3) {
                    let s = g.shapes[v.0];
                    let same: Vec<_> = vals
                        .iter()
                        .copied()
                        .filter(|u| {
                            let t = g.shapes[u.0];
                            t[0] == s[0] && t[2] == s[2] && t[3] == s[3]
                        })
                        .collect();
                    ins.push(r.pick(&same));
                }
                g.concat(&name, &ins)
            }
            6 if h >= 3 => g.pool(&name, v, Pool::max(3, 1 + r.below(2), 1)),
            6 => g.pool(&name, v, Pool::avg(1, 1, 0)),
            7 => {
                let p = g.global_avg_pool(&name, v).unwrap();
                let f = g.flatten(&format!("{name}.flatten"), p).unwrap();
                vals.push(p);
                if r.below(2) == 0 {
                    g.linear(&format!("{name}.fc"), f, 2 + r.below(4), true)
                } else {
                    Ok(f)
                }
            }
            _ if c * h < 200 => g.flatten(&name, v), // a copy unless C = 1 or H·W = 1
            _ => g.relu(&name, v),
        }
        .unwrap();
        vals.push(out);
        if r.below(6) == 0 {
            g.output(out);
        }
    }
    g.output(*vals.last().unwrap());
    g
}

/// Storage root of every value, derived here without the planner:
/// in-place concat chains, then flatten views of `H = W = 1` (or `C = 1`)
/// inputs.
fn roots_of(g: &Graph, shapes: &[[usize; 4]]) -> Vec<ValueId> {
    let mut root: Vec<ValueId> = (0..shapes.len()).map(ValueId).collect();
    for n in &g.nodes {
        let v = n.output;
        root[v.0] = if g.alias.contains_key(&v) {
            g.storage_of(v).0
        } else if n.op == Op::Flatten && is_flatten_view(shapes[n.inputs[0].0]) {
            root[n.inputs[0].0]
        } else {
            v
        };
    }
    root
}

/// Checks `plan` against the graph from first principles.
fn check_plan(case: &str, g: &Graph, plan: &Plan) {
    let shapes = &plan.shapes;
    let steps = plan.schedule.len();
    // The schedule is a topological order of every node.
    let mut pos = vec![usize::MAX; g.nodes.len()];
    for (s, &i) in plan.schedule.iter().enumerate() {
        pos[i] = s;
    }
    assert!(
        pos.iter().all(|&p| p != usize::MAX),
        "{case}: schedule misses nodes"
    );
    let mut step_of = vec![None; shapes.len()];
    for (i, n) in g.nodes.iter().enumerate() {
        step_of[n.output.0] = Some(pos[i]);
    }
    for (i, n) in g.nodes.iter().enumerate() {
        for v in &n.inputs {
            assert!(step_of[v.0].unwrap() < pos[i], "{case}: not topological");
        }
    }
    // Each produced value: [write step, last read step]; the input from 0,
    // outputs to the end.
    let mut live: Vec<Option<(usize, usize)>> = step_of.iter().map(|s| s.map(|s| (s, s))).collect();
    for (i, n) in g.nodes.iter().enumerate() {
        for v in &n.inputs {
            let e = live[v.0].as_mut().unwrap();
            e.1 = e.1.max(pos[i]);
        }
    }
    if let Some(x) = g.input {
        live[x.0].as_mut().unwrap().0 = 0;
    }
    for v in &g.outputs {
        live[v.0].as_mut().unwrap().1 = steps;
    }
    let bytes = |v: ValueId| shapes[v.0].iter().product::<usize>() as u64 * 4;
    let produced: Vec<ValueId> = (0..shapes.len())
        .map(ValueId)
        .filter(|v| live[v.0].is_some())
        .collect();
    let root = roots_of(g, shapes);
    let root_of = |v: ValueId| root[v.0];
    for &v in &produced {
        let root = root_of(v);
        let s = plan.storage[v.0].unwrap_or_else(|| panic!("{case}: value {} unplanned", v.0));
        assert_eq!(s.root, root, "{case}: root of value {}", v.0);
        let slot = plan.slot(v).unwrap();
        assert!(
            plan.slots[slot].bytes >= bytes(v) && plan.slots[slot].bytes >= bytes(root),
            "{case}: value {} ({} B) does not fit slot {slot} ({} B)",
            v.0,
            bytes(v),
            plan.slots[slot].bytes
        );
    }
    // No two values with different roots, alive at a common step, share a
    // slot (slots are whole buffers, so sharing a slot is sharing bytes).
    for (i, &u) in produced.iter().enumerate() {
        for &v in &produced[i + 1..] {
            let (ru, rv) = (root_of(u), root_of(v));
            if ru == rv {
                continue;
            }
            let (a, b) = (live[u.0].unwrap(), live[v.0].unwrap());
            if a.0 <= b.1 && b.0 <= a.1 {
                assert_ne!(
                    plan.slot(u),
                    plan.slot(v),
                    "{case}: values {} {a:?} and {} {b:?} overlap in one slot",
                    u.0,
                    v.0
                );
            }
        }
    }
    // Sizes: values_bytes counts each root once; the lower bound is the
    // peak of roots alive; the arena lies between them.
    let mut roots: Vec<ValueId> = produced.iter().map(|&v| root_of(v)).collect();
    roots.sort();
    roots.dedup();
    assert_eq!(
        plan.values_bytes,
        roots.iter().map(|&r| bytes(r)).sum::<u64>(),
        "{case}"
    );
    let mut peak = 0;
    for s in 0..=steps {
        let mut alive: Vec<ValueId> = produced
            .iter()
            .filter(|v| {
                let (a, b) = live[v.0].unwrap();
                a <= s && s <= b
            })
            .map(|&v| root_of(v))
            .collect();
        alive.sort();
        alive.dedup();
        peak = peak.max(alive.iter().map(|&r| bytes(r)).sum::<u64>());
    }
    assert_eq!(plan.lower_bound_bytes, peak, "{case}");
    assert!(plan.lower_bound_bytes <= plan.arena_bytes, "{case}");
    assert!(plan.arena_bytes <= plan.values_bytes, "{case}");
    assert_eq!(
        plan.arena_bytes,
        plan.slots.iter().map(|s| s.bytes).sum::<u64>()
    );
    plan.verify().unwrap();
}

#[test]
fn random_plans_never_overlap() {
    let configs = [
        PassOptions::none(),
        PassOptions::default(),
        PassOptions {
            inplace_concat: true,
            ..PassOptions::none()
        },
    ];
    let mut saved = 0u64;
    let mut total = 0u64;
    for seed in 0..300 {
        let g0 = random_dag(seed);
        for (k, opts) in configs.iter().enumerate() {
            let g = passes::optimize(&g0, opts).unwrap();
            let nominal = g.shapes[g.input.unwrap().0];
            // Plan for the nominal shapes and for a bigger batch.
            for batch in [nominal[0], 3] {
                let shapes = g
                    .infer_shapes([batch, nominal[1], nominal[2], nominal[3]])
                    .unwrap();
                let plan = Plan::new(&g, &shapes).unwrap();
                check_plan(&format!("seed {seed} config {k} batch {batch}"), &g, &plan);
                saved += plan.values_bytes - plan.arena_bytes;
                total += plan.values_bytes;
            }
        }
    }
    // The sweep is not vacuous: sharing saves memory overall.
    assert!(saved * 5 > total, "saved {saved} of {total}");
}

/// A chain of equal convs needs two buffers however long it is.
#[test]
fn chain_uses_two_slots() {
    let mut g = Graph::new();
    let mut v = g.input("x", [1, 4, 5, 5]).unwrap();
    for i in 0..10 {
        v = g
            .conv2d(&format!("c{i}"), v, Conv2d::new(4, 3).pad(1))
            .unwrap();
    }
    g.output(v);
    let plan = Plan::new(&g, &g.shapes).unwrap();
    check_plan("chain", &g, &plan);
    assert_eq!(plan.slots.len(), 2, "{:?}", plan.slots);
    assert_eq!(plan.arena_bytes, 2 * 4 * 25 * 4);
    assert_eq!(plan.arena_bytes, plan.lower_bound_bytes);
    assert_eq!(plan.values_bytes, 11 * 4 * 25 * 4);
}

/// The input lives from step 0 even when first read late, and outputs live
/// to the end, so nothing later reuses their bytes.
#[test]
fn input_and_outputs_lifetimes() {
    let mut g = Graph::new();
    let x = g.input("x", [1, 2, 4, 4]).unwrap();
    let a = g.relu("a", x).unwrap();
    let b = g.relu("b", a).unwrap(); // an early output
    let c = g.relu("c", b).unwrap();
    let d = g.relu("d", c).unwrap();
    g.output(b);
    g.output(d);
    let plan = Plan::new(&g, &g.shapes).unwrap();
    check_plan("lifetimes", &g, &plan);
    assert_eq!(plan.lifetimes[x.0].unwrap().first, 0);
    assert_eq!(plan.lifetimes[b.0].unwrap().last, plan.steps);
    assert_eq!(plan.lifetimes[d.0].unwrap().last, plan.steps);
    assert_ne!(plan.slot(b), plan.slot(d));
    assert_ne!(plan.slot(b), plan.slot(c));
}

/// A flatten of (N, C, 1, 1) is a view: same storage, counted once. A
/// flatten of C > 1 and H·W > 1 is a value of its own (the executor
/// transposes).
#[test]
fn flatten_views() {
    let mut g = Graph::new();
    let x = g.input("x", [2, 3, 4, 4]).unwrap();
    let p = g.global_avg_pool("pool", x).unwrap();
    let f = g.flatten("flatten", p).unwrap();
    let l = g.linear("fc", f, 5, true).unwrap();
    let f2 = g.flatten("flatten_big", x).unwrap();
    let l2 = g.linear("fc2", f2, 2, false).unwrap();
    g.output(l);
    g.output(l2);
    let plan = Plan::new(&g, &g.shapes).unwrap();
    check_plan("flatten", &g, &plan);
    assert_eq!(plan.storage[f.0].unwrap().root, p);
    assert!(plan.is_shared(f));
    assert_eq!(plan.storage[f2.0].unwrap().root, f2);
    assert!(plan.lifetimes[f.0].is_none());
    let b = |v: ValueId| plan.value_bytes(v);
    assert_eq!(plan.values_bytes, b(x) + b(p) + b(l) + b(f2) + b(l2));
}

/// In-place concat: branch outputs live inside the concat's storage, whose
/// lifetime starts at the first branch write.
#[test]
fn concat_alias_extends_root() {
    let mut g = Graph::new();
    let x = g.input("x", [1, 3, 5, 5]).unwrap();
    let a = g.conv2d("a", x, Conv2d::new(2, 1)).unwrap();
    let t = g.conv2d("t", x, Conv2d::new(2, 1)).unwrap();
    let b = g.conv2d("b", t, Conv2d::new(4, 3).pad(1)).unwrap();
    let cat = g.concat("cat", &[a, b]).unwrap();
    let y = g.relu("y", cat).unwrap();
    g.output(y);
    let o = passes::optimize(&g, &PassOptions::default()).unwrap();
    let plan = Plan::new(&o, &o.shapes).unwrap();
    check_plan("concat", &o, &plan);
    let st = plan.storage[b.0].unwrap();
    assert_eq!((st.root, st.channel_offset), (cat, 2));
    assert_eq!(plan.lifetimes[cat.0].unwrap().first, 1, "from `a`, step 1");
    // `t` is alive while the concat's storage is being filled.
    assert_ne!(plan.slot(t), plan.slot(cat));
}

/// Hand-set aliases the executor cannot honour are refused, naming the node.
#[test]
fn bad_aliases_are_refused() {
    let build = || {
        let mut g = Graph::new();
        let x = g.input("x", [1, 3, 4, 4]).unwrap();
        let a = g.conv2d("a", x, Conv2d::new(2, 1)).unwrap();
        let bn = g.batchnorm("bn", x, 1e-5).unwrap();
        let cat = g.concat("cat", &[a, bn]).unwrap();
        let r = g.relu("r", a).unwrap();
        g.output(cat);
        (g, x, a, bn, cat, r)
    };
    let (mut g, ..) = build();
    let (_, _, a, bn, cat, r) = build();
    g.alias.insert(bn, (cat, 2));
    assert!(check_alias(&g).unwrap_err().to_string().contains("`bn`"));
    let (mut g, ..) = build();
    g.alias.insert(a, (cat, 1));
    let e = check_alias(&g).unwrap_err();
    assert!(
        e.to_string().contains("`a`") && e.to_string().contains("channel"),
        "{e}"
    );
    let (mut g, ..) = build();
    g.alias.insert(a, (r, 0));
    assert!(check_alias(&g).is_err());
    let (mut g, ..) = build();
    g.output(r);
    g.alias.insert(a, (cat, 0)); // `a` is also read by `r`
    assert!(Plan::new(&g, &g.shapes).is_err());
}

/// A value over a device limit is an `Error::Limit` naming its producer,
/// the limit and both sizes.
#[test]
fn limits_are_checked() {
    let mut g = Graph::new();
    let x = g.input("x", [1, 3, 8, 8]).unwrap();
    let c = g.conv2d("layer1.conv", x, Conv2d::new(64, 1)).unwrap();
    g.output(c);
    let plan = Plan::new(&g, &g.shapes).unwrap();
    let mut limits = wgpu::Limits::default();
    plan.check_limits(
        &g,
        limits.max_storage_buffer_binding_size,
        limits.max_buffer_size,
    )
    .unwrap();
    limits.max_storage_buffer_binding_size = 1024;
    match plan
        .check_limits(
            &g,
            limits.max_storage_buffer_binding_size,
            limits.max_buffer_size,
        )
        .unwrap_err()
    {
        Error::Limit {
            node,
            limit,
            needed,
            available,
        } => {
            assert_eq!(node, "layer1.conv");
            assert_eq!(limit, "max_storage_buffer_binding_size");
            assert_eq!((needed, available), (64 * 64 * 4, 1024));
        }
        e => panic!("{e:?}"),
    }
    limits.max_storage_buffer_binding_size = 1 << 30;
    limits.max_buffer_size = 512;
    let e = plan
        .check_limits(
            &g,
            limits.max_storage_buffer_binding_size,
            limits.max_buffer_size,
        )
        .unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("x") && m.contains("max_buffer_size") && m.contains("768") && m.contains("512"),
        "{m}"
    );
}

/// Deep nets (ResNet-1001 has ~3000 nodes) optimise and plan quickly, and
/// their activation memory does not grow with depth.
#[test]
fn deep_chain_memory_is_flat() {
    let build = |blocks: usize| {
        let mut g = Graph::new();
        let mut v = g.input("x", [1, 8, 6, 6]).unwrap();
        for b in 0..blocks {
            let c = g
                .conv2d(&format!("l{b}.conv1"), v, Conv2d::new(4, 1))
                .unwrap();
            let n = g.batchnorm(&format!("l{b}.bn1"), c, 1e-5).unwrap();
            let r = g.relu(&format!("l{b}.relu1"), n).unwrap();
            let c = g
                .conv2d(&format!("l{b}.conv2"), r, Conv2d::new(8, 3).pad(1))
                .unwrap();
            let n = g.batchnorm(&format!("l{b}.bn2"), c, 1e-5).unwrap();
            let s = g.add(&format!("l{b}.add"), n, v).unwrap();
            v = g.relu(&format!("l{b}.relu2"), s).unwrap();
        }
        g.output(v);
        g
    };
    let start = std::time::Instant::now();
    let mut arenas = Vec::new();
    for blocks in [10, 400] {
        let g = passes::optimize(&build(blocks), &PassOptions::default()).unwrap();
        assert_eq!(g.nodes.len(), 1 + 2 * blocks);
        let plan = Plan::new(&g, &g.shapes).unwrap();
        check_plan(&format!("{blocks} blocks"), &g, &plan);
        arenas.push(plan.arena_bytes);
    }
    assert_eq!(arenas[0], arenas[1]);
    assert!(start.elapsed().as_secs() < 20, "{:?}", start.elapsed());
}

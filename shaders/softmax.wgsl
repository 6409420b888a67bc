// Softmax over rows: out[r, k] = exp(x[r, k] - m) / sum_j exp(x[r, j] - m),
// m = max_j x[r, j] (the numerically stable form). A row is one axis of a
// tensor seen as (outer, classes, inner) in storage order: row r =
// (r / inner, r % inner) starts at (r / inner)·classes·inner + r % inner and
// its elements are `inner` apart (inner = 1: contiguous (N, K) rows).
// One workgroup of WG invocations per row; the grid of rows is folded into x
// and y (see kernels::grid_1d). Three passes over the row, each invocation
// striding by WG:
//   1. local maxima, reduced to m by a tree in workgroup memory;
//   2. local sums of exp(x - m), reduced to s likewise;
//   3. out = exp(x - m) / s, the exponential recomputed rather than read
//      back from out, so that an f16 out is rounded once.
// x and out are f32 or f16 (src/shaders.rs); all arithmetic is f32.

struct Params {
    // Rows N.
    rows: u32,
    // Classes K per row.
    classes: u32,
    // Storage distance between consecutive classes of a row (the product
    // of the dims after the softmax axis in storage order).
    inner: u32,
    _pad1: u32,
}

const WG: u32 = 256u;

// Params: the number of rows, the row length and the class stride.
@group(0) @binding(0) var<uniform> p: Params;
// (Declared read_write though only read: activations share one arena buffer,
// and WebGPU forbids a buffer bound read-only and read-write in one dispatch.)
// Logits, (outer, K, inner) in storage order.
//#tensor x 1 read_write
// Probabilities, the same shape. May not alias x.
//#tensor out 2 read_write

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(256)
fn softmax(@builtin(workgroup_id) wid: vec3<u32>,
           @builtin(local_invocation_index) li: u32,
           @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = wid.x + wid.y * nwg.x;
    // Uniform per workgroup: the whole group leaves (or stays) together.
    if (row >= p.rows) {
        return;
    }
    let st = p.inner;
    let base = (row / st) * p.classes * st + row % st;

    // Pass 1: the row maximum. Every row has at least one class, so the
    // first element seeds the maximum (WGSL has no -inf literal).
    var m = x_ld(base);
    for (var k = li; k < p.classes; k += WG) {
        m = max(m, x_ld(base + k * st));
    }
    red[li] = m;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (li < s) {
            red[li] = max(red[li], red[li + s]);
        }
        workgroupBarrier();
    }
    m = red[0];
    workgroupBarrier();

    // Pass 2: exponentials and their sum.
    var sum = 0.0;
    for (var k = li; k < p.classes; k += WG) {
        sum += exp(x_ld(base + k * st) - m);
    }
    red[li] = sum;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (li < s) {
            red[li] = red[li] + red[li + s];
        }
        workgroupBarrier();
    }
    let total = red[0];

    // Pass 3: normalise. Strided rows: one class per invocation (a lone
    // packed-f16 half is stored atomically, src/shaders.rs).
    if (st != 1u) {
        for (var k = li; k < p.classes; k += WG) {
            out_st(base + k * st, exp(x_ld(base + k * st) - m) / total);
        }
        return;
    }
    // Contiguous rows: two consecutive classes per invocation (one word of
    // packed f16 where the index is even).
    for (var k = 2u * li; k < p.classes; k += 2u * WG) {
        let e0 = exp(x_ld(base + k) - m) / total;
        if (k + 1u < p.classes) {
            out_st2(base + k, vec2<f32>(e0, exp(x_ld(base + k + 1u) - m) / total));
        } else {
            out_st(base + k, e0);
        }
    }
}

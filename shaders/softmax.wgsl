// Softmax over rows: out[n, k] = exp(x[n, k] - m) / sum_j exp(x[n, j] - m),
// m = max_j x[n, j] (the numerically stable form).
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
    _pad0: u32,
    _pad1: u32,
}

const WG: u32 = 256u;

// Params: the number of rows and the row length.
@group(0) @binding(0) var<uniform> p: Params;
// (Declared read_write though only read: activations share one arena buffer,
// and WebGPU forbids a buffer bound read-only and read-write in one dispatch.)
// Logits, (N, K) rows.
//#tensor x 1 read_write
// Probabilities, (N, K) rows. May not alias x.
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
    let base = row * p.classes;

    // Pass 1: the row maximum. Every row has at least one class, so the
    // first element seeds the maximum (WGSL has no -inf literal).
    var m = x_ld(base);
    for (var k = li; k < p.classes; k += WG) {
        m = max(m, x_ld(base + k));
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
        sum += exp(x_ld(base + k) - m);
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

    // Pass 3: normalise, two consecutive classes per invocation (one word
    // of packed f16 where the index is even).
    for (var k = 2u * li; k < p.classes; k += 2u * WG) {
        let e0 = exp(x_ld(base + k) - m) / total;
        if (k + 1u < p.classes) {
            out_st2(base + k, vec2<f32>(e0, exp(x_ld(base + k + 1u) - m) / total));
        } else {
            out_st(base + k, e0);
        }
    }
}

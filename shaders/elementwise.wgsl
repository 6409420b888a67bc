// Elementwise kernels over flat arrays (layout-agnostic).
//   add:  out[i] = alpha * a[i] + beta * b[i], then ReLU when relu != 0
//   relu alone is `add` with beta == 0: b is then never read (the host binds
//   a dummy buffer), so an infinite a[i] stays infinite rather than NaN.
// One invocation per two consecutive elements (2i, 2i + 1: one word of
// packed f16, so its store is whole); the grid is folded into x and y so
// that more than 65535 * 256 pairs can be covered (see kernels::grid_1d).
// Loads convert to f32, the arithmetic is f32, the store rounds once.

struct Params {
    len: u32,
    relu: u32,
    alpha: f32,
    beta: f32,
}

const WG: u32 = 256u;

// Params: element count, ReLU flag, the two scales.
@group(0) @binding(0) var<uniform> p: Params;
// (Declared read_write though only read: activations share one arena buffer,
// and WebGPU forbids a buffer bound read-only and read-write in one dispatch.)
// First operand (a).
//#tensor a 1 read_write
// Second operand (b); not read when beta == 0.
//#tensor b 2 read_write
// The output; may not alias a or b.
//#tensor out 3 read_write

// ReLU as PyTorch computes it: max(v, 0), except that NaN stays NaN. NaN is
// tested on the bits: WGSL lets a compiler assume floats are never NaN, and
// max(NaN, 0) may then return 0.
fn relu(v: f32) -> f32 {
    if ((bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u) {
        return v;
    }
    return max(v, 0.0);
}

// The result for element i.
fn value(i: u32) -> f32 {
    var v = p.alpha * a_ld(i);
    if (p.beta != 0.0) {
        v = v + p.beta * b_ld(i);
    }
    if (p.relu != 0u) {
        v = relu(v);
    }
    return v;
}

@compute @workgroup_size(256)
fn add(@builtin(global_invocation_id) gid: vec3<u32>,
       @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = 2u * (gid.x + gid.y * nwg.x * WG);
    if (i >= p.len) {
        return;
    }
    if (i + 1u < p.len) {
        out_st2(i, vec2<f32>(value(i), value(i + 1u)));
    } else {
        out_st(i, value(i));
    }
}

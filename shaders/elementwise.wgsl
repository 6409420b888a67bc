// Elementwise kernels over flat f32 arrays (layout-agnostic).
//   add:  out[i] = alpha * a[i] + beta * b[i], then ReLU when relu != 0
//   relu alone is `add` with beta == 0: b is then never read (the host binds
//   a dummy buffer), so an infinite a[i] stays infinite rather than NaN.
// One invocation per element; the grid is folded into x and y so that more
// than 65535 * 256 elements can be covered (see kernels::grid_1d).

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
@group(0) @binding(1) var<storage, read_write> a: array<f32>;
// Second operand (b); not read when beta == 0.
@group(0) @binding(2) var<storage, read_write> b: array<f32>;
// The output; may not alias a or b.
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// ReLU as PyTorch computes it: max(v, 0), except that NaN stays NaN. NaN is
// tested on the bits: WGSL lets a compiler assume floats are never NaN, and
// max(NaN, 0) may then return 0.
fn relu(v: f32) -> f32 {
    if ((bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u) {
        return v;
    }
    return max(v, 0.0);
}

@compute @workgroup_size(256)
fn add(@builtin(global_invocation_id) gid: vec3<u32>,
       @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.len) {
        return;
    }
    var v = p.alpha * a[i];
    if (p.beta != 0.0) {
        v = v + p.beta * b[i];
    }
    if (p.relu != 0u) {
        v = relu(v);
    }
    out[i] = v;
}

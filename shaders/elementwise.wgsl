// Elementwise kernels over flat arrays (layout-agnostic).
//   add:  out[i] = alpha * a[i] + beta * b[i], then the clamp the flags say
//   (ReLU is a clamp below at 0; ReLU6 / Clip clamp on both sides).
//   relu or clip alone is `add` with beta == 0: b is then never read (the
//   host binds a dummy buffer), so an infinite a[i] stays infinite, not NaN.
// One invocation per two consecutive elements (2i, 2i + 1: one word of
// packed f16, so its store is whole); the grid is folded into x and y so
// that more than 65535 * 256 pairs can be covered (see kernels::grid_1d).
// Loads convert to f32, the arithmetic is f32, the store rounds once.

struct Params {
    len: u32,
    // Bit 0: clamp below at lo; bit 1: clamp above at hi (bounds finite).
    clamp: u32,
    alpha: f32,
    beta: f32,
    lo: f32,
    hi: f32,
    _pad0: u32,
    _pad1: u32,
}

const WG: u32 = 256u;

// Params: element count, clamp flags, the two scales, the clamp bounds.
@group(0) @binding(0) var<uniform> p: Params;
// (Declared read_write though only read: activations share one arena buffer,
// and WebGPU forbids a buffer bound read-only and read-write in one dispatch.)
// First operand (a).
//#tensor a 1 read_write
// Second operand (b); not read when beta == 0.
//#tensor b 2 read_write
// The output; may not alias a or b.
//#tensor out 3 read_write

// The clamp epilogue as PyTorch and onnxruntime compute it: max(v, lo) then
// min(., hi), each only when its flag is set, except that NaN stays NaN. NaN
// is tested on the bits: WGSL lets a compiler assume floats are never NaN,
// and max(NaN, 0) may then return 0. (lo > hi gives hi, as ONNX's Clip.)
fn clamp_act(v: f32) -> f32 {
    if ((bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u) {
        return v;
    }
    var r = v;
    if ((p.clamp & 1u) != 0u) {
        r = max(r, p.lo);
    }
    if ((p.clamp & 2u) != 0u) {
        r = min(r, p.hi);
    }
    return r;
}

// The result for element i.
fn value(i: u32) -> f32 {
    var v = p.alpha * a_ld(i);
    if (p.beta != 0.0) {
        v = v + p.beta * b_ld(i);
    }
    if (p.clamp != 0u) {
        v = clamp_act(v);
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

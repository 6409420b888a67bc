// Inference batchnorm over an NHWC tensor, with an optional clamp (ReLU,
// ReLU6, Clip).
//   out[i] = (x[i] - mean[c]) * (1 / sqrt(var[c] + eps)) * gamma[c] + beta[c]
//   with c = i % C; then max(., lo) / min(., hi) as the clamp flags say.
// Same operation order as the CPU reference (batchnorm_cpu). One invocation
// per two consecutive elements (2i, 2i + 1: one word of packed f16, so its
// store is whole), channels fastest, so neighbouring invocations read
// neighbouring x and the four per-channel vectors stay in cache. The grid is
// folded into x and y (see kernels::grid_1d). x and out are f32 or f16
// (src/shaders.rs); the four vectors and the arithmetic are f32.

struct Params {
    // N * H * W * C.
    len: u32,
    // C.
    channels: u32,
    // Bit 0: clamp below at lo; bit 1: clamp above at hi (bounds finite).
    clamp: u32,
    // Added to the variance.
    eps: f32,
    lo: f32,
    hi: f32,
    _pad0: u32,
    _pad1: u32,
}

const WG: u32 = 256u;

// Params: element count, channel count, clamp flags, epsilon, clamp bounds.
@group(0) @binding(0) var<uniform> p: Params;
// (Declared read_write though only read: activations share one arena buffer,
// and WebGPU forbids a buffer bound read-only and read-write in one dispatch.)
// Input activations, NHWC (N, H, W, C).
//#tensor x 1 read_write
// Per-channel scale gamma (C).
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
// Per-channel shift beta (C).
@group(0) @binding(3) var<storage, read> beta: array<f32>;
// Per-channel running mean (C).
@group(0) @binding(4) var<storage, read> mean: array<f32>;
// Per-channel running variance (C).
@group(0) @binding(5) var<storage, read> var_: array<f32>;
// Output, NHWC like x; may not alias x.
//#tensor out 6 read_write

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

// The result for element i, whose input is xv.
fn normalise(i: u32, xv: f32) -> f32 {
    let c = i % p.channels;
    let inv = 1.0 / sqrt(var_[c] + p.eps);
    var v = (xv - mean[c]) * inv * gamma[c] + beta[c];
    if (p.clamp != 0u) {
        v = clamp_act(v);
    }
    return v;
}

@compute @workgroup_size(256)
fn batchnorm(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = 2u * (gid.x + gid.y * nwg.x * WG);
    if (i >= p.len) {
        return;
    }
    if (i + 1u < p.len) {
        let xv = x_ld2(i);
        out_st2(i, vec2<f32>(normalise(i, xv.x), normalise(i + 1u, xv.y)));
    } else {
        out_st(i, normalise(i, x_ld(i)));
    }
}

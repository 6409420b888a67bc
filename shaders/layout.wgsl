// Layout transposes at the API boundary.
//   nchw_to_nhwc: dst[((n*H + y)*W + x)*C + c] = src[((n*C + c)*H + y)*W + x]
//   nhwc_to_nchw: the inverse.
// One invocation per destination element; grid folded into x and y.

struct Params {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
}

const WG: u32 = 256u;

// Params: the logical NCHW shape.
@group(0) @binding(0) var<uniform> p: Params;
// (Declared read_write though only read: activations share one arena buffer,
// and WebGPU forbids a buffer bound read-only and read-write in one dispatch.)
// The source tensor.
@group(0) @binding(1) var<storage, read_write> src: array<f32>;
// The destination tensor, same element count.
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn nchw_to_nhwc(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    let total = p.n * p.c * p.h * p.w;
    if (i >= total) {
        return;
    }
    // i indexes dst (NHWC).
    let c = i % p.c;
    let x = (i / p.c) % p.w;
    let y = (i / (p.c * p.w)) % p.h;
    let n = i / (p.c * p.w * p.h);
    dst[i] = src[((n * p.c + c) * p.h + y) * p.w + x];
}

@compute @workgroup_size(256)
fn nhwc_to_nchw(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    let total = p.n * p.c * p.h * p.w;
    if (i >= total) {
        return;
    }
    // i indexes dst (NCHW).
    let x = i % p.w;
    let y = (i / p.w) % p.h;
    let c = (i / (p.w * p.h)) % p.c;
    let n = i / (p.w * p.h * p.c);
    dst[i] = src[((n * p.h + y) * p.w + x) * p.c + c];
}

// Layout transposes at the API boundary.
//   nchw_to_nhwc: dst[((n*H + y)*W + x)*C + c] = src[((n*C + c)*H + y)*W + x]
//   nhwc_to_nchw: the inverse.
// One invocation per two consecutive destination elements (2i, 2i + 1: one
// word of packed f16, so its store is whole); grid folded into x and y.
// `src` and `dst` are tensors of the module's storage (f32 or f16,
// src/shaders.rs); `src_f32` and `dst_f32` view the same bindings as f32,
// for the conversions at the API boundary, whose side is always f32:
//   nchw_to_nhwc_from_f32: the graph's f32 NCHW input into an NHWC tensor;
//   nhwc_to_nchw_to_f32:   an NHWC tensor out to the f32 NCHW output.
// (In the f32 module they are the same as the plain entries.)

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
//#tensor src 1 read_write
// The source as f32 (entry nchw_to_nhwc_from_f32: the API's input).
@group(0) @binding(1) var<storage, read_write> src_f32: array<f32>;
// The destination tensor, same element count.
//#tensor dst 2 read_write
// The destination as f32 (entry nhwc_to_nchw_to_f32: the API's output).
@group(0) @binding(2) var<storage, read_write> dst_f32: array<f32>;

// The first destination element of this invocation.
fn first(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return 2u * (gid.x + gid.y * nwg.x * WG);
}

// The NCHW source index of NHWC destination element i.
fn from_nchw(i: u32) -> u32 {
    let c = i % p.c;
    let x = (i / p.c) % p.w;
    let y = (i / (p.c * p.w)) % p.h;
    let n = i / (p.c * p.w * p.h);
    return ((n * p.c + c) * p.h + y) * p.w + x;
}

// The NHWC source index of NCHW destination element i.
fn from_nhwc(i: u32) -> u32 {
    let x = i % p.w;
    let y = (i / p.w) % p.h;
    let c = (i / (p.w * p.h)) % p.c;
    let n = i / (p.w * p.h * p.c);
    return ((n * p.h + y) * p.w + x) * p.c + c;
}

@compute @workgroup_size(256)
fn nchw_to_nhwc(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = first(gid, nwg);
    let total = p.n * p.c * p.h * p.w;
    if (i >= total) {
        return;
    }
    if (i + 1u < total) {
        dst_st2(i, vec2<f32>(src_ld(from_nchw(i)), src_ld(from_nchw(i + 1u))));
    } else {
        dst_st(i, src_ld(from_nchw(i)));
    }
}

@compute @workgroup_size(256)
fn nhwc_to_nchw(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = first(gid, nwg);
    let total = p.n * p.c * p.h * p.w;
    if (i >= total) {
        return;
    }
    if (i + 1u < total) {
        dst_st2(i, vec2<f32>(src_ld(from_nhwc(i)), src_ld(from_nhwc(i + 1u))));
    } else {
        dst_st(i, src_ld(from_nhwc(i)));
    }
}

@compute @workgroup_size(256)
fn nchw_to_nhwc_from_f32(@builtin(global_invocation_id) gid: vec3<u32>,
                         @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = first(gid, nwg);
    let total = p.n * p.c * p.h * p.w;
    if (i >= total) {
        return;
    }
    if (i + 1u < total) {
        dst_st2(i, vec2<f32>(src_f32[from_nchw(i)], src_f32[from_nchw(i + 1u)]));
    } else {
        dst_st(i, src_f32[from_nchw(i)]);
    }
}

@compute @workgroup_size(256)
fn nhwc_to_nchw_to_f32(@builtin(global_invocation_id) gid: vec3<u32>,
                       @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = first(gid, nwg);
    let total = p.n * p.c * p.h * p.w;
    if (i >= total) {
        return;
    }
    dst_f32[i] = src_ld(from_nhwc(i));
    if (i + 1u < total) {
        dst_f32[i + 1u] = src_ld(from_nhwc(i + 1u));
    }
}

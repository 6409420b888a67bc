// Index-mapping copies of an NHWC tensor: pad / crop (every ONNX mode) and
// permutation of the four axes.
//   Per output axis k (NCHW numbering 0 N, 1 C, 2 H, 3 W), output coordinate
//   o reads source coordinate t = o - lo[k], mapped into 0..len[k] when
//   outside it:
//     mode 0 constant: the element is `value`;
//     mode 1 edge:     t clamped to 0..len-1;
//     mode 2 reflect:  mirrored without repeating the edge, period
//                      2·(len - 1) (0 when len = 1);
//     mode 3 wrap:     t modulo len;
//   then the source element is at sum_k (t + crop[k]) * stride[k], stride[k]
//   the NHWC storage stride of the source axis output axis k reads.
//   A pad has output axis k read source axis k (lo the elements added
//   before, crop those removed before, len the cropped length); a
//   transpose has output axis k read source axis perm[k] (lo = crop = 0,
//   len its length): no coordinate is ever outside.
// One invocation per two consecutive output elements (2i, 2i + 1: one word
// of packed f16, so its store is whole; the two may lie in different
// pixels when C is odd, so each is decoded on its own); the grid is folded
// into x and y (see kernels::grid_1d). A copy: loads convert to f32, the
// store rounds once (exact for f16 input; `value` is rounded to f16 in
// the f16 modes).

struct Params {
    // Output elements N * C * H * W.
    len: u32,
    // 0 constant, 1 edge, 2 reflect, 3 wrap.
    mode: u32,
    // The constant of mode 0 (finite).
    value: f32,
    _pad0: u32,
    // Output dims (N, C, H, W).
    out_dims: vec4<u32>,
    // Per output axis: the (cropped) source length along it.
    src_len: vec4<u32>,
    // Per output axis: source elements cropped before it.
    crop: vec4<u32>,
    // Per output axis: elements added before it.
    lo: vec4<u32>,
    // Per output axis: the NHWC storage stride of its source axis.
    stride: vec4<u32>,
}

const WG: u32 = 256u;

// Params: output dims, the per-axis maps, the mode and value.
@group(0) @binding(0) var<uniform> p: Params;
// (Declared read_write though only read: activations share one arena buffer,
// and WebGPU forbids a buffer bound read-only and read-write in one dispatch.)
// Source activations, NHWC.
//#tensor x 1 read_write
// Output, NHWC (N, OH, OW, OC); may not alias x.
//#tensor out 2 read_write

// Source coordinate of output coordinate o along output axis k, or -1 for
// the constant.
fn source_coord(o: u32, k: u32) -> i32 {
    let n = i32(p.src_len[k]);
    var t = i32(o) - i32(p.lo[k]);
    if (t >= 0 && t < n) {
        return t;
    }
    switch p.mode {
        case 1u: {
            t = clamp(t, 0, n - 1);
        }
        // `%` only of nonnegative operands: GLSL leaves a negative one's
        // remainder undefined (and naga's GL backend emits GLSL's `%`).
        case 2u: {
            // The mirror is symmetric about 0: reflect |t|.
            let period = 2 * (n - 1);
            if (period == 0) {
                t = 0;
            } else {
                t = abs(t) % period;
                if (t >= n) {
                    t = period - t;
                }
            }
        }
        case 3u: {
            if (t < 0) {
                t = n - 1 - (-t - 1) % n;
            } else {
                t = t % n;
            }
        }
        default: {
            return -1;
        }
    }
    return t;
}

// Output element i: its source element, or the pad value.
fn value(i: u32) -> f32 {
    let d = p.out_dims;
    // NHWC decode of i into NCHW coordinates.
    let c = i % d.y;
    let t = i / d.y;
    let xx = t % d.w;
    let t2 = t / d.w;
    let y = t2 % d.z;
    let n = t2 / d.z;
    let o = vec4<u32>(n, c, y, xx);
    var src = 0u;
    for (var k = 0u; k < 4u; k++) {
        let s = source_coord(o[k], k);
        if (s < 0) {
            return p.value;
        }
        src += (u32(s) + p.crop[k]) * p.stride[k];
    }
    return x_ld(src);
}

fn copy_pair(gid: vec3<u32>, nwg: vec3<u32>) {
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

// Pad / crop in any mode.
@compute @workgroup_size(256)
fn pad(@builtin(global_invocation_id) gid: vec3<u32>,
       @builtin(num_workgroups) nwg: vec3<u32>) {
    copy_pair(gid, nwg);
}

// A permutation of the four axes (the same mapping, nothing outside).
@compute @workgroup_size(256)
fn transpose(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
    copy_pair(gid, nwg);
}

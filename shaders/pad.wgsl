// Constant padding of an NHWC tensor's H and W.
//   out[n, y, x, c] = x[n, y - top, x - left, c] where that is inside the
//   input, else `value`; out is (N, H + top + bottom, W + left + right, C).
// One invocation per two consecutive output elements (2i, 2i + 1: one word
// of packed f16, so its store is whole; the two may lie in different
// pixels when C is odd, so each is decoded on its own); the grid is folded
// into x and y (see kernels::grid_1d). A copy: loads convert to f32, the
// store rounds once (exact for f16 input; `value` is rounded to f16 in
// the f16 modes).

struct Params {
    // Output elements N * OH * OW * C.
    len: u32,
    // Channels C.
    c: u32,
    // Input height H and width W.
    h: u32,
    w: u32,
    // Output height OH and width OW.
    oh: u32,
    ow: u32,
    // Rows added above and columns added on the left.
    top: u32,
    left: u32,
    // The constant written in the padding (finite).
    value: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const WG: u32 = 256u;

// Params: shapes, the top/left offsets, the pad value.
@group(0) @binding(0) var<uniform> p: Params;
// (Declared read_write though only read: activations share one arena buffer,
// and WebGPU forbids a buffer bound read-only and read-write in one dispatch.)
// Input activations, NHWC (N, H, W, C).
//#tensor x 1 read_write
// Output, NHWC (N, OH, OW, C); may not alias x.
//#tensor out 2 read_write

// Output element i: its input element, or the pad value.
fn value(i: u32) -> f32 {
    let c = i % p.c;
    let t = i / p.c;
    let ox = t % p.ow;
    let t2 = t / p.ow;
    let oy = t2 % p.oh;
    let n = t2 / p.oh;
    // Unsigned wrap-around makes a row or column before the input large.
    let y = oy - p.top;
    let xx = ox - p.left;
    if (oy < p.top || ox < p.left || y >= p.h || xx >= p.w) {
        return p.value;
    }
    return x_ld(((n * p.h + y) * p.w + xx) * p.c + c);
}

@compute @workgroup_size(256)
fn pad(@builtin(global_invocation_id) gid: vec3<u32>,
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

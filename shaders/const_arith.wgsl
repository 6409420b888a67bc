// Elementwise arithmetic of an activation with a constant that broadcasts
// to its shape (ONNX's Add/Sub/Mul/Div by a full constant tensor).
//   out[n, y, x, c] = x[n, y, x, c] ∘ k[n', y', x', c']   (or k ∘ x)
// where each primed index is the output's, or 0 along an axis where the
// constant has size 1: the constant is NHWC of its own shape, and its
// element strides are 0 along the broadcast axes, so one index formula
// serves every broadcast pattern. ∘ is +, −, ·, / (params `op`); `k − x`
// and `k / x` when `const_first` is set. x and out are NHWC of one shape.
// One invocation per two consecutive output elements (2i, 2i + 1: one word
// of packed f16, so its store is whole; each is decoded on its own, as the
// two may lie in different pixels); the grid is folded into x and y (see
// kernels::grid_1d). Loads convert to f32, one f32 operation, the store
// rounds once.

struct Params {
    // Output elements N * H * W * C.
    len: u32,
    // Output channels C, width W and height H (to decode a flat index).
    c: u32,
    w: u32,
    h: u32,
    // The constant's element strides along N, H, W, C (0: broadcast).
    sn: u32,
    sy: u32,
    sx: u32,
    sc: u32,
    // 0 add, 1 sub, 2 mul, 3 div.
    op: u32,
    // 1: the constant is the left operand (k − x, k / x).
    const_first: u32,
    _pad0: u32,
    _pad1: u32,
}

const WG: u32 = 256u;

// Params: the output's dims, the constant's strides, the operation.
@group(0) @binding(0) var<uniform> p: Params;
// (Declared read_write though only read: activations share one arena buffer,
// and WebGPU forbids a buffer bound read-only and read-write in one dispatch.)
// The activation x, NHWC (N, H, W, C).
//#tensor x 1 read_write
// The constant, NHWC of its own shape (a parameter buffer, never the arena).
//#tensor k 2 read
// The output, NHWC like x; may not alias x or k.
//#tensor out 3 read_write

// Output element i.
fn value(i: u32) -> f32 {
    let c = i % p.c;
    let t = i / p.c;
    let xx = t % p.w;
    let t2 = t / p.w;
    let y = t2 % p.h;
    let n = t2 / p.h;
    let kv = k_ld(n * p.sn + y * p.sy + xx * p.sx + c * p.sc);
    let xv = x_ld(i);
    var a = xv;
    var b = kv;
    if (p.const_first != 0u) {
        a = kv;
        b = xv;
    }
    switch p.op {
        case 0u: {
            return a + b;
        }
        case 1u: {
            return a - b;
        }
        case 2u: {
            return a * b;
        }
        default: {
            return a / b;
        }
    }
}

@compute @workgroup_size(256)
fn const_arith(@builtin(global_invocation_id) gid: vec3<u32>,
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

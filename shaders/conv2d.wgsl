// 2-D convolution as a tiled implicit GEMM with a fused epilogue
// (src/kernels/conv2d.rs holds the math, the CPU reference and the host side).
//
//   C[m, n] = sum_k A[m, k] * B[k, n]      per group g (grid z)
//   m = (b, oy, ox)  output pixel,  M = N*OH*OW
//   n = output channel within the group, N = C_out / groups
//   k = (i, j, c)    tap row, tap column, input channel within the group,
//                    K = kh*kw*C_in/groups; consecutive k are consecutive
//                    input channels, contiguous in NHWC memory.
//   A[m, k] = input[b, oy*sh - pad_top + i*dh, ox*sw - pad_left + j*dw, g*C_in/groups + c]
//             (zero outside the image); B = the packed weights.
//
// Layouts: input NHWC (N, H, W, C_in); residual NHWC (N, OH, OW, C_out)
// dense; output NHWC (N, OH, OW, out_c_total), written at channel offset
// out_c_offset. Weights packed by conv2d::pack_weights as
// [groups][k_pad][n_pad]: k_pad = K rounded up to BK (extra rows zero),
// n_pad = C_out/groups rounded up to 4 (extra columns zero), so every B
// tile row is read as whole vec4s and no k bound check is needed on B.
//
// Tiling: a 16x16 workgroup computes a BM x BN tile of C (BM = 16*WM,
// BN = 16*WN); each invocation owns WM x WN outputs, rows
// ty*4 + {0..3} (+64) and columns tx*4 + {0..3} (+64), so its A and B
// fragments are read from workgroup memory as vec4s. K advances BK = 16 at a
// time through NBUF workgroup buffers; the next tile's global loads are
// issued into registers before the current tile's math (software
// pipelining), so with NBUF = 2 one barrier per k-tile suffices.
//
// Entry points: `conv2d` reads A one element at a time (any C_in/groups);
// `conv2d_vec4` reads A four channels at a time (needs C_in % 4 == 0 and
// C_in/groups % 4 == 0, so four consecutive k are four aligned, contiguous
// channels of one tap).
// `conv2d_grouped` is the direct conv for grouped convs with few channels
// per group (ResNeXt's 3x3s: 4 to 16), where a 64-wide tile would be mostly
// padding: one invocation per output pixel and 4 channels of its group,
// summing K in the same order (with FMA, out-of-image taps as zeros) as
// the tiled entries, so it gives their results bit for bit.
// Split-K: with k_split > 1 the grid's z is groups * k_split and the conv
// runs as `conv2d_split` / `conv2d_vec4_split`: slice s multiplies k-tiles
// s*kt_per_split.. (at most kt_per_split of them) and writes its raw
// partial sums, f32, to `part` ([k_split][M][C_out], no epilogue);
// `conv2d_splitk_reduce` then adds the slices in order, applies the
// epilogue and writes the real output.
// Precision: `input`, `weight`, `residual` and `out` are `//#tensor`s
// (f32, f16 or packed f16, see src/shaders.rs); they are converted to f32
// as they are loaded, so workgroup memory, the accumulators, the epilogue
// and split-K's partial sums are f32 in every mode, and a finished output
// is rounded once, when stored. The product of two f16 values is exact in
// f32, so an f16 conv computes exactly what the f32 conv computes on the
// f16-rounded input and weights, then rounds.
// Override constants: WM, WN in {4, 8}; NBUF in {1, 2}; MODE:
//   0 general (k -> (i, j, c), both image bounds checked per tap),
//   1 pointwise (1x1, any stride/padding: k is the channel, the tap is the
//   row's own pixel, checked once per row), 2 row (kh == 1: k -> (j, c),
//   only x checked per tap), 3 column (kw == 1: k -> (i, c), only y checked).
// Shapes travel in the params uniform; nothing here depends on a shape.

struct Params {
    in_h: u32,
    in_w: u32,
    in_c: u32,
    cin_g: u32,
    out_h: u32,
    out_w: u32,
    cout: u32,
    cout_g: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    dh: u32,
    dw: u32,
    pad_t: u32,
    pad_l: u32,
    m_total: u32,
    k_total: u32,
    n_pad: u32,
    k_tiles: u32,
    out_c_total: u32,
    out_c_offset: u32,
    tiles_n: u32,
    tiles_per_group: u32,
    has_res: u32,
    // Bit 0: clamp below at lo; bit 1: clamp above at hi (bounds finite).
    clamp: u32,
    res_scale: f32,
    k_split: u32,
    kt_per_split: u32,
    groups: u32,
    lo: f32,
    hi: f32,
}

// Rows of C per invocation (4 or 8): BM = 16 * WM.
override WM: u32 = 8u;
// Columns of C per invocation (4 or 8): BN = 16 * WN.
override WN: u32 = 8u;
// Workgroup buffers per operand: 2 double-buffers (one barrier per k-tile),
// 1 halves workgroup memory for devices that have little.
override NBUF: u32 = 2u;
// Tap decode: 0 general, 1 pointwise, 2 row (1 x n), 3 column (n x 1).
override MODE: u32 = 0u;

const BK: u32 = 16u;
override BM: u32 = 16u * WM;
override BN: u32 = 16u * WN;
// A tile: NBUF x [BM][BK] f32 as vec4 (k fastest); B tile: NBUF x [BK][BN].
override A_LEN: u32 = NBUF * BM * (BK / 4u);
override B_LEN: u32 = NBUF * BK * (BN / 4u);

// Params: shapes, strides, paddings, tile counts, epilogue flags.
@group(0) @binding(0) var<uniform> p: Params;
// (Activations are declared read_write though only read: they share one
// arena buffer, and WebGPU forbids a buffer bound read-only and read-write
// in one dispatch.)
// Input activations NHWC, loaded one element at a time (entries `conv2d`,
// `conv2d_split`, `conv2d_grouped`) or four aligned channels at a time
// (`conv2d_vec4`, `conv2d_vec4_split`; C_in % 4 == 0).
//#tensor input 1 read_write
// The split-K reduce's view of binding 1: the partial sums
// [k_split][M][C_out], f32 in every precision.
@group(0) @binding(1) var<storage, read_write> partials: array<f32>;
// Packed weights [groups][k_pad][n_pad], loaded as 4 along n.
//#tensor weight 2 read
// Per-output-channel multiplier (folded batchnorm), C_out f32.
@group(0) @binding(3) var<storage, read> scale: array<f32>;
// Per-output-channel offset (folded batchnorm or bias), C_out f32.
@group(0) @binding(4) var<storage, read> shift: array<f32>;
// Residual NHWC (N, OH, OW, C_out); read only when has_res != 0.
//#tensor residual 5 read_write
// Output NHWC (N, OH, OW, out_c_total); channels out_c_offset.. written.
//#tensor out 6 read_write
// The split-K slices' view of binding 6: their raw partial sums
// [k_split][M][C_out], f32 in every precision (the scratch buffer).
@group(0) @binding(6) var<storage, read_write> part: array<f32>;

var<workgroup> As: array<vec4<f32>, A_LEN>;
var<workgroup> Bs: array<vec4<f32>, B_LEN>;

// Per-invocation state shared by the helpers below. Everything a hot loop
// touches is either a named variable or an array indexed by a literal:
// wgpu's naga bounds every WGSL loop with a hidden counter, which keeps the
// driver from unrolling it, and a private array indexed by a loop variable
// lives in (slow) local memory. So the inner code is written out by hand,
// the 8-row / 8-column halves guarded by `WM == 8u` / `WN == 8u`, which fold
// away once the override constants are set.

// The accumulators: c<i>_<j> holds rows ty*4 + i (i < 4) or 64 + ty*4 + i - 4
// (i >= 4), columns tx*4 + 64*j + {0..3}. Private variables start at zero.
var<private> c0_0: vec4<f32>;
var<private> c1_0: vec4<f32>;
var<private> c2_0: vec4<f32>;
var<private> c3_0: vec4<f32>;
var<private> c4_0: vec4<f32>;
var<private> c5_0: vec4<f32>;
var<private> c6_0: vec4<f32>;
var<private> c7_0: vec4<f32>;
var<private> c0_1: vec4<f32>;
var<private> c1_1: vec4<f32>;
var<private> c2_1: vec4<f32>;
var<private> c3_1: vec4<f32>;
var<private> c4_1: vec4<f32>;
var<private> c5_1: vec4<f32>;
var<private> c6_1: vec4<f32>;
var<private> c7_1: vec4<f32>;

var<private> grp: u32;
var<private> split: u32;
var<private> m0: u32;
var<private> n0: u32;
var<private> tx: u32;
var<private> ty: u32;
var<private> lid: u32;
// The A rows this invocation loads (up to 8 scalar-path rows, 2 vec4-path
// rows): address of tap (0, 0), its image coordinates, row in range.
var<private> row_base: array<u32, 8>;
var<private> row_iy: array<i32, 8>;
var<private> row_ix: array<i32, 8>;
var<private> row_ok: array<bool, 8>;
// Its k lane within a tile, and the registers the next tile is loaded into.
var<private> k_lane: u32;
var<private> a_s: array<f32, 8>;
var<private> a_v: array<vec4<f32>, 2>;
var<private> b_v: array<vec4<f32>, 2>;

struct Tap {
    off: u32,
    dy: i32,
    dx: i32,
    ok: bool,
}

// Tile coordinates from the folded grid (the caller has checked that this
// workgroup holds a tile).
fn setup(wid: vec3<u32>, nwg: vec3<u32>, l: u32) {
    let tile = wid.x + wid.y * nwg.x;
    grp = wid.z % p.groups;
    split = wid.z / p.groups;
    m0 = (tile / p.tiles_n) * BM;
    n0 = (tile % p.tiles_n) * BN;
    lid = l;
    tx = l % 16u;
    ty = l / 16u;
}

// Decodes A row r = output pixel m0 + local.
fn init_row(r: u32, local: u32) {
    let m = m0 + local;
    let ox = m % p.out_w;
    let t = m / p.out_w;
    let oy = t % p.out_h;
    let b = t / p.out_h;
    let iy = i32(oy * p.sh) - i32(p.pad_t);
    let ix = i32(ox * p.sw) - i32(p.pad_l);
    // Wrapping u32 arithmetic: the address of tap (0, 0), which may lie
    // outside the image; in-image taps wrap back to their true address.
    row_base[r] = ((b * p.in_h + bitcast<u32>(iy)) * p.in_w + bitcast<u32>(ix)) * p.in_c
        + grp * p.cin_g;
    row_iy[r] = iy;
    row_ix[r] = ix;
    var ok = m < p.m_total;
    // Modes whose taps never move along an axis check that axis once here.
    if (MODE == 1u || MODE == 2u) {
        ok = ok && bitcast<u32>(iy) < p.in_h;
    }
    if (MODE == 1u || MODE == 3u) {
        ok = ok && bitcast<u32>(ix) < p.in_w;
    }
    row_ok[r] = ok;
}

// Where reduction index k reads, relative to a row's tap (0, 0).
fn tap(k: u32) -> Tap {
    var t: Tap;
    t.ok = k < p.k_total;
    t.dy = 0;
    t.dx = 0;
    if (MODE == 1u) {
        t.off = k;
    } else if (MODE == 2u) {
        let j = k / p.cin_g;
        let c = k - j * p.cin_g;
        t.dx = i32(j * p.dw);
        t.off = j * p.dw * p.in_c + c;
    } else if (MODE == 3u) {
        let i = k / p.cin_g;
        let c = k - i * p.cin_g;
        t.dy = i32(i * p.dh);
        t.off = i * p.dh * p.in_w * p.in_c + c;
    } else {
        let ij = k / p.cin_g;
        let c = k - ij * p.cin_g;
        let i = ij / p.kw;
        let j = ij - i * p.kw;
        t.dy = i32(i * p.dh);
        t.dx = i32(j * p.dw);
        t.off = (i * p.dh * p.in_w + j * p.dw) * p.in_c + c;
    }
    return t;
}

// True when row r's tap t lies inside the image (and k < K).
fn in_image(r: u32, t: Tap) -> bool {
    var ok = row_ok[r] && t.ok;
    if (MODE == 0u || MODE == 3u) {
        ok = ok && bitcast<u32>(row_iy[r] + t.dy) < p.in_h;
    }
    if (MODE == 0u || MODE == 2u) {
        ok = ok && bitcast<u32>(row_ix[r] + t.dx) < p.in_w;
    }
    return ok;
}

// ---- B: global -> registers -> workgroup memory, vec4 along n ----------
// A k-tile of B is BK rows of BN/4 vec4: one (BN = 64) or two (BN = 128)
// per invocation, consecutive invocations on consecutive vec4s.

fn load_b_one(kt: u32, idx: u32) -> vec4<f32> {
    let kr = idx / (BN / 4u);
    let n = n0 + (idx % (BN / 4u)) * 4u;
    if (n < p.n_pad) {
        return weight_ld4((grp * p.k_tiles * BK + kt * BK + kr) * p.n_pad + n);
    }
    return vec4<f32>(0.0);
}

fn load_b(kt: u32) {
    b_v[0] = load_b_one(kt, lid);
    if (BN == 128u) {
        b_v[1] = load_b_one(kt, lid + 256u);
    }
}

fn store_b(buf: u32) {
    let base = buf * BK * (BN / 4u) + lid;
    Bs[base] = b_v[0];
    if (BN == 128u) {
        Bs[base + 256u] = b_v[1];
    }
}

// ---- A, scalar path: rows lid/16 + 16r, k lane lid % 16 -----------------

fn init_rows_scalar() {
    let first = lid / 16u;
    init_row(0u, first);
    init_row(1u, first + 16u);
    init_row(2u, first + 32u);
    init_row(3u, first + 48u);
    if (BM == 128u) {
        init_row(4u, first + 64u);
        init_row(5u, first + 80u);
        init_row(6u, first + 96u);
        init_row(7u, first + 112u);
    }
}

fn load_a_one(r: u32, t: Tap) -> f32 {
    if (in_image(r, t)) {
        return input_ld(row_base[r] + t.off);
    }
    return 0.0;
}

fn load_a_scalar(kt: u32) {
    let t = tap(kt * BK + k_lane);
    a_s[0] = load_a_one(0u, t);
    a_s[1] = load_a_one(1u, t);
    a_s[2] = load_a_one(2u, t);
    a_s[3] = load_a_one(3u, t);
    if (BM == 128u) {
        a_s[4] = load_a_one(4u, t);
        a_s[5] = load_a_one(5u, t);
        a_s[6] = load_a_one(6u, t);
        a_s[7] = load_a_one(7u, t);
    }
}

fn store_a_scalar(buf: u32) {
    // Row lid/16 + 16r sits at vec4 (lid/16 + 16r)*4 + k_lane/4.
    let base = buf * BM * 4u + (lid / 16u) * 4u + k_lane / 4u;
    let e = k_lane % 4u;
    As[base][e] = a_s[0];
    As[base + 64u][e] = a_s[1];
    As[base + 128u][e] = a_s[2];
    As[base + 192u][e] = a_s[3];
    if (BM == 128u) {
        As[base + 256u][e] = a_s[4];
        As[base + 320u][e] = a_s[5];
        As[base + 384u][e] = a_s[6];
        As[base + 448u][e] = a_s[7];
    }
}

// ---- A, vec4 path: rows lid/4 + 64r, k lanes 4*(lid % 4)..+4 -------------
// (one tap, four aligned channels: C_in and C_in/groups are multiples of 4)

fn init_rows_vec4() {
    init_row(0u, lid / 4u);
    if (BM == 128u) {
        init_row(1u, lid / 4u + 64u);
    }
}

fn load_a4_one(r: u32, t: Tap) -> vec4<f32> {
    if (in_image(r, t)) {
        return input_ld4(row_base[r] + t.off);
    }
    return vec4<f32>(0.0);
}

fn load_a_vec4(kt: u32) {
    let t = tap(kt * BK + k_lane);
    a_v[0] = load_a4_one(0u, t);
    if (BM == 128u) {
        a_v[1] = load_a4_one(1u, t);
    }
}

fn store_a_vec4(buf: u32) {
    let base = buf * BM * 4u + lid;
    As[base] = a_v[0];
    if (BM == 128u) {
        As[base + 256u] = a_v[1];
    }
}

// ---- the math -----------------------------------------------------------

// One k: lo/hi hold A at this invocation's rows 0..3 / 4..7; bi indexes the
// B row in workgroup memory at column tx*4.
fn fma_k(lo: vec4<f32>, hi: vec4<f32>, bi: u32) {
    let b0 = Bs[bi];
    c0_0 = fma(vec4<f32>(lo.x), b0, c0_0);
    c1_0 = fma(vec4<f32>(lo.y), b0, c1_0);
    c2_0 = fma(vec4<f32>(lo.z), b0, c2_0);
    c3_0 = fma(vec4<f32>(lo.w), b0, c3_0);
    if (WM == 8u) {
        c4_0 = fma(vec4<f32>(hi.x), b0, c4_0);
        c5_0 = fma(vec4<f32>(hi.y), b0, c5_0);
        c6_0 = fma(vec4<f32>(hi.z), b0, c6_0);
        c7_0 = fma(vec4<f32>(hi.w), b0, c7_0);
    }
    if (WN == 8u) {
        let b1 = Bs[bi + 16u];
        c0_1 = fma(vec4<f32>(lo.x), b1, c0_1);
        c1_1 = fma(vec4<f32>(lo.y), b1, c1_1);
        c2_1 = fma(vec4<f32>(lo.z), b1, c2_1);
        c3_1 = fma(vec4<f32>(lo.w), b1, c3_1);
        if (WM == 8u) {
            c4_1 = fma(vec4<f32>(hi.x), b1, c4_1);
            c5_1 = fma(vec4<f32>(hi.y), b1, c5_1);
            c6_1 = fma(vec4<f32>(hi.z), b1, c6_1);
            c7_1 = fma(vec4<f32>(hi.w), b1, c7_1);
        }
    }
}

// Four k (4kq..4kq+3): A read as one vec4 per row, then four rank-1 updates.
fn fma_kq(ab: u32, bb: u32, kq: u32) {
    let r0 = As[ab + kq];
    let r1 = As[ab + 4u + kq];
    let r2 = As[ab + 8u + kq];
    let r3 = As[ab + 12u + kq];
    var r4 = vec4<f32>(0.0);
    var r5 = vec4<f32>(0.0);
    var r6 = vec4<f32>(0.0);
    var r7 = vec4<f32>(0.0);
    if (WM == 8u) {
        r4 = As[ab + 256u + kq];
        r5 = As[ab + 260u + kq];
        r6 = As[ab + 264u + kq];
        r7 = As[ab + 268u + kq];
    }
    let bi = bb + kq * BN;
    fma_k(vec4<f32>(r0.x, r1.x, r2.x, r3.x), vec4<f32>(r4.x, r5.x, r6.x, r7.x), bi);
    fma_k(vec4<f32>(r0.y, r1.y, r2.y, r3.y), vec4<f32>(r4.y, r5.y, r6.y, r7.y), bi + BN / 4u);
    fma_k(vec4<f32>(r0.z, r1.z, r2.z, r3.z), vec4<f32>(r4.z, r5.z, r6.z, r7.z), bi + BN / 2u);
    fma_k(vec4<f32>(r0.w, r1.w, r2.w, r3.w), vec4<f32>(r4.w, r5.w, r6.w, r7.w), bi + 3u * BN / 4u);
}

// acc += A_tile * B_tile for workgroup buffer `buf`.
fn compute(buf: u32) {
    // Row ty*4 of A starts at vec4 ty*16; column tx*4 of B is vec4 tx.
    let ab = buf * BM * 4u + ty * 16u;
    let bb = buf * BK * (BN / 4u) + tx;
    fma_kq(ab, bb, 0u);
    fma_kq(ab, bb, 1u);
    fma_kq(ab, bb, 2u);
    fma_kq(ab, bb, 3u);
}

// ---- epilogue -----------------------------------------------------------

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

// scale/shift, optional scaled residual, optional clamp, all in f32: the
// finished output (m, o) from its full sum x, before its one rounding to
// the output's storage.
fn finish(m: u32, o: u32, x: f32) -> f32 {
    var v = fma(x, scale[o], shift[o]);
    if (p.has_res != 0u) {
        v = v + p.res_scale * residual_ld(m * p.cout + o);
    }
    if (p.clamp != 0u) {
        v = clamp_act(v);
    }
    return v;
}

// Outputs (m, o .. o+3), finished and stored; channels from `end` on are
// not written (their finish reads the last channel's vectors and is
// dropped). Four in range are one st4 (whole words in packed f16 when the
// element index is even); fewer, at a tile's last columns only, are
// stored one at a time by a loop (kept a loop: the shader compiles
// faster, and it runs rarely).
fn store4(m: u32, o: u32, end: u32, v: vec4<f32>) {
    let last = end - 1u;
    let f = vec4<f32>(finish(m, min(o, last), v.x), finish(m, min(o + 1u, last), v.y),
                      finish(m, min(o + 2u, last), v.z), finish(m, min(o + 3u, last), v.w));
    let at = m * p.out_c_total + p.out_c_offset + o;
    if (o + 3u < end) {
        out_st4(at, f);
        return;
    }
    for (var c = 0u; c < 3u; c++) {
        if (o + c < end) {
            out_st(at + c, f[c]);
        }
    }
}

// Outputs (m, n .. n+3) of this group; nothing past C_out/groups.
fn emit4(m: u32, n: u32, v: vec4<f32>) {
    let o0 = grp * p.cout_g;
    store4(m, o0 + n, o0 + p.cout_g, v);
}

// Split-K: this slice's raw partial sums of (m, n .. n+3), f32, no epilogue.
fn part4(m: u32, n: u32, v: vec4<f32>) {
    let at = (split * p.m_total + m) * p.cout + grp * p.cout_g + n;
    for (var c = 0u; c < 4u; c++) {
        if (n + c < p.cout_g) {
            part[at + c] = v[c];
        }
    }
}

// Row i of this invocation (see the accumulators): its output pixel, or
// m_total when past the last.
fn row_m(i: u32) -> u32 {
    let m = m0 + ty * 4u + (i % 4u) + (i / 4u) * 64u;
    return select(p.m_total, m, m < p.m_total);
}

// Row i with its two column groups, finished.
fn emit_row(i: u32, v0: vec4<f32>, v1: vec4<f32>) {
    let m = row_m(i);
    if (m >= p.m_total) {
        return;
    }
    emit4(m, n0 + tx * 4u, v0);
    if (WN == 8u) {
        emit4(m, n0 + tx * 4u + 64u, v1);
    }
}

// Row i with its two column groups, as split-K partial sums.
fn part_row(i: u32, v0: vec4<f32>, v1: vec4<f32>) {
    let m = row_m(i);
    if (m >= p.m_total) {
        return;
    }
    part4(m, n0 + tx * 4u, v0);
    if (WN == 8u) {
        part4(m, n0 + tx * 4u + 64u, v1);
    }
}

fn epilogue() {
    emit_row(0u, c0_0, c0_1);
    emit_row(1u, c1_0, c1_1);
    emit_row(2u, c2_0, c2_1);
    emit_row(3u, c3_0, c3_1);
    if (WM == 8u) {
        emit_row(4u, c4_0, c4_1);
        emit_row(5u, c5_0, c5_1);
        emit_row(6u, c6_0, c6_1);
        emit_row(7u, c7_0, c7_1);
    }
}

fn epilogue_split() {
    part_row(0u, c0_0, c0_1);
    part_row(1u, c1_0, c1_1);
    part_row(2u, c2_0, c2_1);
    part_row(3u, c3_0, c3_1);
    if (WM == 8u) {
        part_row(4u, c4_0, c4_1);
        part_row(5u, c5_0, c5_1);
        part_row(6u, c6_0, c6_1);
        part_row(7u, c7_0, c7_1);
    }
}

// ---- entry points -------------------------------------------------------
// All run the same software pipeline: k-tile kt+1 is loaded from global
// memory into registers while k-tile kt is multiplied out of workgroup
// memory, then stored into the other buffer (NBUF = 2: one barrier per
// k-tile) or, after a barrier, the same one (NBUF = 1). The `_split`
// entries are the split-K slices (they write raw f32 partial sums to
// `part`); the others write finished outputs to `out`. (Two entries
// because `out` and `part` are two views of binding 6, which one entry
// point may not both use.)

// This workgroup's first k-tile and its count: all of them without
// split-K, slice wid.z / groups's with it. The barriers depend on them, so
// they come from builtins and the uniform only: WGSL's uniformity analysis
// (Tint enforces it) counts anything read from a private variable, such as
// `split`, as non-uniform.
fn kt_first(wid: vec3<u32>) -> u32 {
    return (wid.z / p.groups) * p.kt_per_split;
}

fn kt_count(wid: vec3<u32>) -> u32 {
    let kt0 = kt_first(wid);
    return min(kt0 + p.kt_per_split, p.k_tiles) - kt0;
}

// The k loop with A loaded one element at a time.
fn mainloop_scalar(kt0: u32, nt: u32) {
    load_a_scalar(kt0);
    load_b(kt0);
    store_a_scalar(0u);
    store_b(0u);
    workgroupBarrier();
    for (var kt = 0u; kt < nt; kt++) {
        let more = kt + 1u < nt;
        if (more) {
            load_a_scalar(kt0 + kt + 1u);
            load_b(kt0 + kt + 1u);
        }
        compute(kt % NBUF);
        if (more) {
            if (NBUF == 1u) {
                workgroupBarrier();
            }
            store_a_scalar((kt + 1u) % NBUF);
            store_b((kt + 1u) % NBUF);
        }
        workgroupBarrier();
    }
}

// The k loop with A loaded four channels at a time.
fn mainloop_vec4(kt0: u32, nt: u32) {
    load_a_vec4(kt0);
    load_b(kt0);
    store_a_vec4(0u);
    store_b(0u);
    workgroupBarrier();
    for (var kt = 0u; kt < nt; kt++) {
        let more = kt + 1u < nt;
        if (more) {
            load_a_vec4(kt0 + kt + 1u);
            load_b(kt0 + kt + 1u);
        }
        compute(kt % NBUF);
        if (more) {
            if (NBUF == 1u) {
                workgroupBarrier();
            }
            store_a_vec4((kt + 1u) % NBUF);
            store_b((kt + 1u) % NBUF);
        }
        workgroupBarrier();
    }
}

// Tile setup for the scalar path.
fn start_scalar(wid: vec3<u32>, nwg: vec3<u32>, l: u32) {
    setup(wid, nwg, l);
    init_rows_scalar();
    k_lane = l % 16u;
}

// Tile setup for the vec4 path.
fn start_vec4(wid: vec3<u32>, nwg: vec3<u32>, l: u32) {
    setup(wid, nwg, l);
    init_rows_vec4();
    k_lane = (l % 4u) * 4u;
}

@compute @workgroup_size(16, 16)
fn conv2d(@builtin(workgroup_id) wid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) l: u32) {
    if (wid.x + wid.y * nwg.x >= p.tiles_per_group) {
        return;
    }
    start_scalar(wid, nwg, l);
    mainloop_scalar(kt_first(wid), kt_count(wid));
    epilogue();
}

@compute @workgroup_size(16, 16)
fn conv2d_vec4(@builtin(workgroup_id) wid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) l: u32) {
    if (wid.x + wid.y * nwg.x >= p.tiles_per_group) {
        return;
    }
    start_vec4(wid, nwg, l);
    mainloop_vec4(kt_first(wid), kt_count(wid));
    epilogue();
}

@compute @workgroup_size(16, 16)
fn conv2d_split(@builtin(workgroup_id) wid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) l: u32) {
    if (wid.x + wid.y * nwg.x >= p.tiles_per_group) {
        return;
    }
    start_scalar(wid, nwg, l);
    mainloop_scalar(kt_first(wid), kt_count(wid));
    epilogue_split();
}

@compute @workgroup_size(16, 16)
fn conv2d_vec4_split(@builtin(workgroup_id) wid: vec3<u32>,
                     @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) l: u32) {
    if (wid.x + wid.y * nwg.x >= p.tiles_per_group) {
        return;
    }
    start_vec4(wid, nwg, l);
    mainloop_vec4(kt_first(wid), kt_count(wid));
    epilogue_split();
}

// Direct conv: invocation i is output pixel m = i / (groups * n_pad / 4),
// group g and channel quad q of that group (grid folded into x and y);
// it walks taps (i, j) and channels c in the packed weights' k order, the
// input from global memory (neighbouring invocations of one group read the
// same input values), the weights as one vec4 of the group's row k.
// k_split must be 1.
@compute @workgroup_size(256)
fn conv2d_grouped(@builtin(global_invocation_id) gid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
    let nq = p.n_pad / 4u;
    let per_m = p.groups * nq;
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.m_total * per_m) {
        return;
    }
    let m = i / per_m;
    let r = i - m * per_m;
    grp = r / nq;
    split = 0u;
    let q = r - grp * nq;
    let ox = m % p.out_w;
    let t = m / p.out_w;
    let oy = t % p.out_h;
    let b = t / p.out_h;
    let iy0 = i32(oy * p.sh) - i32(p.pad_t);
    let ix0 = i32(ox * p.sw) - i32(p.pad_l);
    // Row k of this group's weights starts at vec4 (g*k_pad + k)*nq.
    var w_at = grp * p.k_tiles * BK * nq + q;
    var acc = vec4<f32>(0.0);
    for (var ti = 0u; ti < p.kh; ti++) {
        let iy = iy0 + i32(ti * p.dh);
        for (var tj = 0u; tj < p.kw; tj++) {
            let ix = ix0 + i32(tj * p.dw);
            let inside = bitcast<u32>(iy) < p.in_h && bitcast<u32>(ix) < p.in_w;
            // Outside the image the address is never read.
            let base = ((b * p.in_h + bitcast<u32>(iy)) * p.in_w + bitcast<u32>(ix)) * p.in_c
                + grp * p.cin_g;
            for (var c = 0u; c < p.cin_g; c++) {
                var a = 0.0;
                if (inside) {
                    a = input_ld(base + c);
                }
                acc = fma(vec4<f32>(a), weight_ld4(4u * w_at), acc);
                w_at += nq;
            }
        }
    }
    emit4(m, q * 4u, acc);
}

// Split-K reduction: invocation i finishes outputs (m, 4q .. 4q+3) of the
// conv (M x ceil(C_out/4) invocations, grid folded into x and y): the
// k_split partial sums the conv wrote to binding 1 (`partials`, viewed as
// [k_split][M][C_out]) added in slice order, then the same epilogue as an
// unsplit conv (four channels per invocation, so packed f16 stores whole
// words where the output index is even).
@compute @workgroup_size(256)
fn conv2d_splitk_reduce(@builtin(global_invocation_id) gid: vec3<u32>,
                        @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    let quads = (p.cout + 3u) / 4u;
    if (i >= p.m_total * quads) {
        return;
    }
    let m = i / quads;
    let o = (i - m * quads) * 4u;
    let total = p.m_total * p.cout;
    let at = m * p.cout + o;
    var acc = vec4<f32>(0.0);
    for (var c = 0u; c < 4u; c++) {
        if (o + c < p.cout) {
            var a = partials[at + c];
            for (var s = 1u; s < p.k_split; s++) {
                a = a + partials[s * total + at + c];
            }
            acc[c] = a;
        }
    }
    store4(m, o, p.cout, acc);
}

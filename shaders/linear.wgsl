// Fully connected layer: out[n, o] = sum_i x[n, i] * wt[i, o] + bias[o].
//   x is (N, in) rows; wt is the weight transposed to (in, out) by
//   linear::pack_weights, so a row of wt is contiguous along o; out is
//   (N, out).
// Work split: a workgroup of TO x KS = 32 x 8 invocations computes a tile of
// TR = 8 rows by TO = 32 output features. Lane lid.x owns one output feature
// o; the KS slices (lid.y; one subgroup each on 32-wide hardware) split the
// reduction over i.
// The input features are walked in chunks of BK = KS * KL: each chunk of x
// (TR x BK) is staged in workgroup memory, transposed so that the TR rows
// of one feature are two vec4s, and each slice then streams its KL features
// of the chunk: per feature, one coalesced load of wt (32 consecutive floats
// along o) and two broadcast vec4 reads of x feed 8 multiply-adds. All KL
// weight loads of a chunk are issued before x is staged, so they are in
// flight together (features past `in` read x as 0). At the end the KS partial sums of each (row, o) are added in
// a fixed order in workgroup memory (the staging array, reused) and the bias is added.
// The tile index is folded into x and y of the grid (see kernels::grid_1d).
// x, wt and out are f32 or f16 (src/shaders.rs), converted on load; the
// bias, workgroup memory and every sum are f32; out is rounded once.

struct Params {
    // Rows N.
    batch: u32,
    // Input features.
    in_features: u32,
    // Output features.
    out_features: u32,
    // 1: add bias.
    has_bias: u32,
}

// Output features per tile (one lane each).
const TO: u32 = 32u;
// Slices of the reduction per tile.
const KS: u32 = 8u;
// Input features per slice per chunk (the eight ld4/fma4 calls below).
const KL: u32 = 32u;
// Input features per staged chunk.
const BK: u32 = KS * KL;
// Rows per tile (two vec4s). Must equal KS: the final reduction gives each
// slice one row to finish.
const TR: u32 = 8u;
const THREADS: u32 = TO * KS;

// Params: the three sizes and the bias flag.
@group(0) @binding(0) var<uniform> p: Params;
// (Declared read_write though only read: activations share one arena buffer,
// and WebGPU forbids a buffer bound read-only and read-write in one dispatch.)
// Input rows (N, in).
//#tensor x 1 read_write
// Packed weight, (in, out): wt[i * out + o] = weight[o, i].
//#tensor wt 2 read
// Bias (out); a dummy buffer, never read, when has_bias == 0.
@group(0) @binding(3) var<storage, read> bias: array<f32>;
// Output rows (N, out). May not alias x.
//#tensor out 4 read_write

// The staged chunk of x: xs[k][h][j] = x[n0 + 4h + j, k0 + k]. Once the
// reduction loop is done it holds each invocation's partial sums instead
// (BK == THREADS), so the kernel needs 8 KiB of workgroup memory, not 16:
// it fits devices with less than WebGPU's 16 KiB default.
var<workgroup> xs: array<array<vec4<f32>, 2>, BK>;
const_assert BK == THREADS;

// Weights of column oc for input features i .. i+3, clamped to the last
// feature (the staged x is 0 there, so any finite weight will do).
fn ld4(i: u32, oc: u32) -> vec4<f32> {
    let last = p.in_features - 1u;
    let o = p.out_features;
    return vec4<f32>(wt_ld(min(i, last) * o + oc),
                     wt_ld(min(i + 1u, last) * o + oc),
                     wt_ld(min(i + 2u, last) * o + oc),
                     wt_ld(min(i + 3u, last) * o + oc));
}

// Accumulates staged features k .. k+3 times their weights w into the two
// row quads.
fn fma4(k: u32, w: vec4<f32>, a0: ptr<function, vec4<f32>>, a1: ptr<function, vec4<f32>>) {
    *a0 += xs[k][0] * w.x + xs[k + 1u][0] * w.y + xs[k + 2u][0] * w.z + xs[k + 3u][0] * w.w;
    *a1 += xs[k][1] * w.x + xs[k + 1u][1] * w.y + xs[k + 2u][1] * w.z + xs[k + 3u][1] * w.w;
}

@compute @workgroup_size(TO, KS)
fn linear(@builtin(workgroup_id) wid: vec3<u32>,
          @builtin(local_invocation_id) lid: vec3<u32>,
          @builtin(local_invocation_index) li: u32,
          @builtin(num_workgroups) nwg: vec3<u32>) {
    let tile = wid.x + wid.y * nwg.x;
    let o_tiles = (p.out_features + TO - 1u) / TO;
    let n0 = (tile / o_tiles) * TR;
    let o0 = (tile % o_tiles) * TO;
    // Uniform per workgroup: the whole group leaves (or stays) together.
    if (n0 >= p.batch) {
        return;
    }
    let o = o0 + lid.x;
    // Lanes past the last feature read a valid column and discard it.
    let oc = min(o, p.out_features - 1u);
    let kb = lid.y * KL;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < p.in_features; k0 += BK) {
        // This slice's KL weights first, all independent loads, so that
        // they are in flight while x is staged.
        let i = k0 + kb;
        let w0 = ld4(i, oc);
        let w1 = ld4(i + 4u, oc);
        let w2 = ld4(i + 8u, oc);
        let w3 = ld4(i + 12u, oc);
        let w4 = ld4(i + 16u, oc);
        let w5 = ld4(i + 20u, oc);
        let w6 = ld4(i + 24u, oc);
        let w7 = ld4(i + 28u, oc);
        // Stage x[n0 .. n0+TR, k0 .. k0+BK], zero outside; coalesced along i.
        for (var e = li; e < TR * BK; e += THREADS) {
            let r = e / BK;
            let k = e % BK;
            var v = 0.0;
            if (n0 + r < p.batch && k0 + k < p.in_features) {
                v = x_ld((n0 + r) * p.in_features + k0 + k);
            }
            xs[k][r / 4u][r % 4u] = v;
        }
        workgroupBarrier();
        fma4(kb, w0, &a0, &a1);
        fma4(kb + 4u, w1, &a0, &a1);
        fma4(kb + 8u, w2, &a0, &a1);
        fma4(kb + 12u, w3, &a0, &a1);
        fma4(kb + 16u, w4, &a0, &a1);
        fma4(kb + 20u, w5, &a0, &a1);
        fma4(kb + 24u, w6, &a0, &a1);
        fma4(kb + 28u, w7, &a0, &a1);
        workgroupBarrier();
    }
    // The loop ended on a barrier: no invocation reads the staged x again.
    xs[li][0] = a0;
    xs[li][1] = a1;
    workgroupBarrier();
    // Invocation (lid.x, lid.y) finishes row n0 + lid.y of feature o.
    let r = lid.y;
    let n = n0 + r;
    if (o < p.out_features && n < p.batch) {
        var s = 0.0;
        for (var sl = 0u; sl < KS; sl++) {
            s += xs[sl * TO + lid.x][r / 4u][r % 4u];
        }
        if (p.has_bias != 0u) {
            s += bias[o];
        }
        out_st(n * p.out_features + o, s);
    }
}

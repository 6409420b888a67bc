// Pooling over NHWC tensors.
//   max_pool / avg_pool: windowed pooling, PyTorch semantics generalised to
//     four pad sides and dilation as onnxruntime computes them. For output
//     (n, oy, ox, c): rows hs + i*dh (i < kh) before he = min(hs + kh*dh,
//     H + pb), hs = oy*sh - pt, columns likewise; taps outside the input are
//     skipped by max and read as 0 by the average, whose divisor is the
//     number of window taps before he (times the same for columns) when
//     count_include_pad ((he - hs)*(we - ws) for dilation 1), else the
//     number of in-bounds taps. The result goes
//     to out[((n*OH + oy)*OW + ox)*out_c_total + out_c_offset + c].
//     One invocation per two consecutive channels c, c + 1 of an output
//     pixel (channels fastest: coalesced reads and writes; one word of
//     packed f16 where the output index is even; an odd C leaves a lone
//     last channel); grid folded into x and y (see kernels::grid_1d).
//   global_avg_pool: (N, HW, C) -> (N, C), mean over the HW rows. One
//     workgroup per (n, block of GC channels): GC lanes along the channels
//     (coalesced rows) times GR lanes striding over the rows, then a fixed
//     order reduction of the GR partial sums in workgroup memory.
// The host guarantees (PoolParams::validate) that every window holds at
// least one in-bounds tap.
// x and out are f32 or f16 (src/shaders.rs); every sum is f32, and the
// result is rounded once when stored.

struct Params {
    // Batch N.
    n: u32,
    // Channels C of the input (and of this output's channel range).
    c: u32,
    // Input height H (global pool: the number of rows H*W).
    h: u32,
    // Input width W (global pool: 1).
    w: u32,
    // Output height OH.
    oh: u32,
    // Output width OW.
    ow: u32,
    // Window height kh.
    kh: u32,
    // Window width kw.
    kw: u32,
    // Stride along rows sh.
    sh: u32,
    // Stride along columns sw.
    sw: u32,
    // Padding rows above, pt.
    pt: u32,
    // Padding columns on the left, pl.
    pl: u32,
    // Channel count of the output tensor.
    out_c_total: u32,
    // First output channel written.
    out_c_offset: u32,
    // 1: the average divides by the padded window size.
    count_include_pad: u32,
    // Invocations: N*OH*OW*ceil(C/2), one per channel pair (global pool:
    // unused).
    total: u32,
    // Padding rows below, pb.
    pb: u32,
    // Padding columns on the right, pr.
    pr: u32,
    // Dilation between window rows, dh (1: contiguous).
    dh: u32,
    // Dilation between window columns, dw.
    dw: u32,
}

const WG: u32 = 256u;
// Global pool: channel lanes per workgroup.
const GC: u32 = 32u;
// Global pool: row lanes per workgroup.
const GR: u32 = 8u;

// Params: shapes, window, strides, padding, output placement, flags.
@group(0) @binding(0) var<uniform> p: Params;
// (Declared read_write though only read: activations share one arena buffer,
// and WebGPU forbids a buffer bound read-only and read-write in one dispatch.)
// Input activations, NHWC (N, H, W, C).
//#tensor x 1 read_write
// Output, NHWC (N, OH, OW, out_c_total); only channels
// [out_c_offset, out_c_offset + C) are written. May not alias x.
//#tensor out 2 read_write

struct Window {
    // In-bounds taps: rows y0, y0 + dh, ... below y1, columns x0, x0 + dw,
    // ... below x1 (y0 and x0 are window taps; y1, x1 clip to the input).
    y0: u32,
    y1: u32,
    x0: u32,
    x1: u32,
    // Taps of the padded window (PyTorch's (he - hs) * (we - ws) for
    // dilation 1).
    padded: u32,
    // In-bounds taps.
    inside: u32,
    // Index of x[n, 0, 0, c].
    base: u32,
    // Index of the output element (n, oy, ox, c).
    dst: u32,
    // True when channel c + 1 is this invocation's too.
    two: bool,
}

// The window of invocation i: channels c, c + 1 of one output pixel.
fn window(i: u32) -> Window {
    let pairs = (p.c + 1u) / 2u;
    let c = 2u * (i % pairs);
    let t = i / pairs;
    let ox = t % p.ow;
    let t2 = t / p.ow;
    let oy = t2 % p.oh;
    let n = t2 / p.oh;
    let dh = i32(p.dh);
    let dw = i32(p.dw);
    let hs = i32(oy * p.sh) - i32(p.pt);
    let ws = i32(ox * p.sw) - i32(p.pl);
    let he = min(hs + i32(p.kh) * dh, i32(p.h + p.pb));
    let we = min(ws + i32(p.kw) * dw, i32(p.w + p.pr));
    var win: Window;
    // The first tap at or past 0: skip ceil(-hs / dh) taps when hs < 0.
    win.y0 = u32(hs + (max(-hs, 0) + dh - 1) / dh * dh);
    win.x0 = u32(ws + (max(-ws, 0) + dw - 1) / dw * dw);
    win.y1 = u32(min(he, i32(p.h)));
    win.x1 = u32(min(we, i32(p.w)));
    // Taps hs + i*d below the end e: 1 + (e - hs - 1) / d (e > hs).
    win.padded = u32((1 + (he - hs - 1) / dh) * (1 + (we - ws - 1) / dw));
    win.inside = ((win.y1 - win.y0 + p.dh - 1u) / p.dh) * ((win.x1 - win.x0 + p.dw - 1u) / p.dw);
    win.base = n * p.h * p.w * p.c + c;
    win.dst = ((n * p.oh + oy) * p.ow + ox) * p.out_c_total + p.out_c_offset + c;
    win.two = c + 1u < p.c;
    return win;
}

// Tap (y, xx) of the window's channels (the second 0 when there is one).
fn tap(win: Window, y: u32, xx: u32) -> vec2<f32> {
    let at = win.base + (y * p.w + xx) * p.c;
    if (win.two) {
        return x_ld2(at);
    }
    return vec2<f32>(x_ld(at), 0.0);
}

// Stores the window's one or two results.
fn store(win: Window, v: vec2<f32>) {
    if (win.two) {
        out_st2(win.dst, v);
    } else {
        out_st(win.dst, v.x);
    }
}

// max(a, b) as PyTorch's max pooling computes it: a NaN in the window wins.
// NaN is tested on the bits (WGSL lets a compiler assume there is none).
fn max_nan(a: f32, b: f32) -> f32 {
    if ((bitcast<u32>(a) & 0x7fffffffu) > 0x7f800000u) {
        return a;
    }
    if ((bitcast<u32>(b) & 0x7fffffffu) > 0x7f800000u) {
        return b;
    }
    return max(a, b);
}

fn max_nan2(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(max_nan(a.x, b.x), max_nan(a.y, b.y));
}

@compute @workgroup_size(256)
fn max_pool(@builtin(global_invocation_id) gid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.total) {
        return;
    }
    let win = window(i);
    // The first in-bounds tap seeds the maximum (no -inf literal in WGSL).
    var m = tap(win, win.y0, win.x0);
    for (var y = win.y0; y < win.y1; y += p.dh) {
        for (var xx = win.x0; xx < win.x1; xx += p.dw) {
            m = max_nan2(m, tap(win, y, xx));
        }
    }
    store(win, m);
}

@compute @workgroup_size(256)
fn avg_pool(@builtin(global_invocation_id) gid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.total) {
        return;
    }
    let win = window(i);
    // Row-major order, as the CPU reference sums.
    var s = vec2<f32>(0.0);
    for (var y = win.y0; y < win.y1; y += p.dh) {
        for (var xx = win.x0; xx < win.x1; xx += p.dw) {
            s += tap(win, y, xx);
        }
    }
    var div = win.padded;
    if (p.count_include_pad == 0u) {
        div = win.inside;
    }
    store(win, s / f32(div));
}

var<workgroup> partial: array<array<f32, GC>, GR>;

@compute @workgroup_size(GC, GR)
fn global_avg_pool(@builtin(workgroup_id) wid: vec3<u32>,
                   @builtin(local_invocation_id) lid: vec3<u32>,
                   @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = wid.x + wid.y * nwg.x;
    let blocks = (p.c + GC - 1u) / GC;
    let n = g / blocks;
    // Uniform per workgroup: the whole group leaves (or stays) together.
    if (n >= p.n) {
        return;
    }
    let rows = p.h;
    let c = (g % blocks) * GC + lid.x;
    var s = 0.0;
    if (c < p.c) {
        for (var r = lid.y; r < rows; r += GR) {
            s += x_ld((n * rows + r) * p.c + c);
        }
    }
    partial[lid.y][lid.x] = s;
    workgroupBarrier();
    if (lid.y == 0u && c < p.c) {
        var t = 0.0;
        for (var k = 0u; k < GR; k++) {
            t += partial[k][lid.x];
        }
        out_st(n * p.c + c, t / f32(rows));
    }
}

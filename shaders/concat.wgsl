// Channel concatenation as a channel-offset copy over NHWC tensors.
//   src is `rows` rows of C channels (rows = N*H*W); out is `rows` rows of
//   out_c_total channels. out[r*out_c_total + out_c_offset + c] = src[r*C + c].
// One invocation per two consecutive channels of a row (channels fastest:
// coalesced reads and writes; one word of packed f16 where the output
// index is even; an odd C leaves a last lone channel per row); grid folded
// into x and y (see kernels::grid_1d). src and out are f32 or f16
// (src/shaders.rs): a copy, exact in both.

struct Params {
    // Source elements: rows * C.
    len: u32,
    // Channels C of the source.
    channels: u32,
    // Channels of the output tensor.
    out_c_total: u32,
    // First output channel written.
    out_c_offset: u32,
}

const WG: u32 = 256u;

// Params: element count, source channels, output channels and offset.
@group(0) @binding(0) var<uniform> p: Params;
// (Declared read_write though only read: activations share one arena buffer,
// and WebGPU forbids a buffer bound read-only and read-write in one dispatch.)
// The source rows, NHWC (N*H*W, C).
//#tensor src 1 read_write
// The output rows, NHWC (N*H*W, out_c_total); only the channel range
// [out_c_offset, out_c_offset + C) is written. May not alias src.
//#tensor out 2 read_write

@compute @workgroup_size(256)
fn concat(@builtin(global_invocation_id) gid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * WG;
    let pairs = (p.channels + 1u) / 2u;
    let rows = p.len / p.channels;
    let r = t / pairs;
    if (r >= rows) {
        return;
    }
    let c = 2u * (t - r * pairs);
    let i = r * p.channels + c;
    let o = r * p.out_c_total + p.out_c_offset + c;
    if (c + 1u < p.channels) {
        out_st2(o, src_ld2(i));
    } else {
        out_st(o, src_ld(i));
    }
}

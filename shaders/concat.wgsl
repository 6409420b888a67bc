// Channel concatenation as a channel-offset copy over NHWC tensors.
//   src is `rows` rows of C channels (rows = N*H*W); out is `rows` rows of
//   out_c_total channels. out[r*out_c_total + out_c_offset + c] = src[r*C + c].
// One invocation per source element, channels fastest (coalesced reads and
// writes); grid folded into x and y (see kernels::grid_1d).

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
@group(0) @binding(1) var<storage, read_write> src: array<f32>;
// The output rows, NHWC (N*H*W, out_c_total); only the channel range
// [out_c_offset, out_c_offset + C) is written. May not alias src.
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn concat(@builtin(global_invocation_id) gid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.len) {
        return;
    }
    let r = i / p.channels;
    let c = i % p.channels;
    out[r * p.out_c_total + p.out_c_offset + c] = src[i];
}

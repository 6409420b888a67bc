//! A compiled graph's outputs: the NHWC → NCHW transposes that give them
//! PyTorch's layout, the whole-batch staging buffers they are copied into
//! micro-batch by micro-batch, and their read-back.

use super::memory::{Alloc, Memory};
use super::Step;
use crate::device::buffers::MapRead;
use crate::error::Result;
use crate::graph::Graph;
use crate::kernels::layout;
use crate::plan::Plan;
use crate::tensor::{Layout, Tensor};

/// One graph output.
pub(super) struct Output {
    /// The buffer copied to `staging` (the value's slot, or its transposed
    /// copy).
    pub src: wgpu::Buffer,
    /// First byte of the value in `src`.
    pub src_offset: u64,
    /// The whole batch's output, filled micro-batch by micro-batch.
    pub staging: wgpu::Buffer,
    /// f32 per image.
    pub per_image: usize,
    /// The whole batch's shape.
    pub shape: Vec<usize>,
    /// The graph couples its images ([`Graph::batch_coupled`]): runs are
    /// of the whole batch only, and `shape` is the value's own (its first
    /// dim need not be the input's image count).
    pub whole: bool,
    /// f32 of the compiled batch's output.
    pub len: usize,
}

impl Output {
    /// The (first f32, f32 count) of images `first..first + images` in the
    /// staging buffer: the whole output for a graph that couples its
    /// images (run on the whole batch only), else their share.
    pub fn range(&self, first: usize, images: usize) -> (usize, usize) {
        if self.whole {
            (0, self.len)
        } else {
            (first * self.per_image, images * self.per_image)
        }
    }
}

/// Builds every output of `g` compiled for micro-batches of `micro` images
/// of the whole batch `full`: a transpose step (pushed onto `steps`) where
/// the output is wanted in NCHW and `H·W > 1` and `C > 1`, or in f16
/// always (it converts to f32; the identity transpose of `(N, 1, 1, H·W·C)`
/// where the orders agree), and a staging buffer for the whole batch.
pub(super) fn build(
    g: &Graph,
    plan: &Plan,
    mem: &Memory,
    alloc: &mut Alloc,
    steps: &mut Vec<Step>,
    (full, micro): ([usize; 4], usize),
    (layout, storage): (Layout, crate::shaders::Storage),
) -> Result<Vec<Output>> {
    let ctx = alloc.ctx;
    let mut outputs = Vec::new();
    for (k, &v) in g.outputs.iter().enumerate() {
        let s = plan.shapes[v.0];
        let len: usize = s.iter().product();
        let name = g.producer(v).map_or("<output>", |n| n.name.as_str());
        let slot = mem.dense(plan, v, name)?;
        let boundary = layout::boundary_transpose(s, layout == Layout::Nhwc, storage);
        let (src, src_offset) = if let Some(t) = boundary {
            let buf = alloc.storage(&format!("output {k} (NCHW)"), len);
            let d = layout::transpose_gpu(
                ctx,
                &format!("{name}:nhwc_to_nchw"),
                storage,
                layout::Direction::NhwcToNchwF32,
                t,
                slot,
                &buf,
            )?;
            steps.push(Step {
                dispatch: d,
                kind: "layout",
            });
            (buf, 0)
        } else {
            (slot.buffer.clone(), slot.offset)
        };
        let per_image = len / micro;
        let bytes = (full[0] * per_image).max(len) as u64 * 4;
        let staging = alloc.raw(
            &format!("output {k} staging"),
            bytes,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        let whole = g.batch_coupled().is_some();
        let n = if whole { s[0] } else { full[0] };
        let shape = if s[2] == 1 && s[3] == 1 {
            vec![n, s[1]]
        } else {
            layout.dims([n, s[1], s[2], s[3]]).to_vec()
        };
        outputs.push(Output {
            src,
            src_offset,
            staging,
            per_image,
            shape,
            whole,
            len,
        });
    }
    Ok(outputs)
}

/// Requests the mapping of the first `n` images of every output's staging
/// buffer (after the submission that fills them).
pub(super) fn start_reads(outputs: &[Output], n: usize) -> Vec<MapRead> {
    outputs
        .iter()
        .map(|o| MapRead::start(&o.staging, o.range(0, n).1 as u64 * 4))
        .collect()
}

/// The first `n` images of every output, once mapped.
pub(super) async fn finish_reads(
    outputs: &[Output],
    reads: Vec<MapRead>,
    n: usize,
) -> Result<Vec<Tensor>> {
    let mut tensors = Vec::with_capacity(outputs.len());
    for (o, read) in outputs.iter().zip(reads) {
        let mut shape = o.shape.clone();
        if !o.whole {
            shape[0] = n;
        }
        tensors.push(Tensor::new(shape, read.finish(o.range(0, n).1).await?)?);
    }
    Ok(tensors)
}

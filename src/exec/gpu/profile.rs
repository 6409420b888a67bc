//! Per-dispatch GPU timing ([`super::CompiledGraph::profile`]): one
//! begin/end timestamp pair around every dispatch, each in its own compute
//! pass, in query sets made at compile time.

use super::memory::Alloc;
use super::{LayerTime, Step};
use crate::device::buffers::MapRead;

/// Begin/end pairs per query set.
pub(super) const PAIRS_PER_SET: usize = (wgpu::QUERY_SET_MAX_QUERIES / 2) as usize;

/// Query sets for the profile: one begin/end pair per dispatch, in sets of
/// at most `wgpu::QUERY_SET_MAX_QUERIES`.
pub(super) struct Timestamps {
    sets: Vec<(wgpu::QuerySet, u32)>,
    resolve: Vec<wgpu::Buffer>,
    readback: Vec<wgpu::Buffer>,
}

impl Timestamps {
    /// The query sets and buffers for `steps`, or `None` without
    /// `TIMESTAMP_QUERY` or without steps.
    pub fn new(alloc: &mut Alloc, steps: &[Step]) -> Option<Self> {
        if !alloc.ctx.has_timestamps() || steps.is_empty() {
            return None;
        }
        let mut t = Timestamps {
            sets: Vec::new(),
            resolve: Vec::new(),
            readback: Vec::new(),
        };
        for chunk in steps.chunks(PAIRS_PER_SET) {
            let count = 2 * chunk.len() as u32;
            let set = alloc
                .ctx
                .device
                .create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("profile timestamps"),
                    ty: wgpu::QueryType::Timestamp,
                    count,
                });
            t.sets.push((set, count));
            t.resolve.push(alloc.raw(
                "timestamp resolve",
                count as u64 * 8,
                wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            ));
            t.readback.push(alloc.raw(
                "timestamp readback",
                count as u64 * 8,
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            ));
        }
        Some(t)
    }

    /// The resolve and read-back buffers.
    pub fn buffers(&self) -> impl Iterator<Item = &wgpu::Buffer> {
        self.resolve.iter().chain(&self.readback)
    }

    /// Encodes every step in its own timed compute pass, then the
    /// resolution of the queries into the read-back buffers.
    pub fn encode(&self, enc: &mut wgpu::CommandEncoder, steps: &[Step]) {
        for (k, s) in steps.iter().enumerate() {
            let (set, _) = &self.sets[k / PAIRS_PER_SET];
            let q = 2 * (k % PAIRS_PER_SET) as u32;
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(&s.dispatch.label),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: set,
                    beginning_of_pass_write_index: Some(q),
                    end_of_pass_write_index: Some(q + 1),
                }),
            });
            s.dispatch.encode(&mut pass);
        }
        for (j, (set, count)) in self.sets.iter().enumerate() {
            enc.resolve_query_set(set, 0..*count, &self.resolve[j], 0);
            enc.copy_buffer_to_buffer(&self.resolve[j], 0, &self.readback[j], 0, *count as u64 * 8);
        }
    }

    /// Requests the mapping of the read-back buffers (after the submission
    /// that filled them).
    pub fn start_reads(&self) -> Vec<(MapRead, usize)> {
        self.readback
            .iter()
            .zip(&self.sets)
            .map(|(b, (_, count))| (MapRead::start(b, *count as u64 * 8), *count as usize))
            .collect()
    }

    /// Each step's time from the mapped ticks.
    pub async fn finish(
        reads: Vec<(MapRead, usize)>,
        steps: &[Step],
        period_ns: f64,
    ) -> crate::error::Result<Vec<LayerTime>> {
        let mut ticks: Vec<u64> = Vec::with_capacity(2 * steps.len());
        for (read, count) in reads {
            ticks.extend(read.finish::<u64>(count).await?);
        }
        Ok(steps
            .iter()
            .enumerate()
            .map(|(k, s)| LayerTime {
                name: s.dispatch.label.clone(),
                kind: s.kind,
                ms: ticks[2 * k + 1].saturating_sub(ticks[2 * k]) as f64 * period_ns / 1e6,
                flops: s.dispatch.flops,
            })
            .collect())
    }
}

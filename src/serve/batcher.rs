//! Dynamic batching: concurrent requests merged into engine runs.
//!
//! Requests wait in one bounded FIFO queue. One worker thread (the only
//! caller of [`Engine::run`], so the GPU is never driven from a tokio
//! worker) takes images from the front: up to `max_batch` per run,
//! whole requests first and, when the next one does not fit, the images of
//! it that do; the rest of that request goes first into the next run. So a
//! request larger than the compiled batch is split across runs and
//! answered once, a request never runs after one that arrived later, and
//! each run is as full as the queue allows.
//!
//! With `max_queue_delay > 0`, a run that is not full waits for more
//! requests, until the oldest queued request has waited that long (never
//! longer), or the batch fills. With 0 (the default) it runs what is
//! queued at once.
//!
//! [`Batcher::submit`] never blocks: a full queue (`max_queue_size`
//! requests waiting) refuses at once ([`ErrorKind::Overloaded`]). The
//! queue's std mutex is held only for pushes and pops, never across an
//! `.await` or a run. A request whose caller went away (its receiver
//! dropped) before it ran is skipped. An engine error or panic fails the
//! requests of that run only (500); the worker goes on.

use super::engine::Engine;
use super::error::{ErrorKind, ServeError};
use super::metrics::Metrics;
use crate::Tensor;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How requests are batched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// Images per run at most (the batch the model is compiled for).
    pub max_batch: usize,
    /// How long a run that is not full waits for more requests, counted
    /// from the arrival of the oldest one queued.
    pub max_queue_delay: Duration,
    /// Requests that may wait (not yet started); one more is refused.
    pub max_queue_size: usize,
}

/// A request's outputs and timings.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// `images × output values per image`, image by image.
    pub data: Vec<f32>,
    /// Time from arrival in the queue to the start of its first run, µs.
    pub queue_us: u64,
    /// Time of the runs it took part in, µs.
    pub compute_us: u64,
}

/// What a caller awaits: the reply, or the error of its run.
pub type Pending = oneshot::Receiver<Result<Reply, ServeError>>;

struct Job {
    input: Vec<f32>,
    images: usize,
    /// Images already run.
    next: usize,
    output: Vec<f32>,
    enqueued: Instant,
    started: Option<Instant>,
    compute: Duration,
    tx: oneshot::Sender<Result<Reply, ServeError>>,
}

struct Queue {
    pending: VecDeque<Job>,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    opts: BatchOptions,
    in_dims: Vec<usize>,
    per_in: usize,
    per_out: usize,
    metrics: Arc<Metrics>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding the lock leaves a consistent queue (every
        // change is one push or pop), so a poisoned lock is still usable.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_pending_gauge(&self, q: &Queue) {
        self.metrics
            .pending_request_count
            .store(q.pending.len() as u64, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The queue and its worker.
pub struct Batcher {
    shared: Arc<Shared>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl Batcher {
    /// A batcher for images of shape `in_dims` giving `per_out` values
    /// each. Requests queue from now on; [`Batcher::start`] starts running
    /// them.
    pub fn new(
        opts: BatchOptions,
        in_dims: Vec<usize>,
        per_out: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        assert!(opts.max_batch > 0, "max_batch must be positive");
        let per_in = in_dims.iter().product();
        Batcher {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue {
                    pending: VecDeque::new(),
                    closed: false,
                }),
                wake: Condvar::new(),
                opts,
                in_dims,
                per_in,
                per_out,
                metrics,
            }),
            worker: Mutex::new(None),
        }
    }

    /// Starts the worker thread that runs batches on `engine`.
    pub fn start(&self, engine: Arc<dyn Engine>) -> std::io::Result<()> {
        let shared = self.shared.clone();
        let handle = std::thread::Builder::new()
            .name("resincept-batcher".into())
            .spawn(move || worker(&shared, engine.as_ref()))?;
        *self.worker.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        Ok(())
    }

    /// Queues a request of `images` images (`input` holds them one after
    /// the other). Returns at once: the receiver of its reply, or an error
    /// when the queue is full or closed.
    pub fn submit(&self, input: Vec<f32>, images: usize) -> Result<Pending, ServeError> {
        let s = &self.shared;
        if images == 0 || input.len() != images * s.per_in {
            return Err(ServeError::internal(format!(
                "batcher: {} values for {images} images of {} values",
                input.len(),
                s.per_in
            )));
        }
        let (tx, rx) = oneshot::channel();
        let mut q = s.lock();
        if q.closed {
            return Err(ServeError::unavailable(
                "the server is shutting down and takes no new requests",
            ));
        }
        if q.pending.len() >= s.opts.max_queue_size {
            return Err(ServeError::new(
                ErrorKind::Overloaded,
                format!(
                    "the server is overloaded: {} requests already wait for the GPU \
                     (--max-queue-size {}); retry later",
                    q.pending.len(),
                    s.opts.max_queue_size
                ),
            ));
        }
        q.pending.push_back(Job {
            output: Vec::with_capacity(images * s.per_out),
            input,
            images,
            next: 0,
            enqueued: Instant::now(),
            started: None,
            compute: Duration::ZERO,
            tx,
        });
        s.set_pending_gauge(&q);
        drop(q);
        s.wake.notify_one();
        Ok(rx)
    }

    /// Requests waiting now (not yet started).
    pub fn queued(&self) -> usize {
        self.shared.lock().pending.len()
    }

    /// Refuses new requests and lets the worker finish what is queued,
    /// then waits for it to end (at most `wait`; a run still going on
    /// then is left to finish on its own).
    pub fn close(&self, wait: Duration) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
        let handle = self.worker.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let deadline = Instant::now() + wait;
            while !h.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
    }
}

/// The worker: takes a batch, runs it, answers, until closed and empty.
fn worker(s: &Shared, engine: &dyn Engine) {
    // The rest of a request split across runs; it goes first.
    let mut carry: Option<Job> = None;
    loop {
        let mut batch: Vec<Job> = Vec::new();
        {
            let mut q = s.lock();
            while carry.is_none() && q.pending.is_empty() {
                if q.closed {
                    return;
                }
                q = s.wake.wait(q).unwrap_or_else(|e| e.into_inner());
            }
            if carry.is_none() && !s.opts.max_queue_delay.is_zero() {
                q = wait_for_more(s, q);
            }
            let mut room = s.opts.max_batch;
            if let Some(job) = carry.take() {
                room -= (job.images - job.next).min(room);
                batch.push(job);
            }
            while room > 0 {
                let Some(job) = q.pending.pop_front() else {
                    break;
                };
                if job.tx.is_closed() {
                    // Its caller went away before it ran.
                    Metrics::add(&s.metrics.request_failure, 1);
                    continue;
                }
                room -= job.images.min(room);
                batch.push(job);
            }
            s.set_pending_gauge(&q);
        }
        if batch.is_empty() {
            continue;
        }
        carry = run_batch(s, engine, batch);
    }
}

/// With a queue delay: waits until the queued images fill a batch, the
/// oldest request has waited `max_queue_delay`, or the queue closes.
fn wait_for_more<'a>(s: &'a Shared, mut q: MutexGuard<'a, Queue>) -> MutexGuard<'a, Queue> {
    let Some(oldest) = q.pending.front().map(|j| j.enqueued) else {
        return q;
    };
    let deadline = oldest + s.opts.max_queue_delay;
    loop {
        let queued: usize = q.pending.iter().map(|j| j.images).sum();
        let now = Instant::now();
        if queued >= s.opts.max_batch || q.closed || now >= deadline {
            return q;
        }
        q = s
            .wake
            .wait_timeout(q, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// Runs the images of `batch` that fit in one run, answers the requests
/// that are complete, and returns the one whose images are not all run
/// yet (only the last can be).
fn run_batch(s: &Shared, engine: &dyn Engine, mut batch: Vec<Job>) -> Option<Job> {
    let mut room = s.opts.max_batch;
    let mut counts = Vec::with_capacity(batch.len());
    let images: usize = batch.iter().map(|j| j.images - j.next).sum();
    let mut data = Vec::with_capacity(images.min(s.opts.max_batch) * s.per_in);
    let start = Instant::now();
    for job in &mut batch {
        let c = (job.images - job.next).min(room);
        data.extend_from_slice(&job.input[job.next * s.per_in..(job.next + c) * s.per_in]);
        counts.push(c);
        room -= c;
        job.started.get_or_insert(start);
    }
    let n: usize = counts.iter().sum();
    let shape: Vec<usize> = std::iter::once(n)
        .chain(s.in_dims.iter().copied())
        .collect();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        engine.run(Tensor { shape, data })
    }));
    let took = start.elapsed();
    Metrics::add(&s.metrics.exec_count, 1);
    let out = match result {
        Ok(Ok(t)) if t.data.len() == n * s.per_out => t.data,
        Ok(Ok(t)) => {
            let m = format!(
                "the engine returned shape {:?} for a batch of {n}, expected {n}×{} values",
                t.shape, s.per_out
            );
            fail(batch, &m);
            return None;
        }
        Ok(Err(m)) => {
            fail(batch, &m);
            return None;
        }
        Err(panic) => {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            fail(batch, &format!("the engine panicked: {why}"));
            return None;
        }
    };
    Metrics::add(&s.metrics.inference_count, n as u64);
    let mut carry = None;
    let mut offset = 0;
    for (mut job, c) in batch.into_iter().zip(counts) {
        job.output
            .extend_from_slice(&out[offset * s.per_out..(offset + c) * s.per_out]);
        offset += c;
        job.next += c;
        job.compute += took;
        if job.next < job.images {
            // Free what has run; keep the rest for the next run.
            carry = Some(job);
            continue;
        }
        let queue_us = job
            .started
            .map_or(0, |t| t.duration_since(job.enqueued).as_micros() as u64);
        let reply = Reply {
            data: std::mem::take(&mut job.output),
            queue_us,
            compute_us: job.compute.as_micros() as u64,
        };
        // A caller that went away meanwhile is not an error here.
        let _ = job.tx.send(Ok(reply));
    }
    carry
}

/// Answers every job with an internal error.
fn fail(jobs: Vec<Job>, message: &str) {
    for job in jobs {
        let _ = job.tx.send(Err(ServeError::internal(format!(
            "inference failed: {message}"
        ))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Per image: the sum of its values and the size of the batch it ran
    /// in. Records batch sizes; optionally waits for a go-ahead before each
    /// run (and says when it has started one), so tests can queue requests
    /// while a run is in progress. A batch holding the value 666 fails,
    /// one holding 999 panics.
    struct Fake {
        batches: Mutex<Vec<usize>>,
        gate: Option<Gate>,
    }

    /// (go-ahead receiver, "a run started" sender).
    type Gate = (Mutex<mpsc::Receiver<()>>, Mutex<mpsc::Sender<()>>);

    impl Engine for Fake {
        fn run(&self, batch: Tensor) -> Result<Tensor, String> {
            let n = batch.shape[0];
            self.batches.lock().unwrap().push(n);
            if let Some((go, started)) = &self.gate {
                started.lock().unwrap().send(()).unwrap();
                go.lock().unwrap().recv().unwrap();
            }
            if batch.data.contains(&999.0) {
                panic!("test panic");
            }
            if batch.data.contains(&666.0) {
                return Err("bad value".into());
            }
            let per = batch.data.len() / n;
            let data = batch
                .data
                .chunks(per)
                .flat_map(|img| [img.iter().sum::<f32>(), n as f32])
                .collect();
            Ok(Tensor::new(vec![n, 2], data).unwrap())
        }
    }

    struct Setup {
        batcher: Batcher,
        engine: Arc<Fake>,
        go: Option<mpsc::Sender<()>>,
        started: Option<mpsc::Receiver<()>>,
        metrics: Arc<Metrics>,
    }

    /// Images are 2 values each; outputs are 2 values each.
    fn setup(max_batch: usize, delay_ms: u64, queue: usize, gated: bool) -> Setup {
        let (go_tx, go_rx) = mpsc::channel();
        let (st_tx, st_rx) = mpsc::channel();
        let engine = Arc::new(Fake {
            batches: Mutex::new(Vec::new()),
            gate: gated.then(|| (Mutex::new(go_rx), Mutex::new(st_tx))),
        });
        let metrics = Arc::new(Metrics::default());
        let batcher = Batcher::new(
            BatchOptions {
                max_batch,
                max_queue_delay: Duration::from_millis(delay_ms),
                max_queue_size: queue,
            },
            vec![2],
            2,
            metrics.clone(),
        );
        batcher.start(engine.clone()).unwrap();
        Setup {
            batcher,
            engine,
            go: gated.then_some(go_tx),
            started: gated.then_some(st_rx),
            metrics,
        }
    }

    impl Setup {
        /// A request of `images` images whose values are `first, first+1, …`.
        fn submit(&self, first: f32, images: usize) -> Result<Pending, ServeError> {
            let input = (0..2 * images).map(|i| first + i as f32).collect();
            self.batcher.submit(input, images)
        }
        fn wait_started(&self) {
            self.started.as_ref().unwrap().recv().unwrap();
        }
        fn release(&self) {
            self.go.as_ref().unwrap().send(()).unwrap();
        }
        fn batches(&self) -> Vec<usize> {
            self.engine.batches.lock().unwrap().clone()
        }
    }

    /// The sums a request of `images` images starting at `first` gets.
    fn sums(first: f32, images: usize) -> Vec<f32> {
        (0..images)
            .map(|k| 2.0 * first + 4.0 * k as f32 + 1.0)
            .collect()
    }

    fn answer(rx: Pending) -> Result<Reply, ServeError> {
        rx.blocking_recv().expect("the batcher dropped a request")
    }

    fn parts(r: &Reply) -> (Vec<f32>, Vec<f32>) {
        let sums = r.data.iter().step_by(2).copied().collect();
        let sizes = r.data.iter().skip(1).step_by(2).copied().collect();
        (sums, sizes)
    }

    /// Requests queued while a run is in progress are merged into the next
    /// run, in arrival order, and each caller gets its own images' outputs.
    #[test]
    fn queued_requests_merge_in_order() {
        let t = setup(8, 0, 16, true);
        let a = t.submit(0.0, 1).unwrap();
        t.wait_started();
        let b = t.submit(100.0, 2).unwrap();
        let c = t.submit(200.0, 3).unwrap();
        t.release();
        t.wait_started();
        t.release();
        assert_eq!(parts(&answer(a).unwrap()), (sums(0.0, 1), vec![1.0]));
        assert_eq!(parts(&answer(b).unwrap()), (sums(100.0, 2), vec![5.0; 2]));
        assert_eq!(parts(&answer(c).unwrap()), (sums(200.0, 3), vec![5.0; 3]));
        assert_eq!(t.batches(), [1, 5]);
        let m = &t.metrics;
        assert_eq!(m.exec_count.load(std::sync::atomic::Ordering::Relaxed), 2);
        assert_eq!(
            m.inference_count.load(std::sync::atomic::Ordering::Relaxed),
            6
        );
    }

    /// A request larger than the compiled batch runs in several batches and
    /// is answered once, with its outputs in order; the request after it
    /// fills the last run's free places.
    #[test]
    fn an_oversized_request_is_split_and_answered_once() {
        let t = setup(4, 0, 16, true);
        let a = t.submit(0.0, 10).unwrap();
        t.wait_started();
        let b = t.submit(500.0, 1).unwrap();
        for _ in 0..3 {
            t.release();
            if t.batches().len() < 3 {
                t.wait_started();
            }
        }
        let ra = answer(a).unwrap();
        let (s, sizes) = parts(&ra);
        assert_eq!(s, sums(0.0, 10));
        assert_eq!(sizes, [4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 3.0, 3.0]);
        assert_eq!(parts(&answer(b).unwrap()), (sums(500.0, 1), vec![3.0]));
        assert_eq!(t.batches(), [4, 4, 3]);
    }

    /// Without a delay, a request arriving during a run goes into the next
    /// run, which takes at most max_batch images: 3 + 3 with max 4 is 4 then 2.
    #[test]
    fn a_request_that_does_not_fit_continues_in_the_next_run() {
        let t = setup(4, 0, 16, true);
        let first = t.submit(0.0, 1).unwrap();
        t.wait_started();
        let a = t.submit(10.0, 3).unwrap();
        let b = t.submit(20.0, 3).unwrap();
        t.release();
        t.wait_started();
        t.release();
        t.wait_started();
        t.release();
        answer(first).unwrap();
        assert_eq!(parts(&answer(a).unwrap()).0, sums(10.0, 3));
        assert_eq!(parts(&answer(b).unwrap()).0, sums(20.0, 3));
        assert_eq!(t.batches(), [1, 4, 2]);
    }

    /// The queue holds max_queue_size requests; one more is refused at
    /// once as overloaded; the queued ones are all answered.
    #[test]
    fn a_full_queue_refuses_at_once() {
        let t = setup(1, 0, 2, true);
        let a = t.submit(0.0, 1).unwrap();
        t.wait_started();
        let b = t.submit(10.0, 1).unwrap();
        let c = t.submit(20.0, 1).unwrap();
        let e = t.submit(30.0, 1).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Overloaded);
        assert!(e.message.contains("--max-queue-size 2"), "{e}");
        assert_eq!(e.http_status(), 503);
        for _ in 0..3 {
            t.release();
            if t.batches().len() < 3 {
                t.wait_started();
            }
        }
        for (rx, first) in [(a, 0.0), (b, 10.0), (c, 20.0)] {
            assert_eq!(parts(&answer(rx).unwrap()).0, sums(first, 1));
        }
    }

    /// With a queue delay, a lone request waits for company, but never
    /// longer than the delay; requests that fill a batch run at once.
    #[test]
    fn the_queue_delay_merges_and_is_bounded() {
        let t = setup(2, 300, 16, false);
        let t0 = Instant::now();
        let a = t.submit(0.0, 1).unwrap();
        let r = answer(a).unwrap();
        assert!(t0.elapsed() >= Duration::from_millis(300));
        assert_eq!(parts(&r).1, [1.0]);

        // Two requests fill the batch of 2: they run together, without
        // waiting out a 1000 s delay.
        let t = setup(2, 1_000_000, 16, false);
        let a = t.submit(0.0, 1).unwrap();
        let b = t.submit(10.0, 1).unwrap();
        assert_eq!(parts(&answer(a).unwrap()).1, [2.0]);
        assert_eq!(parts(&answer(b).unwrap()).1, [2.0]);
        assert_eq!(t.batches(), [2]);
    }

    /// An engine error or panic fails that run's requests only; the worker
    /// goes on with the next.
    #[test]
    fn engine_failures_fail_only_their_batch() {
        let t = setup(1, 0, 16, false);
        let e = answer(t.submit(666.0, 1).unwrap()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Internal);
        assert!(e.message.contains("bad value"), "{e}");
        let e = answer(t.submit(999.0, 1).unwrap()).unwrap_err();
        assert!(e.message.contains("panicked: test panic"), "{e}");
        assert_eq!(
            parts(&answer(t.submit(1.0, 1).unwrap()).unwrap()).0,
            sums(1.0, 1)
        );
    }

    /// A request whose caller went away before it ran is skipped.
    #[test]
    fn abandoned_requests_are_skipped() {
        let t = setup(4, 0, 16, true);
        let a = t.submit(0.0, 1).unwrap();
        t.wait_started();
        let gone = t.submit(50.0, 2).unwrap();
        drop(gone);
        let c = t.submit(100.0, 1).unwrap();
        t.release();
        t.wait_started();
        t.release();
        answer(a).unwrap();
        assert_eq!(parts(&answer(c).unwrap()), (sums(100.0, 1), vec![1.0]));
        assert_eq!(t.batches(), [1, 1]);
    }

    /// After close, new requests are refused; queued ones still run.
    #[test]
    fn close_refuses_new_requests_and_finishes_queued_ones() {
        let t = setup(4, 0, 16, true);
        let a = t.submit(0.0, 1).unwrap();
        t.wait_started();
        let b = t.submit(10.0, 1).unwrap();
        std::thread::scope(|scope| {
            scope.spawn(|| t.batcher.close(Duration::from_secs(60)));
            while !t.batcher.shared.lock().closed {
                std::thread::yield_now();
            }
            let e = t.submit(0.0, 1).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Unavailable);
            t.release();
            t.wait_started();
            t.release();
        });
        answer(a).unwrap();
        assert_eq!(parts(&answer(b).unwrap()).0, sums(10.0, 1));
        let e = t.submit(0.0, 1).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unavailable);
    }
}

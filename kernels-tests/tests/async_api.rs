//! The async API: runs awaited from a single-threaded tokio runtime never
//! block it, give what the blocking API gives, and queue fairly when
//! several are in flight.

use kernels_tests::gpu;
use resincept::exec::gpu::{CompileOptions, CompiledGraph};
use resincept::weights::{synthetic_input, Weights};
use resincept::{models, Context, ContextOptions};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Six concurrent `run_async` calls (batches of 1 to 3 images) on one
/// current-thread runtime, next to a task that ticks every millisecond:
/// every result equals the blocking `run` of the same input bit for bit,
/// and the ticker keeps ticking while the GPU works (a run that blocked
/// the runtime's only thread would stop it). The model is compiled with
/// `compile_async` on a context made by `Context::new_async`, inside the
/// runtime.
#[test]
fn concurrent_run_async_on_one_thread_matches_blocking_run() {
    let Some(_) = gpu() else { return };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let opts = ContextOptions::from_env().unwrap();
        let ctx = Arc::new(Context::new_async(&opts).await.unwrap());
        let graph = models::build("resnet18", 3, 40).unwrap();
        let weights = Weights::from_synthetic(3, &graph.param_specs());
        let model = Arc::new(
            CompiledGraph::compile_async(
                ctx,
                &graph,
                &weights,
                &CompileOptions::new(3, 40, 40).poisoned(),
            )
            .await
            .unwrap(),
        );
        let inputs: Vec<_> = (0..6)
            .map(|k| synthetic_input(100 + k as u64, &[1 + k % 3, 3, 40, 40]))
            .collect();

        let ticks = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let ticker = {
            let (ticks, done) = (ticks.clone(), done.clone());
            tokio::spawn(async move {
                while done.load(Ordering::SeqCst) == 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    ticks.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        let runs: Vec<_> = inputs
            .iter()
            .cloned()
            .map(|x| {
                let m = model.clone();
                tokio::spawn(async move { m.run_async(&x).await })
            })
            .collect();
        let mut got = Vec::new();
        for r in runs {
            got.push(r.await.unwrap().unwrap());
        }
        done.store(1, Ordering::SeqCst);
        ticker.await.unwrap();
        // Had a run blocked the runtime's only thread, the ticker could
        // tick about once between runs (its timer expires meanwhile); not
        // blocked, it ticks every millisecond or so throughout the GPU work
        // (six ResNet-18 runs on lavapipe take well over 100 ms).
        let ticked = ticks.load(Ordering::SeqCst);
        assert!(
            ticked >= 20,
            "the runtime's only thread ticked {ticked} times during six GPU runs: \
             run_async blocked it"
        );

        for (x, out) in inputs.iter().zip(&got) {
            let want = model.run(x).unwrap();
            assert_eq!(out.len(), want.len());
            for (a, b) in out.iter().zip(&want) {
                assert_eq!(a.shape, b.shape);
                let same = a
                    .data
                    .iter()
                    .zip(&b.data)
                    .all(|(p, q)| p.to_bits() == q.to_bits());
                assert!(same, "run_async and run differ on input {:?}", x.shape);
            }
        }
    });
}

/// `read_buffer_async` and `profile_async` complete on a current-thread
/// runtime too (the profile only where the adapter has timestamps).
#[test]
fn read_back_and_profile_async() {
    let Some(ctx) = gpu() else { return };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let data: Vec<f32> = (0..1000).map(|i| i as f32 * 0.5).collect();
    let buf = ctx.storage_buffer_init("data", &data);
    let back = rt.block_on(ctx.read_buffer_async(&buf, 1000)).unwrap();
    assert_eq!(back, data);
    let graph = models::build("resnet18", 1, 32).unwrap();
    let weights = Weights::from_synthetic(1, &graph.param_specs());
    let model = CompiledGraph::compile(
        ctx.clone(),
        &graph,
        &weights,
        &CompileOptions::new(1, 32, 32),
    )
    .unwrap();
    let x = synthetic_input(5, &[1, 3, 32, 32]);
    let times = rt.block_on(model.profile_async(&x)).unwrap();
    assert_eq!(times.is_some(), ctx.has_timestamps());
    if let Some(t) = times {
        assert_eq!(t.len(), model.dispatch_labels().len());
    }
}

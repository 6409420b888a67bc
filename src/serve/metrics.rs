//! Counters for `GET /metrics`, in Prometheus' text format under Triton's
//! names, so dashboards made for Triton work unchanged.
//!
//! Durations are cumulative microseconds over successful requests, as
//! Triton counts them: a request's queue time is from its arrival in the
//! queue to the start of its first run; its compute time is the time of
//! every run it took part in (the whole batch's run, not a share of it).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The server's counters, updated lock-free from any thread.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests answered with outputs.
    pub request_success: AtomicU64,
    /// Inference requests answered with an error (any status), or
    /// abandoned by their client before they ran.
    pub request_failure: AtomicU64,
    /// Images inferred (a request of 3 images counts 3).
    pub inference_count: AtomicU64,
    /// Engine runs (batches executed): below `inference_count` when
    /// requests were batched together.
    pub exec_count: AtomicU64,
    /// Cumulative end-to-end time of successful requests, µs.
    pub request_duration_us: AtomicU64,
    /// Cumulative time successful requests waited in the queue, µs.
    pub queue_duration_us: AtomicU64,
    /// Cumulative engine time of successful requests, µs.
    pub compute_infer_duration_us: AtomicU64,
    /// Requests waiting in the queue now (a gauge).
    pub pending_request_count: AtomicU64,
}

/// `(name, type, help)` of each metric, in output order.
const HELP: [(&str, &str, &str); 8] = [
    (
        "nv_inference_request_success",
        "counter",
        "Number of successful inference requests, all batch sizes",
    ),
    (
        "nv_inference_request_failure",
        "counter",
        "Number of failed inference requests, all batch sizes",
    ),
    (
        "nv_inference_count",
        "counter",
        "Number of inferences performed (a request of N images counts N)",
    ),
    (
        "nv_inference_exec_count",
        "counter",
        "Number of model executions performed (batches run)",
    ),
    (
        "nv_inference_request_duration_us",
        "counter",
        "Cumulative inference request duration in microseconds",
    ),
    (
        "nv_inference_queue_duration_us",
        "counter",
        "Cumulative inference queuing duration in microseconds",
    ),
    (
        "nv_inference_compute_infer_duration_us",
        "counter",
        "Cumulative compute inference duration in microseconds",
    ),
    (
        "nv_inference_pending_request_count",
        "gauge",
        "Instantaneous number of pending requests awaiting execution",
    ),
];

impl Metrics {
    /// Adds `v` to `counter`.
    pub fn add(counter: &AtomicU64, v: u64) {
        counter.fetch_add(v, Relaxed);
    }

    /// The text exposition, each sample labelled `model` and `version`;
    /// after Triton's metrics, `resincept_inference_in_flight`: requests
    /// admitted and not yet answered (queued or running), what a shutdown
    /// waits for.
    pub fn render(&self, model: &str, version: &str, in_flight: usize) -> String {
        let values = [
            &self.request_success,
            &self.request_failure,
            &self.inference_count,
            &self.exec_count,
            &self.request_duration_us,
            &self.queue_duration_us,
            &self.compute_infer_duration_us,
            &self.pending_request_count,
        ];
        let label = |s: &str| {
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        };
        let mut out = String::new();
        for ((name, kind, help), v) in HELP.iter().zip(values) {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(
                out,
                "{name}{{model=\"{}\",version=\"{}\"}} {}",
                label(model),
                label(version),
                v.load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP resincept_inference_in_flight Inference requests admitted and not yet answered\n\
             # TYPE resincept_inference_in_flight gauge\n\
             resincept_inference_in_flight{{model=\"{}\",version=\"{}\"}} {in_flight}",
            label(model),
            label(version)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_metric_with_labels() {
        let m = Metrics::default();
        Metrics::add(&m.inference_count, 5);
        Metrics::add(&m.exec_count, 2);
        let text = m.render("res\"net", "1", 7);
        for (name, kind, _) in HELP {
            assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{text}");
        }
        assert!(text.contains("nv_inference_count{model=\"res\\\"net\",version=\"1\"} 5\n"));
        assert!(text.contains("nv_inference_exec_count{model=\"res\\\"net\",version=\"1\"} 2\n"));
        assert!(
            text.contains("resincept_inference_in_flight{model=\"res\\\"net\",version=\"1\"} 7\n")
        );
        assert_eq!(text.lines().count(), 3 * HELP.len() + 3);
    }
}

"""Load: 4 and 16 concurrent tritonclient HTTP clients for a bounded time.
No request may fail, and the server must have batched (fewer engine runs
than images). Prints requests/s, p50/p99 latency and the average batch
(lavapipe behaviour, not speed) and, with SERVE_BENCH_OUT set, writes them
there as JSON for docs/BENCHMARKS.md.
"""

import json
import os
import threading
import time

import numpy as np
import pytest
import tritonclient.http as thttp

from conftest import MODEL, image_batch, metrics

DURATION_S = float(os.environ.get("SERVE_LOAD_SECONDS", "10"))
RESULTS = {}


def load(server, clients, duration):
    x = image_batch(1, seed=21)
    latencies, failures = [], []
    lock = threading.Lock()
    stop_at = time.monotonic() + duration

    def client():
        c = thttp.InferenceServerClient(server.http, network_timeout=600, connection_timeout=60)
        i = thttp.InferInput("input", list(x.shape), "FP32")
        i.set_data_from_numpy(x)
        while time.monotonic() < stop_at:
            t = time.monotonic()
            try:
                out = c.infer(MODEL, [i]).as_numpy("output")
                ok = out.shape == (1, 1000) and np.isfinite(out).all()
                err = None if ok else f"bad output {out.shape}"
            except Exception as e:  # noqa: BLE001 - every failure is reported
                err = repr(e)
            with lock:
                if err:
                    failures.append(err)
                else:
                    latencies.append(time.monotonic() - t)
        c.close()

    before = metrics(server.http_port)
    t0 = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=duration + 600)
    wall = time.monotonic() - t0
    after = metrics(server.http_port)
    d = {k: after[k] - before[k] for k in after}
    return latencies, failures, wall, d


@pytest.mark.parametrize("clients", [4, 16])
def test_concurrent_clients_batch_without_failures(server, clients):
    latencies, failures, wall, d = load(server, clients, DURATION_S)
    assert failures == [], failures[:5]
    assert latencies, "no request finished"
    assert d["nv_inference_request_failure"] == 0
    assert d["nv_inference_request_success"] == len(latencies)
    assert d["nv_inference_count"] == len(latencies)
    assert 0 < d["nv_inference_exec_count"] < d["nv_inference_count"], d
    lat = np.array(latencies) * 1e3
    row = {
        "clients": clients,
        "requests": len(latencies),
        "seconds": round(wall, 2),
        "requests_per_s": round(len(latencies) / wall, 2),
        "p50_ms": round(float(np.percentile(lat, 50)), 1),
        "p99_ms": round(float(np.percentile(lat, 99)), 1),
        "avg_batch": round(d["nv_inference_count"] / d["nv_inference_exec_count"], 2),
        "queue_ms_per_request": round(d["nv_inference_queue_duration_us"] / 1e3 / len(latencies), 1),
    }
    RESULTS[clients] = row
    print(f"\nload: {json.dumps(row)}")
    out = os.environ.get("SERVE_BENCH_OUT")
    if out:
        with open(out, "w") as f:
            json.dump(sorted(RESULTS.values(), key=lambda r: r["clients"]), f, indent=1)

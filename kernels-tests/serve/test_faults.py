"""Overload and shutdown, on the `small_server` (max batch 4, queue 8):
a burst beyond the queue gets prompt 503s with Retry-After (gRPC
UNAVAILABLE) while the accepted requests succeed; then SIGTERM with 8
requests in flight: readiness turns 503 at once, new requests are refused,
all 8 are answered, and the process exits 0 within the grace period.
Also, on the main server: clients that disconnect mid-request.
"""

import json
import signal
import socket
import threading
import time

import numpy as np
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp
from tritonclient.utils import InferenceServerException

from conftest import MODEL, SIZE, http_get, image_batch, json_request, metrics, post

INFER = f"/v2/models/{MODEL}/infer"


def burst(port, n, body):
    """n concurrent raw POSTs; [(status, headers, seconds)]."""
    results = [None] * n
    go = threading.Barrier(n)

    def one(k):
        go.wait()
        t = time.monotonic()
        status, headers, _ = post(port, INFER, body)
        results[k] = (status, headers, time.monotonic() - t)

    threads = [threading.Thread(target=one, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    return results


def test_overload_is_refused_at_once_with_retry_after(small_server):
    body = json_request(image_batch(1, seed=2))
    results = burst(small_server.http_port, 24, body)
    ok = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 503]
    assert len(ok) + len(refused) == 24, [r[0] for r in results]
    # At most 4 running and 8 queued are accepted.
    assert 1 <= len(ok) <= 12 and len(refused) >= 12, (len(ok), len(refused))
    for status, headers, seconds in refused:
        assert headers.get("retry-after") == "1", headers
    # Refusals are prompt: faster than any accepted request, which waits
    # for at least one run.
    assert max(r[2] for r in refused) < min(r[2] for r in ok), (
        [round(r[2], 2) for r in refused], [round(r[2], 2) for r in ok])
    status, headers, body = post(small_server.http_port, INFER, body)
    assert status == 200


def test_grpc_overload_is_unavailable(small_server):
    x = image_batch(1, seed=3)
    codes = []
    lock = threading.Lock()
    go = threading.Barrier(24)

    def one():
        c = tgrpc.InferenceServerClient(small_server.grpc)
        i = tgrpc.InferInput("input", [1, 3, SIZE, SIZE], "FP32")
        i.set_data_from_numpy(x)
        go.wait()
        try:
            c.infer(MODEL, [i], client_timeout=600)
            code = "OK"
        except InferenceServerException as e:
            code = e.status()
        with lock:
            codes.append(code)

    threads = [threading.Thread(target=one) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert set(codes) <= {"OK", "StatusCode.UNAVAILABLE"}, codes
    assert codes.count("StatusCode.UNAVAILABLE") >= 12 and "OK" in codes, codes


def test_sigterm_with_8_in_flight_answers_all_and_exits_0(small_server):
    port = small_server.http_port
    x = image_batch(8, seed=4)
    results = [None] * 8

    def one(k):
        c = thttp.InferenceServerClient(small_server.http, network_timeout=600)
        i = thttp.InferInput("input", [1, 3, SIZE, SIZE], "FP32")
        i.set_data_from_numpy(x[k : k + 1])
        try:
            results[k] = c.infer(MODEL, [i]).as_numpy("output")
        except Exception as e:  # noqa: BLE001
            results[k] = e

    threads = [threading.Thread(target=one, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    # Wait until the server has admitted all 8 (queued or running).
    deadline = time.monotonic() + 60
    while metrics(port)["resincept_inference_in_flight"] < 8:
        assert time.monotonic() < deadline, metrics(port)
        time.sleep(0.01)
    small_server.proc.send_signal(signal.SIGTERM)
    t_term = time.monotonic()
    # Readiness turns 503 at once (while the 8 still run) ...
    while http_get(port, "/v2/health/ready")[0] != 503:
        assert time.monotonic() - t_term < 2, "readiness still 200 two seconds after SIGTERM"
        time.sleep(0.01)
    assert json.loads(http_get(port, "/v2/health/ready")[2]) == {"ready": False}
    # ... new requests are refused ...
    status, _, body = post(port, INFER, json_request(x[:1]))
    assert status == 503 and "shutting down" in json.loads(body)["error"], body
    assert metrics(port)["resincept_inference_in_flight"] > 0, "the 8 finished too soon to test"
    # ... the 8 are all answered ...
    for t in threads:
        t.join(timeout=600)
    for k, r in enumerate(results):
        assert isinstance(r, np.ndarray) and r.shape == (1, 1000), (k, r)
    # ... and the process exits 0 (grace period 120 s).
    assert small_server.proc.wait(timeout=120) == 0, small_server.output()
    assert time.monotonic() - t_term < 120
    log = small_server.output()
    assert "SIGTERM" in log and "all requests answered" in log, log


def test_clients_that_disconnect_do_not_affect_others(server):
    port = server.http_port
    x = image_batch(1, seed=9)
    body = json_request(x)
    before = metrics(port)
    other = {}

    def normal():
        other["r"] = post(port, INFER, body)

    t = threading.Thread(target=normal)
    t.start()
    # Half a body, then gone.
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                  + body[: len(body) // 2])
    # A whole request, gone before the answer.
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                      + body)
    t.join(timeout=600)
    status, _, out = other["r"]
    assert status == 200, out[:200]
    assert http_get(port, "/v2/health/ready")[0] == 200
    r = thttp.InferenceServerClient(server.http).infer(MODEL, [thttp.InferInput("input", [1, 3, SIZE, SIZE], "FP32").set_data_from_numpy(x)])
    assert r.as_numpy("output").shape == (1, 1000)
    after = metrics(port)
    assert after["nv_inference_request_success"] - before["nv_inference_request_success"] >= 2
    # Nothing left queued or in flight for the vanished clients.
    deadline = time.monotonic() + 120
    while metrics(port)["resincept_inference_in_flight"] != 0:
        assert time.monotonic() < deadline, metrics(port)
        time.sleep(0.05)

"""Fixtures for the `resincept serve` suite: the real binary on loopback
ports, driven by the real protocol clients (tritonclient HTTP and gRPC,
open-inference-openapi).

Servers (ResNet-18 at 64x64, synthetic weights seed 1, lavapipe):
- `server`: the main one (max batch 8, queue 64, body limit 4 MiB), for
  the protocol, error, fuzz, load and disconnect tests.
- `small_server`: max batch 4, queue 8, for the overload and SIGTERM tests
  (the SIGTERM test stops it).
Both start when the session starts, so their compiles overlap.

`RESINCEPT_BIN` overrides the binary (default target/release/resincept).
Every loop in this suite is bounded in count and time.
"""

import json
import os
import socket
import struct
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("RESINCEPT_BIN", ROOT / "target" / "release" / "resincept"))
MODEL = "resnet18"
SIZE = 64
SEED = "1"
BODY_LIMIT = 4 << 20
# A compile on lavapipe takes seconds on an idle machine, a minute or more
# on a loaded one.
READY_TIMEOUT_S = 300


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env():
    e = dict(os.environ)
    e.setdefault("NODEVICE_SELECT", "1")
    return e


def lower(headers):
    """Header names in lower case (HTTP/1.1 names are case-insensitive)."""
    return {k.lower(): v for k, v in headers.items()}


def http_get(port, path, timeout=10):
    """(status, headers, body bytes) of GET http://127.0.0.1:port/path."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, lower(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, lower(e.headers), e.read()


class Server:
    """A `resincept serve` process and what was seen while it started."""

    def __init__(self, name, *flags, model=None):
        """`model`: the model flags (default: the zoo MODEL at SIZE with
        synthetic weights, seed SEED)."""
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"resincept-serve-{name}-{os.getpid()}.log"
        self.log = open(self.log_path, "wb")
        if model is None:
            model = ["--model", MODEL, "--size", str(SIZE), "--synthetic-seed", SEED]
        cmd = [
            str(BIN), "serve", *model,
            "--http-port", str(self.http_port), "--grpc-port", str(self.grpc_port),
            *flags,
        ]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env())
        self.started = time.monotonic()
        # What the server answered while it was live but still compiling
        # (`watch_start`).
        self.seen_loading = None

    @property
    def http(self):
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc(self):
        return f"127.0.0.1:{self.grpc_port}"

    def watch_start(self):
        """Waits until the server is live, then records what readiness and
        an inference request answer then (it compiles for seconds after)."""
        deadline = self.started + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                live = http_get(self.http_port, "/v2/health/live", timeout=2)
            except OSError:
                time.sleep(0.02)
                continue
            ready = http_get(self.http_port, "/v2/health/ready", timeout=2)
            infer = post(self.http_port, f"/v2/models/{MODEL}/infer", json_request(image_batch(1, 0)))
            self.seen_loading = {"live": live, "ready": ready, "infer": infer}
            return

    def wait_ready(self):
        deadline = self.started + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                live = http_get(self.http_port, "/v2/health/live", timeout=2)
            except OSError:
                time.sleep(0.05)
                continue
            if live[0] == 200 and http_get(self.http_port, "/v2/health/ready", timeout=2)[0] == 200:
                return
            time.sleep(0.2)
        raise RuntimeError(f"server not ready after {READY_TIMEOUT_S} s:\n{self.output()}")

    def output(self):
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def image_batch(n, seed):
    """n images of 3x64x64 in [0, 1) (deterministic)."""
    return np.random.RandomState(seed).rand(n, 3, SIZE, SIZE).astype(np.float32)


def json_request(x, **extra):
    body = {
        "inputs": [
            {"name": "input", "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}
        ]
    }
    body.update(extra)
    return json.dumps(body).encode()


def post(port, path, body, headers=None, timeout=300):
    """(status, headers, body) of a raw POST (no Content-Type, as tritonclient)."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, lower(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, lower(e.headers), e.read()


def metrics(port):
    """{name: value} of the server's metrics (one model, so one sample each)."""
    status, _, body = http_get(port, "/metrics")
    assert status == 200
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name.split("{")[0]] = float(value)
    return out


# ------------------------------------------------------------ safetensors

def save_safetensors(path, name, arr):
    arr = np.ascontiguousarray(arr, dtype="<f4")
    header = json.dumps(
        {name: {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [0, arr.nbytes]}}
    ).encode()
    header += b" " * ((8 - len(header) % 8) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(header)) + header + arr.tobytes())


def load_safetensors(path, name):
    b = Path(path).read_bytes()
    n = struct.unpack("<Q", b[:8])[0]
    t = json.loads(b[8 : 8 + n])[name]
    assert t["dtype"] == "F32", t
    s, e = t["data_offsets"]
    return np.frombuffer(b[8 + n + s : 8 + n + e], dtype="<f4").reshape(t["shape"])


def resincept_run(x, tmp_path):
    """`resincept run` on x with the servers' model and weights: the reference."""
    inp = tmp_path / "in.safetensors"
    out = tmp_path / "out.safetensors"
    save_safetensors(inp, "input", x)
    r = subprocess.run(
        [str(BIN), "run", "--model", MODEL, "--synthetic-seed", SEED,
         "--input", str(inp), "--output", str(out)],
        env=env(), capture_output=True, timeout=600,
    )
    assert r.returncode == 0, r.stderr.decode()
    return load_safetensors(out, "output")


# ------------------------------------------------------------ fixtures

_servers = {}


def pytest_sessionstart(session):
    if not BIN.is_file():
        raise pytest.UsageError(f"{BIN} is not built: cargo build --release --bins")
    _servers["main"] = Server(
        "main", "--max-batch-size", "8", "--max-queue-size", "64",
        "--max-body-bytes", str(BODY_LIMIT),
    )
    _servers["small"] = Server(
        "small", "--max-batch-size", "4", "--max-queue-size", "8", "--grace-period-s", "120",
    )
    _servers["main"].watch_start()


def pytest_sessionfinish(session, exitstatus):
    for s in _servers.values():
        s.stop()


@pytest.fixture(scope="session")
def server():
    s = _servers["main"]
    s.wait_ready()
    return s


@pytest.fixture(scope="session")
def small_server():
    s = _servers["small"]
    s.wait_ready()
    return s

"""The Open Inference Protocol as the real clients speak it: health,
metadata, inference over HTTP (binary and JSON) and gRPC, outputs against
`resincept run`, every error with its status, and a fuzz of malformed
bodies. Runs against the `server` fixture (ResNet-18, 64x64, batch <= 8).
"""

import json
import random
import socket

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp
from open_inference.openapi.client import OpenInferenceClient
from open_inference.openapi.types import InferenceRequest, RequestInput
from tritonclient.utils import InferenceServerException

from conftest import (
    BODY_LIMIT, MODEL, SIZE, http_get, image_batch, json_request, metrics, post, resincept_run,
)

INFER = f"/v2/models/{MODEL}/infer"


def bits(a):
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def assert_bit_identical(got, want):
    assert got.shape == want.shape, (got.shape, want.shape)
    diff = np.flatnonzero(bits(got) != bits(want))
    assert diff.size == 0, (
        f"{diff.size} of {got.size} values differ; first at {diff[0]}: "
        f"{got.ravel()[diff[0]]} vs {want.ravel()[diff[0]]}"
    )


def triton_input(x, binary=True, dtype="FP32"):
    i = thttp.InferInput("input", list(x.shape), dtype)
    i.set_data_from_numpy(x, binary_data=binary)
    return i


def error_of(status_body):
    status, headers, body = status_body
    assert headers.get("content-type") == "application/json", headers
    doc = json.loads(body)
    assert set(doc) == {"error"} and doc["error"], doc
    return status, doc["error"]


# ------------------------------------------------------------ start-up

def test_live_but_not_ready_while_compiling(server):
    seen = server.seen_loading
    assert seen is not None, "the server was ready before its first health check"
    assert seen["live"][0] == 200 and json.loads(seen["live"][2]) == {"live": True}
    assert seen["ready"][0] == 503 and json.loads(seen["ready"][2]) == {"ready": False}
    status, msg = error_of(seen["infer"])
    assert status == 503 and "compiling" in msg, msg


# ------------------------------------------------------------ health and metadata

def test_health_and_metadata_over_http(server):
    c = thttp.InferenceServerClient(server.http)
    assert c.is_server_live() and c.is_server_ready()
    assert c.is_model_ready(MODEL) and c.is_model_ready(MODEL, "1")
    assert not c.is_model_ready("nope")
    meta = c.get_server_metadata()
    assert meta["name"] == "resincept" and "binary_tensor_data" in meta["extensions"]
    for m in (c.get_model_metadata(MODEL), c.get_model_metadata(MODEL, "1")):
        assert m["name"] == MODEL and m["platform"] == "resincept" and m["versions"] == ["1"]
        assert m["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 3, SIZE, SIZE]}]
        assert m["outputs"] == [{"name": "output", "datatype": "FP32", "shape": [-1, 1000]}]
    assert json.loads(http_get(server.http_port, "/v2/health/ready")[2]) == {"ready": True}
    status, _, body = http_get(server.http_port, f"/v2/models/{MODEL}/ready")
    assert status == 200 and json.loads(body) == {"name": MODEL, "ready": True}


def test_health_and_metadata_over_grpc(server):
    c = tgrpc.InferenceServerClient(server.grpc)
    assert c.is_server_live() and c.is_server_ready() and c.is_model_ready(MODEL)
    meta = c.get_server_metadata(as_json=True)
    assert meta["name"] == "resincept" and meta["extensions"] == ["binary_tensor_data"]
    m = c.get_model_metadata(MODEL, as_json=True)
    assert m["platform"] == "resincept" and m["versions"] == ["1"]
    assert m["inputs"][0]["shape"] == ["-1", "3", str(SIZE), str(SIZE)]  # int64 as JSON strings
    assert m["outputs"][0]["name"] == "output"


def test_health_and_metadata_with_the_openapi_client(server):
    c = OpenInferenceClient(base_url=f"http://{server.http}")
    c.check_server_liveness()
    c.check_server_readiness()
    c.check_model_readiness(model_name=MODEL)
    c.check_model_version_readiness(model_name=MODEL, model_version="1")
    meta = c.read_server_metadata()
    assert meta.name == "resincept" and "binary_tensor_data" in meta.extensions
    m = c.read_model_metadata(model_name=MODEL)
    assert m.inputs[0].shape == [-1, 3, SIZE, SIZE] and m.outputs[0].datatype == "FP32"
    assert c.read_model_version_metadata(model_name=MODEL, model_version="1").name == MODEL


# ------------------------------------------------------------ inference

@pytest.fixture(scope="module")
def reference(server, tmp_path_factory):
    """Three images and `resincept run`'s logits for them, one at a time and
    all three in one batch (the same compiled-graph arithmetic per image)."""
    x = image_batch(3, seed=7)
    tmp = tmp_path_factory.mktemp("run")
    return x, resincept_run(x[:1], tmp), resincept_run(x, tmp)


def test_infer_over_http_binary_json_and_grpc_matches_resincept_run(server, reference):
    x, one, three = reference
    c = thttp.InferenceServerClient(server.http)
    # tritonclient's default: binary input, no outputs named (so binary outputs).
    r = c.infer(MODEL, [triton_input(x[:1])], request_id="req-1")
    assert r.get_response()["id"] == "req-1"
    assert_bit_identical(r.as_numpy("output"), one)
    # JSON in, JSON out.
    out = thttp.InferRequestedOutput("output", binary_data=False)
    r = c.infer(MODEL, [triton_input(x[:1], binary=False)], outputs=[out], model_version="1")
    assert "data" in r.get_response()["outputs"][0]
    assert_bit_identical(r.as_numpy("output"), one)
    # Three images in one request: the batch of three.
    r = c.infer(MODEL, [triton_input(x)])
    assert_bit_identical(r.as_numpy("output"), three)
    # gRPC, raw_input_contents / raw_output_contents.
    g = tgrpc.InferenceServerClient(server.grpc)
    gi = tgrpc.InferInput("input", [1, 3, SIZE, SIZE], "FP32")
    gi.set_data_from_numpy(x[:1])
    r = g.infer(MODEL, [gi], request_id="g-1", outputs=[tgrpc.InferRequestedOutput("output")])
    assert r.get_response().id == "g-1"
    assert_bit_identical(r.as_numpy("output"), one)


def test_infer_with_the_openapi_client_and_nested_data(server, reference):
    x, one, _ = reference
    c = OpenInferenceClient(base_url=f"http://{server.http}", timeout=300)
    req = InferenceRequest(
        id="oip-1",
        inputs=[RequestInput(name="input", shape=[1, 3, SIZE, SIZE], datatype="FP32",
                             data=x[:1].tolist())],  # nested lists
    )
    r = c.model_infer(model_name=MODEL, request=req)
    assert r.id == "oip-1" and r.model_name == MODEL
    (o,) = r.outputs
    assert o.name == "output" and o.shape == [1, 1000] and o.datatype == "FP32"
    got = np.array(o.data.__root__, dtype=np.float64).astype(np.float32).reshape(1, 1000)
    assert_bit_identical(got, one)


def test_grpc_typed_contents(server, reference):
    """fp32_contents instead of raw bytes (what a client built from
    KServe's proto alone may send), through the raw gRPC stub."""
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    x, one, _ = reference
    with grpc.insecure_channel(server.grpc) as ch:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(ch)
        req = service_pb2.ModelInferRequest(model_name=MODEL, id="typed")
        t = req.inputs.add(name="input", datatype="FP32", shape=[1, 3, SIZE, SIZE])
        t.contents.fp32_contents.extend(x[:1].ravel().tolist())
        resp = stub.ModelInfer(req, timeout=300)
    assert resp.id == "typed" and list(resp.outputs[0].shape) == [1, 1000]
    got = np.frombuffer(resp.raw_output_contents[0], dtype="<f4").reshape(1, 1000)
    assert_bit_identical(got, one)


def test_a_request_larger_than_the_batch_is_split_and_answered_once(server, tmp_path):
    x = image_batch(10, seed=11)  # the server runs at most 8 per batch
    before = metrics(server.http_port)
    r = thttp.InferenceServerClient(server.http, network_timeout=600).infer(MODEL, [triton_input(x)])
    after = metrics(server.http_port)
    got = r.as_numpy("output")
    assert got.shape == (10, 1000)
    assert after["nv_inference_exec_count"] - before["nv_inference_exec_count"] >= 2
    assert after["nv_inference_count"] - before["nv_inference_count"] >= 10
    # Per-image arithmetic does not depend on the batch: bit-identical to
    # one `resincept run` of all ten.
    assert_bit_identical(got, resincept_run(x, tmp_path))


# ------------------------------------------------------------ errors

def test_http_errors_have_their_status_and_say_what_was_expected(server):
    p = server.http_port
    x = image_batch(1, seed=3)
    cases = [
        # (path, body, headers, status, words in the error)
        (INFER, b"{not json", {}, 400, ["malformed"]),
        (INFER, b"", {}, 400, ["empty body"]),
        (INFER, json_request(image_batch(1, 0)[:, :, :32, :32]), {}, 400,
         ["[1, 3, 32, 32]", "batch dimension", "[N, 3, 64, 64]"]),
        (INFER, json.dumps({"inputs": [{"name": "input", "shape": [3, SIZE, SIZE], "datatype": "FP32",
                                        "data": [0.0] * 3 * SIZE * SIZE}]}).encode(), {}, 400,
         ["batch dimension"]),
        (INFER, json.dumps({"inputs": [{"name": "input", "shape": [1, 3, SIZE, SIZE], "datatype": "INT32",
                                        "data": [0] * 3 * SIZE * SIZE}]}).encode(), {}, 400,
         ["INT32", "FP32"]),
        (INFER, json.dumps({"inputs": [{"name": "image", "shape": [1, 3, SIZE, SIZE], "datatype": "FP32",
                                        "data": []}]}).encode(), {}, 400, ["unknown input `image`"]),
        (INFER, json_request(x, outputs=[{"name": "probs"}]), {}, 400, ["unknown output `probs`"]),
        (INFER, json.dumps({"inputs": [{"name": "input", "shape": [1, 3, SIZE, SIZE], "datatype": "FP32",
                                        "data": [1.0, 2.0]}]}).encode(), {}, 400, ["needs 12288 values"]),
        ("/v2/models/nope/infer", json_request(x), {}, 404, ["unknown model `nope`", MODEL]),
        (f"/v2/models/{MODEL}/versions/2/infer", json_request(x), {}, 404, ["no version `2`"]),
    ]
    # Truncated binary data: the header promises 49152 bytes, 1000 follow.
    header = json.dumps({"inputs": [{"name": "input", "shape": [1, 3, SIZE, SIZE], "datatype": "FP32",
                                     "parameters": {"binary_data_size": 3 * SIZE * SIZE * 4}}]}).encode()
    cases.append((INFER, header + x.tobytes()[:1000], {"Inference-Header-Content-Length": str(len(header))},
                  400, ["truncated binary data", "needs 49152 bytes, only 1000"]))
    for path, body, headers, status, words in cases:
        got_status, msg = error_of(post(p, path, body, headers))
        assert got_status == status, (path, body[:80], got_status, msg)
        for w in words:
            assert w in msg, (w, msg)
    assert error_of(http_get(p, "/v2/models/nope"))[0] == 404
    assert error_of(http_get(p, "/v2/models/nope/ready"))[0] == 404
    assert error_of(http_get(p, "/v3/anything"))[0] == 404
    # The server still answers.
    r = thttp.InferenceServerClient(server.http).infer(MODEL, [triton_input(x)])
    assert r.as_numpy("output").shape == (1, 1000)


def test_tritonclient_sees_the_errors(server):
    c = thttp.InferenceServerClient(server.http)
    with pytest.raises(InferenceServerException) as e:
        c.infer("nope", [triton_input(image_batch(1, 0))])
    assert e.value.status() == "404" and "unknown model" in e.value.message()
    with pytest.raises(InferenceServerException) as e:
        c.infer(MODEL, [triton_input(image_batch(1, 0).astype(np.float64), dtype="FP64")])
    assert e.value.status() == "400" and "FP64" in e.value.message()


def test_grpc_errors_have_their_codes(server):
    c = tgrpc.InferenceServerClient(server.grpc)

    def code_of(fn):
        with pytest.raises(InferenceServerException) as e:
            fn()
        return e.value.status(), e.value.message()

    small = tgrpc.InferInput("input", [1, 3, 32, 32], "FP32")
    small.set_data_from_numpy(np.zeros((1, 3, 32, 32), np.float32))
    status, msg = code_of(lambda: c.infer(MODEL, [small]))
    assert status == "StatusCode.INVALID_ARGUMENT" and "batch dimension" in msg, (status, msg)
    ok = tgrpc.InferInput("input", [1, 3, SIZE, SIZE], "FP32")
    ok.set_data_from_numpy(image_batch(1, 0))
    status, msg = code_of(lambda: c.infer("nope", [ok]))
    assert status == "StatusCode.NOT_FOUND" and "unknown model" in msg
    status, _ = code_of(lambda: c.get_model_metadata("nope"))
    assert status == "StatusCode.NOT_FOUND"
    # Over --max-body-bytes: RESOURCE_EXHAUSTED, before anything is parsed.
    n = BODY_LIMIT // (3 * SIZE * SIZE * 4) + 1
    big = tgrpc.InferInput("input", [n, 3, SIZE, SIZE], "FP32")
    big.set_data_from_numpy(np.zeros((n, 3, SIZE, SIZE), np.float32))
    status, msg = code_of(lambda: c.infer(MODEL, [big]))
    assert status == "StatusCode.RESOURCE_EXHAUSTED" and "--max-body-bytes" in msg, (status, msg)
    assert c.infer(MODEL, [ok]).as_numpy("output").shape == (1, 1000)


def test_a_body_over_the_limit_is_413(server):
    # Declared too large: refused from the header, before the body is read.
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=60) as s:
        s.sendall(
            f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Length: {BODY_LIMIT + 1}\r\n\r\n".encode()
            + b'{"inputs": ['
        )
        head = s.recv(65536).decode(errors="replace")
    assert head.startswith("HTTP/1.1 413"), head
    assert "over the limit of" in head and "--max-body-bytes" in head, head

    # Sent chunked, without a length: refused once the limit is passed.
    def chunks():
        for _ in range(BODY_LIMIT // 65536 + 2):
            yield b" " * 65536

    with httpx.Client(base_url=f"http://{server.http}", timeout=60) as c:
        try:
            r = c.post(INFER, content=chunks())
            assert r.status_code == 413 and "--max-body-bytes" in r.json()["error"], r.text
        except httpx.TransportError:
            # The server may close the connection before the client has
            # sent it all, and the 413 is lost to the client; either way
            # the server stays up.
            pass
    assert http_get(server.http_port, "/v2/health/ready")[0] == 200


# ------------------------------------------------------------ fuzz

def test_200_malformed_bodies_then_a_good_request(server):
    rng = random.Random(1234)
    x = image_batch(1, seed=5)
    header = json.dumps({"inputs": [{"name": "input", "shape": [1, 3, SIZE, SIZE], "datatype": "FP32",
                                     "parameters": {"binary_data_size": x.nbytes}}]}).encode()
    good_binary = header + x.tobytes()
    good_json = json_request(x)
    statuses = {}
    with httpx.Client(base_url=f"http://{server.http}", timeout=60) as c:
        for k in range(200):
            kind = k % 4
            headers = {}
            if kind == 0:  # random bytes
                body = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 2000)))
                if rng.random() < 0.5:
                    headers["Inference-Header-Content-Length"] = str(rng.randrange(0, 3000))
            elif kind == 1:  # binary request truncated anywhere
                body = good_binary[: rng.randrange(0, len(good_binary))]
                headers["Inference-Header-Content-Length"] = str(len(header))
            elif kind == 2:  # JSON truncated anywhere
                body = good_json[: rng.randrange(0, len(good_json))]
            else:  # JSON with bytes flipped
                b = bytearray(good_json[:4000])
                for _ in range(rng.randrange(1, 20)):
                    b[rng.randrange(len(b))] = rng.getrandbits(8)
                body = bytes(b)
            r = c.post(INFER, content=body, headers=headers)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            assert r.status_code == 400, (k, kind, r.status_code, r.text[:200])
            assert r.json()["error"]
    assert statuses == {400: 200}
    r = thttp.InferenceServerClient(server.http).infer(MODEL, [triton_input(x)])
    assert r.as_numpy("output").shape == (1, 1000)

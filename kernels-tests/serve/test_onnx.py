"""`resincept serve --model m.onnx` as the real clients see it: the model's
own input and output names and shapes in the metadata (a tf2onnx-style
model takes NHWC), and tritonclient's HTTP and gRPC inferences answered
with onnxruntime's output for the fixture's input (the ONNX test data set
the onnx helper's script wrote, `kernels-tests/fixtures/onnx/extra`).
"""

from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp

from conftest import Server

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "onnx" / "extra"
# |ours − onnxruntime| ≤ ATOL + RTOL·|onnxruntime|: the ONNX tests' tolerance.
ATOL, RTOL = 1e-5, 1e-3


def read_tensor_pb(path):
    """A FLOAT TensorProto (`dims` = field 1, `data_type` = 2, `float_data`
    = 4, `raw_data` = 9) as a numpy array: enough of the wire format for
    the fixtures, no onnx package needed."""
    b = Path(path).read_bytes()
    i, dims, dtype, floats, raw = 0, [], None, [], None

    def varint():
        nonlocal i
        v, shift = 0, 0
        while True:
            c = b[i]
            i += 1
            v |= (c & 0x7F) << shift
            shift += 7
            if c < 0x80:
                return v

    while i < len(b):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            v = varint()
            if field == 1:
                dims.append(v)
            elif field == 2:
                dtype = v
        elif wire == 2:
            n = varint()
            chunk = b[i : i + n]
            i += n
            if field == 1:  # packed dims
                j = 0
                while j < len(chunk):
                    v, shift = 0, 0
                    while True:
                        c = chunk[j]
                        j += 1
                        v |= (c & 0x7F) << shift
                        shift += 7
                        if c < 0x80:
                            break
                    dims.append(v)
            elif field == 4:
                floats.extend(np.frombuffer(chunk, dtype="<f4"))
            elif field == 9:
                raw = chunk
        elif wire == 5:
            if field == 4:
                floats.append(np.frombuffer(b[i : i + 4], dtype="<f4")[0])
            i += 4
        elif wire == 1:
            i += 8
        else:
            raise ValueError(f"{path}: wire type {wire}")
    assert dtype == 1, f"{path}: not FLOAT ({dtype})"
    data = np.frombuffer(raw, dtype="<f4") if raw is not None else np.array(floats, "<f4")
    return data.reshape(dims).astype(np.float32)


def case(name):
    d = FIXTURES / name
    data = d / "test_data_set_0"
    return d / "model.onnx", read_tensor_pb(data / "input_0.pb"), read_tensor_pb(data / "output_0.pb")


def assert_close(got, want):
    assert got.shape == want.shape, (got.shape, want.shape)
    bad = np.abs(got - want) > ATOL + RTOL * np.abs(want)
    assert not bad.any(), f"{bad.sum()} of {got.size} off; max |diff| {np.abs(got - want).max()}"


@pytest.fixture(scope="module")
def nhwc_server():
    model, _, _ = case("nhwc_tf2onnx")
    s = Server("onnx-nhwc", model=["--model", str(model), "--name", "keras"])
    try:
        s.wait_ready()
        yield s
    finally:
        s.stop()


def test_metadata_is_the_models_own(nhwc_server):
    m = thttp.InferenceServerClient(nhwc_server.http).get_model_metadata("keras")
    assert m["name"] == "keras"
    assert m["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 9, 11, 3]}]
    assert m["outputs"] == [{"name": "y", "datatype": "FP32", "shape": [-1, 5]}]
    g = tgrpc.InferenceServerClient(nhwc_server.grpc).get_model_metadata("keras")
    assert [(t.name, list(t.shape)) for t in g.inputs] == [("x", [-1, 9, 11, 3])]
    assert [(t.name, list(t.shape)) for t in g.outputs] == [("y", [-1, 5])]


def test_nhwc_infer_matches_onnxruntime_over_http_and_grpc(nhwc_server):
    _, x, want = case("nhwc_tf2onnx")
    c = thttp.InferenceServerClient(nhwc_server.http)
    for binary in (True, False):
        i = thttp.InferInput("x", list(x.shape), "FP32")
        i.set_data_from_numpy(x, binary_data=binary)
        out = thttp.InferRequestedOutput("y", binary_data=binary)
        assert_close(c.infer("keras", [i], outputs=[out]).as_numpy("y"), want)
    g = tgrpc.InferenceServerClient(nhwc_server.grpc)
    gi = tgrpc.InferInput("x", list(x.shape), "FP32")
    gi.set_data_from_numpy(x)
    assert_close(g.infer("keras", [gi]).as_numpy("y"), want)
    # The NCHW shape of the same image is not the model's: 400, saying so.
    bad = thttp.InferInput("x", [1, 3, 9, 11], "FP32")
    bad.set_data_from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    with pytest.raises(Exception, match=r"9, 11, 3"):
        c.infer("keras", [bad])

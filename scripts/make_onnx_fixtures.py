#!/usr/bin/env python3
"""Writes the ONNX import fixtures of kernels-tests (developer script).

Run it in a virtual environment outside the repository:

    python3 -m venv /work/venv-onnx
    /work/venv-onnx/bin/pip install onnx onnxruntime torch torchvision timm onnxscript
    /work/venv-onnx/bin/python scripts/make_onnx_fixtures.py [--full DIR] [--only node,extra,models]

It writes, under kernels-tests/fixtures/onnx/:

1. node/ — ONNX's own backend node test cases
   (onnx.backend.test.case.node.collect_testcases()) of the operators the
   importer knows, in the upstream layout (<case>/model.onnx,
   <case>/test_data_set_0/input_N.pb, output_N.pb), and node/manifest.tsv:
   one line per case, `name<TAB>mode<TAB>reason`, where mode is
   `run` (input 0 at run time, the other inputs bound as constants; run on
   both executors), `fold` (every input bound: the graph folds to constants
   at import, compared with ONNX's reference) or `skip` (with the reason:
   3-D, integer types, training mode, pool indices, or `phase 2: <the IR
   extension it needs>`).
2. extra/ — what the node tests miss, in the same layout, with onnxruntime
   as the oracle (convs with bias / groups / depthwise / dilation / 1x7 and
   7x1 with asymmetric pads, pools with count_include_pad and ceil_mode,
   per-channel broadcasting, Clip as ReLU6, a tf2onnx-style NHWC model, a
   decomposed batchnorm, external data, a symbolic batch), and
   extra/manifest.tsv likewise.
3. refuse/ — models the importer must refuse with one clear error
   (unsupported operator, old opset, integer input, two runtime inputs,
   external data outside the model's folder, unresolved symbolic dims).
4. models/ — whole networks exported with torch.onnx.export (legacy
   TorchScript exporter and dynamo exporter) from randomly initialised
   torchvision / timm models whose batchnorm statistics are calibrated on
   random batches, at small odd sizes, with onnxruntime's outputs as the
   expected values. Committed: slim variants (every channel count divided
   by 16, groups likewise, 100 classes) with the real exporters' graphs;
   with --full DIR the full-width ones (~100 MB each) go to DIR, outside git.

Deterministic: fixed seeds, and onnx's test cases are what the package
version makes. It prints what it wrote.
"""

import argparse
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIX = os.path.join(ROOT, "kernels-tests", "fixtures", "onnx")

# ---------------------------------------------------------------------------
# 1. ONNX's node tests
# ---------------------------------------------------------------------------

# Operators whose node tests are written (the importer's, plus the
# constant-only shape arithmetic it folds).
NODE_OPS = {
    "Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean",
    "BatchNormalization", "Relu", "Clip", "Add", "Sub", "Mul", "Div", "Sum",
    "Concat", "Gemm", "MatMul", "Flatten", "Reshape", "Transpose", "Pad",
    "Softmax", "Identity", "Dropout", "Shape", "Gather", "Unsqueeze",
    "Squeeze", "Cast", "Slice", "ConstantOfShape", "Constant",
}

# Constant-folded shape arithmetic: every input bound, outputs compared.
FOLD_OPS = {"Shape", "Gather", "Cast", "Slice", "ConstantOfShape", "Constant"}

# Cast cases between these types only (the float8/4-bit/2-bit ones are not
# types the importer reads).
CAST_TYPES = {"FLOAT", "FLOAT16", "DOUBLE", "BFLOAT16"}

INT_TYPES = {TensorProto.INT8, TensorProto.INT16, TensorProto.INT32,
             TensorProto.INT64, TensorProto.UINT8, TensorProto.UINT16,
             TensorProto.UINT32, TensorProto.UINT64}

# Cases whose reason is specific (the rest follow the rules in node_mode).
# Phase 2 reasons name the IR extension in docs/ONNX.md and
# /work/team/onnx_phase2.md.
NODE_SKIP = {
    "test_maxpool_with_argmax_2d_precomputed_pads": "pool indices output",
    "test_maxpool_with_argmax_2d_precomputed_strides": "pool indices output",
    "test_batchnorm_example_training_mode": "training mode",
    "test_batchnorm_epsilon_training_mode": "training mode",
    "test_matmul_3d": "phase 2: batched MatMul",
    "test_matmul_4d": "phase 2: batched MatMul",
    "test_matmul_bcast": "phase 2: batched MatMul",
    "test_matmul_1d_3d": "phase 2: batched MatMul",
    "test_matmul_4d_1d": "phase 2: batched MatMul",
    "test_matmul_1d_1d": "phase 2: batched MatMul",
    "test_reduce_mean_default_axes_keepdims_example": "phase 2: ReduceMean over other axes",
    "test_reduce_mean_default_axes_keepdims_random": "phase 2: ReduceMean over other axes",
    "test_reduce_mean_do_not_keepdims_example": "phase 2: ReduceMean over other axes",
    "test_reduce_mean_do_not_keepdims_random": "phase 2: ReduceMean over other axes",
    "test_reduce_mean_keepdims_example": "phase 2: ReduceMean over other axes",
    "test_reduce_mean_keepdims_random": "phase 2: ReduceMean over other axes",
    "test_reduce_mean_negative_axes_keepdims_example": "phase 2: ReduceMean over other axes",
    "test_reduce_mean_negative_axes_keepdims_random": "phase 2: ReduceMean over other axes",
    "test_training_dropout": "training mode",
    "test_training_dropout_default": "training mode",
    "test_training_dropout_default_mask": "training mode",
    "test_training_dropout_mask": "training mode",
    "test_training_dropout_zero_ratio": "training mode",
    "test_training_dropout_zero_ratio_mask": "training mode",
    "test_dropout_default_old": "opset 12 or older",
    "test_dropout_random_old": "opset 12 or older",
}

# Shape-moving ops at run time: only the moves that keep the data in place
# are expressible in phase 1; the rest are checked in fold mode (every
# input bound, the constant folder against ONNX's reference).
# The shape-moving cases that are expressible at run time (the data stays
# in place: (N, C, H, W) -> (N, C*H*W), and moves of size-1 dims; and, as
# the IR's transpose, any Transpose of rank <= 4 and any reshape, squeeze or
# unsqueeze of rank <= 4 that only adds or drops dims of size 1).
RESHAPE_RUN = {
    "test_reshape_reduced_dims", "test_reshape_zero_dim", "test_flatten_axis1",
    "test_flatten_default_axis", "test_flatten_negative_axis3",
    "test_transpose_all_permutations_0", "test_transpose_all_permutations_1",
    "test_transpose_all_permutations_2", "test_transpose_all_permutations_3",
    "test_transpose_all_permutations_4", "test_transpose_all_permutations_5",
    "test_transpose_default",
    "test_reshape_negative_extended_dims", "test_reshape_zero_and_negative_dim",
    "test_squeeze", "test_squeeze_negative_axes", "test_unsqueeze_axis_0",
    "test_unsqueeze_axis_1", "test_unsqueeze_axis_2",
}

FOLD_REASON = "folded at import; at run time: phase 2: general reshape/concat"


def elem_types(model):
    """Element types of the runtime input (input 0) and the outputs."""
    g = model.graph
    init = {t.name for t in g.initializer}
    ins = [i for i in g.input if i.name not in init][:1]
    types = []
    for vi in ins + list(g.output):
        if vi.name in init:
            continue
        tt = vi.type
        if tt.HasField("tensor_type"):
            types.append(tt.tensor_type.elem_type)
        else:
            types.append(None)
    return types


def node_mode(case, model, inputs):
    """(mode, reason) of a node test case."""
    name = case.name
    if name in NODE_SKIP:
        return "skip", NODE_SKIP[name]
    ops = {n.op_type for n in model.graph.node}
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset < 13:
        return "skip", "opset 12 or older"
    types = elem_types(model)
    if None in types:
        return "skip", "sequence or optional type"
    if ops & FOLD_OPS:
        return "fold", "constant shape arithmetic, folded at import"
    if any(t in INT_TYPES for t in types):
        return "skip", "integer types"
    if types[0] == TensorProto.FLOAT and inputs and inputs[0].ndim > 4:
        return "skip", "3-D (5-D tensors)"
    op = model.graph.node[0].op_type
    if op in ("MaxPool", "AveragePool", "Conv") and inputs[0].ndim not in (3, 4):
        return "skip", "3-D pooling/convolution"
    if op in ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat") and name not in RESHAPE_RUN:
        return "fold", FOLD_REASON
    return "run", ""


def write_case(dirname, model, inputs, outputs):
    if os.path.exists(dirname):
        shutil.rmtree(dirname)
    data = os.path.join(dirname, "test_data_set_0")
    os.makedirs(data)
    onnx.save(model, os.path.join(dirname, "model.onnx"))
    g = model.graph
    init = {t.name for t in g.initializer}
    in_names = [i.name for i in g.input if i.name not in init]
    for i, x in enumerate(inputs):
        t = numpy_helper.from_array(np.asarray(x), in_names[i] if i < len(in_names) else f"input_{i}")
        with open(os.path.join(data, f"input_{i}.pb"), "wb") as f:
            f.write(t.SerializeToString())
    for i, y in enumerate(outputs):
        t = numpy_helper.from_array(np.asarray(y), g.output[i].name)
        with open(os.path.join(data, f"output_{i}.pb"), "wb") as f:
            f.write(t.SerializeToString())


def make_node_tests():
    from onnx.backend.test.case.node import collect_testcases

    out = os.path.join(FIX, "node")
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    lines = []
    for case in collect_testcases(None):
        model = case.model
        ops = {n.op_type for n in model.graph.node}
        if not ops or not ops <= NODE_OPS or "expanded" in case.name:
            continue
        if "Cast" in ops:
            parts = case.name.replace("test_cast_", "").split("_to_")
            if len(parts) != 2 or not set(parts) <= CAST_TYPES:
                continue
        if not case.data_sets:
            continue
        inputs, outputs = case.data_sets[0]
        if not all(isinstance(a, (np.ndarray, np.generic)) for a in list(inputs) + list(outputs)):
            continue  # sequences and optionals: not tensors
        mode, reason = node_mode(case, model, inputs)
        lines.append(f"{case.name}\t{mode}\t{reason}")
        if mode == "skip" and sum(np.asarray(a).nbytes for a in list(inputs) + list(outputs)) > 16384:
            continue  # recorded, not written: large and not run
        write_case(os.path.join(out, case.name), model, inputs, outputs)
    lines.sort()
    with open(os.path.join(out, "manifest.tsv"), "w") as f:
        f.write("# case\tmode (run | fold | skip)\treason\n")
        f.write("\n".join(lines) + "\n")
    counts = {m: sum(1 for l in lines if l.split("\t")[1] == m) for m in ("run", "fold", "skip")}
    print(f"node/: {len(lines)} cases ({counts}), {dir_size(out)} bytes")


def dir_size(d):
    return sum(os.path.getsize(os.path.join(p, f)) for p, _, fs in os.walk(d) for f in fs)


# ---------------------------------------------------------------------------
# 2. Extra cases, onnxruntime as the oracle
# ---------------------------------------------------------------------------

OPSET = 17


def model_of(nodes, inputs, outputs, inits, opset=OPSET, name="extra"):
    g = helper.make_graph(nodes, name, inputs, outputs, initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="resincept-fixtures")
    m.ir_version = 8
    # Outputs declared without a shape get the inferred one.
    inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True)
    del m.graph.output[:]
    m.graph.output.extend(inferred.graph.output)
    onnx.checker.check_model(m)
    return m


def ort_run(model_path, x):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return s.run(None, {name: x})


def f32(rng, *shape, scale=1.0):
    return (rng.uniform(-1, 1, size=shape) * scale).astype(np.float32)


def vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def conv_case(rng, name, x_shape, w_shape, bias=True, **attrs):
    w = f32(rng, *w_shape, scale=1.0 / np.sqrt(np.prod(w_shape[1:])))
    inits = [numpy_helper.from_array(w, "W")]
    ins = ["x", "W"]
    if bias:
        inits.append(numpy_helper.from_array(f32(rng, w_shape[0]), "B"))
        ins.append("B")
    node = helper.make_node("Conv", ins, ["y"], name="conv", **attrs)
    return name, model_of([node], [vi("x", list(x_shape))], [vi("y", None)], inits), f32(rng, *x_shape)


def extra_cases():
    rng = np.random.default_rng(20261130)
    cases = []
    cases.append(conv_case(rng, "conv_bias", (2, 5, 9, 11), (7, 5, 3, 3), pads=[1, 1, 1, 1]))
    cases.append(conv_case(rng, "conv_group32", (1, 64, 7, 9), (64, 2, 3, 3), group=32, pads=[1, 1, 1, 1], strides=[2, 2]))
    cases.append(conv_case(rng, "conv_depthwise", (1, 24, 10, 8), (24, 1, 3, 3), group=24, pads=[1, 1, 1, 1]))
    cases.append(conv_case(rng, "conv_dilation2", (1, 6, 13, 12), (5, 6, 3, 3), dilations=[2, 2], pads=[2, 2, 2, 2]))
    cases.append(conv_case(rng, "conv_1x7_asym", (1, 8, 9, 17), (6, 8, 1, 7), pads=[0, 2, 0, 4]))
    cases.append(conv_case(rng, "conv_7x1_asym", (1, 8, 17, 9), (6, 8, 7, 1), pads=[4, 0, 2, 0]))
    cases.append(conv_case(rng, "conv_same_lower_stride2", (1, 3, 10, 11), (4, 3, 3, 3), auto_pad="SAME_LOWER", strides=[2, 2]))
    cases.append(conv_case(rng, "conv_valid_nobias", (2, 3, 8, 8), (4, 3, 5, 5), bias=False, auto_pad="VALID"))
    # 1-D: the IR's k×1 conv and pools over (N, C, L, 1).
    cases.append(conv_case(rng, "conv1d_dilated_asym", (2, 4, 19), (5, 4, 3), pads=[2, 1], dilations=[2], strides=[2]))
    node = helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[3], strides=[2], pads=[1, 1], ceil_mode=1)
    cases.append(("maxpool1d_ceil", model_of([node], [vi("x", [1, 3, 12])], [vi("y", None)], []), f32(rng, 1, 3, 12)))
    node = helper.make_node("AveragePool", ["x"], ["y"], name="pool", kernel_shape=[4], strides=[3], pads=[2, 2], count_include_pad=0)
    cases.append(("avgpool1d_exclude_pad", model_of([node], [vi("x", [2, 3, 13])], [vi("y", None)], []), f32(rng, 2, 3, 13)))
    for cip in (0, 1):
        for ceil in (0, 1):
            nm = f"avgpool_include{cip}_ceil{ceil}"
            node = helper.make_node("AveragePool", ["x"], ["y"], name="pool", kernel_shape=[3, 3],
                                    strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=cip, ceil_mode=ceil)
            cases.append((nm, model_of([node], [vi("x", [1, 5, 10, 12])], [vi("y", None)], []), f32(rng, 1, 5, 10, 12)))
    node = helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    cases.append(("maxpool_ceil", model_of([node], [vi("x", [1, 4, 10, 12])], [vi("y", None)], []), f32(rng, 1, 4, 10, 12)))
    # Per-channel [1, C, 1, 1] constants, each op and order.
    c = 6
    k = numpy_helper.from_array(f32(rng, 1, c, 1, 1) + 2.0, "k")
    nodes = [
        helper.make_node("Mul", ["x", "k"], ["a"], name="mul"),
        helper.make_node("Add", ["k", "a"], ["b"], name="add"),
        helper.make_node("Sub", ["b", "k"], ["c"], name="sub"),
        helper.make_node("Div", ["c", "k"], ["d"], name="div"),
        helper.make_node("Sub", ["k", "d"], ["y"], name="rsub"),
    ]
    cases.append(("per_channel_broadcast", model_of(nodes, [vi("x", [2, c, 5, 7])], [vi("y", None)], [k]), f32(rng, 2, c, 5, 7)))
    # Clip as ReLU6 (phase 2), and Clip(0, inf) as ReLU.
    lo = numpy_helper.from_array(np.array(0, np.float32), "lo")
    hi = numpy_helper.from_array(np.array(6, np.float32), "hi")
    node = helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="relu6")
    cases.append(("clip_relu6", model_of([node], [vi("x", [1, 3, 4, 5])], [vi("y", None)], [lo, hi]), f32(rng, 1, 3, 4, 5, scale=10)))
    node = helper.make_node("Clip", ["x", "lo"], ["y"], name="relu")
    cases.append(("clip_relu", model_of([node], [vi("x", [1, 3, 4, 5])], [vi("y", None)], [lo]), f32(rng, 1, 3, 4, 5, scale=10)))
    # Clip fused as an epilogue (MobileNet-v2's Conv-BN-ReLU6): into a conv
    # with a folded BN ([0, 6]), into a standalone BN ([-1, 1]), into an Add
    # (upper bound only, the lower input left empty), and a Clip whose
    # producer is read twice (stays standalone).
    crng = np.random.default_rng(20261201)  # its own: the other cases' data stays as it was
    cw = numpy_helper.from_array(f32(crng, 8, 8, 3, 3, scale=0.5), "cw")
    cb = numpy_helper.from_array(f32(crng, 8), "cb")
    bn1 = [numpy_helper.from_array(v, n) for v, n in [
        (crng.uniform(1.0, 3.0, 8).astype(np.float32), "g1"), (f32(crng, 8), "b1_"),
        (f32(crng, 8, scale=0.2), "m1"), (crng.uniform(0.5, 1.5, 8).astype(np.float32), "v1")]]
    bn2 = [numpy_helper.from_array(v, n) for v, n in [
        (crng.uniform(0.5, 1.5, 8).astype(np.float32), "g2"), (f32(crng, 8, scale=0.2), "b2_"),
        (f32(crng, 8, scale=0.2), "m2"), (crng.uniform(0.5, 1.5, 8).astype(np.float32), "v2")]]
    m1 = numpy_helper.from_array(np.array(-1, np.float32), "m1c")
    p1 = numpy_helper.from_array(np.array(1, np.float32), "p1c")
    p15 = numpy_helper.from_array(np.array(1.5, np.float32), "p15")
    nodes = [
        helper.make_node("Conv", ["x", "cw", "cb"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("BatchNormalization", ["c", "g1", "b1_", "m1", "v1"], ["bn1"], name="bn1"),
        helper.make_node("Clip", ["bn1", "lo", "hi"], ["r6"], name="relu6"),
        helper.make_node("BatchNormalization", ["x", "g2", "b2_", "m2", "v2"], ["bn2"], name="bn2"),
        helper.make_node("Clip", ["bn2", "m1c", "p1c"], ["cl"], name="clip_bn"),
        helper.make_node("Add", ["r6", "cl"], ["a"], name="add"),
        helper.make_node("Clip", ["a", "", "p15"], ["y"], name="clip_add"),
        helper.make_node("Clip", ["cl", "m1c", "lo"], ["z"], name="clip_shared"),
    ]
    m = model_of(nodes, [vi("x", [1, 8, 6, 7])], [vi("y", None), vi("z", None)],
                 [cw, cb, lo, hi, m1, p1, p15] + bn1 + bn2)
    cases.append(("clip_fused", m, f32(crng, 1, 8, 6, 7, scale=2)))
    # ONNX pools beyond PyTorch's: four-sided pads (with ceil_mode and both
    # count_include_pad), pads beyond half the window, dilation (with pads,
    # ceil_mode and count_include_pad), SAME_UPPER on an even size.
    prng = np.random.default_rng(20261202)  # its own: the other cases' data stays as it was
    pool_cases = [
        ("maxpool_asym_pads_ceil", "MaxPool", dict(kernel_shape=[3, 2], strides=[2, 2], pads=[0, 1, 2, 0], ceil_mode=1), (1, 3, 8, 7)),
        ("avgpool_asym_pads_ceil_incl", "AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[2, 0, 1, 1], ceil_mode=1, count_include_pad=1), (2, 3, 9, 8)),
        ("avgpool_asym_pads_excl", "AveragePool", dict(kernel_shape=[2, 3], strides=[1, 2], pads=[1, 2, 0, 1], count_include_pad=0), (1, 4, 6, 9)),
        ("maxpool_pads_beyond_half", "MaxPool", dict(kernel_shape=[3, 3], strides=[1, 1], pads=[2, 2, 2, 2]), (1, 3, 5, 5)),
        ("avgpool_pads_beyond_half_incl", "AveragePool", dict(kernel_shape=[4, 4], strides=[3, 3], pads=[3, 2, 1, 3], count_include_pad=1), (1, 3, 10, 9)),
        ("maxpool_dilated_pads", "MaxPool", dict(kernel_shape=[3, 3], strides=[1, 2], pads=[2, 1, 1, 2], dilations=[2, 3]), (1, 3, 9, 10)),
        ("avgpool_dilated_ceil_incl", "AveragePool", dict(kernel_shape=[2, 3], strides=[2, 2], pads=[1, 1, 1, 0], dilations=[2, 2], ceil_mode=1, count_include_pad=1), (2, 3, 8, 9)),
        ("avgpool_dilated_excl", "AveragePool", dict(kernel_shape=[3, 2], strides=[1, 1], pads=[1, 0, 2, 1], dilations=[3, 2], count_include_pad=0), (1, 5, 9, 7)),
        ("maxpool_same_upper_even", "MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"), (1, 3, 8, 10)),
    ]
    for nm, op, attrs, shape in pool_cases:
        node = helper.make_node(op, ["x"], ["y"], name="pool", **attrs)
        cases.append((nm, model_of([node], [vi("x", list(shape))], [vi("y", None)], [], opset=19), f32(prng, *shape)))
    # Standalone constant Pad (nonzero value, four different sides), and a
    # zero Pad before a max pool: folded into the pool after a ReLU (Keras'
    # ZeroPadding2D -> MaxPooling2D), materialized without one (x may be
    # negative), and before a ceil_mode average pool (not foldable).
    drng = np.random.default_rng(20261203)  # its own: the other cases' data stays as it was
    pads_a = numpy_helper.from_array(np.array([0, 0, 2, 1, 0, 0, 1, 3], np.int64), "pads_a")
    val = numpy_helper.from_array(np.array(-0.75, np.float32), "val")
    node = helper.make_node("Pad", ["x", "pads_a", "val"], ["y"], mode="constant", name="pad")
    cases.append(("pad_standalone_value", model_of([node], [vi("x", [2, 3, 5, 4])], [vi("y", None)], [pads_a, val]), f32(drng, 2, 3, 5, 4)))
    pads_b = numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads_b")
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Pad", ["r", "pads_b"], ["p"], mode="constant", name="zero_pad"),
        helper.make_node("MaxPool", ["p"], ["y"], kernel_shape=[3, 3], strides=[2, 2], name="pool"),
    ]
    cases.append(("pad_relu_into_maxpool", model_of(nodes, [vi("x", [1, 4, 9, 8])], [vi("y", None)], [pads_b]), f32(drng, 1, 4, 9, 8)))
    nodes = [
        helper.make_node("Pad", ["x", "pads_b"], ["p"], mode="constant", name="zero_pad"),
        helper.make_node("MaxPool", ["p"], ["y"], kernel_shape=[3, 3], strides=[2, 2], name="pool"),
    ]
    cases.append(("pad_then_maxpool", model_of(nodes, [vi("x", [1, 4, 9, 8])], [vi("y", None)], [pads_b]), f32(drng, 1, 4, 9, 8)))
    nodes = [
        helper.make_node("Pad", ["x", "pads_a"], ["p"], mode="constant", name="zero_pad"),
        helper.make_node("AveragePool", ["p"], ["y"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1,
                         count_include_pad=1, name="pool"),
    ]
    cases.append(("pad_then_avgpool_ceil", model_of(nodes, [vi("x", [1, 3, 6, 5])], [vi("y", None)], [pads_a]), f32(drng, 1, 3, 6, 5)))
    # Gemm with a full-matrix C whose rows are equal (a materialized
    # broadcast): (M, out) with transB, alpha, beta; and (M, 1).
    grng = np.random.default_rng(20261204)  # its own: the other cases' data stays as it was
    gb_ = numpy_helper.from_array(f32(grng, 7, 5), "gb_")
    row = f32(grng, 1, 7)
    cm = numpy_helper.from_array(np.repeat(row, 3, axis=0), "cm")
    node = helper.make_node("Gemm", ["x", "gb_", "cm"], ["y"], transB=1, alpha=0.7, beta=1.5, name="gemm")
    cases.append(("gemm_matrix_bias_equal_rows", model_of([node], [vi("x", [3, 5])], [vi("y", None)], [gb_, cm]), f32(grng, 3, 5)))
    gc = numpy_helper.from_array(f32(grng, 5, 4), "gc")
    col = numpy_helper.from_array(np.full((2, 1), 0.375, np.float32), "col")
    node = helper.make_node("Gemm", ["x", "gc", "col"], ["y"], name="gemm")
    cases.append(("gemm_column_bias_equal_rows", model_of([node], [vi("x", [2, 5])], [vi("y", None)], [gc, col]), f32(grng, 2, 5)))
    # tf2onnx style: NHWC input, transposes around every conv, NHWC pooling via ReduceMean.
    w1 = numpy_helper.from_array(f32(rng, 8, 3, 3, 3, scale=0.3), "w1")
    b1 = numpy_helper.from_array(f32(rng, 8), "b1")
    w2 = numpy_helper.from_array(f32(rng, 8, 8, 1, 1, scale=0.3), "w2")
    kk = numpy_helper.from_array(f32(rng, 8) + 1.5, "kk")  # per-channel on the NHWC last axis
    fc = numpy_helper.from_array(f32(rng, 8, 5), "fc")
    axes = numpy_helper.from_array(np.array([1, 2], np.int64), "axes")
    nodes = [
        helper.make_node("Transpose", ["x"], ["t0"], perm=[0, 3, 1, 2], name="in_t"),
        helper.make_node("Conv", ["t0", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Transpose", ["c1"], ["t1"], perm=[0, 2, 3, 1], name="t1"),
        helper.make_node("Relu", ["t1"], ["r1"], name="relu1"),
        helper.make_node("Mul", ["r1", "kk"], ["m1"], name="scale1"),
        helper.make_node("Transpose", ["m1"], ["t2"], perm=[0, 3, 1, 2], name="t2"),
        helper.make_node("Conv", ["t2", "w2"], ["c2"], name="conv2"),
        helper.make_node("Transpose", ["c2"], ["t3"], perm=[0, 2, 3, 1], name="t3"),
        helper.make_node("Add", ["t3", "t1"], ["s"], name="residual"),
        helper.make_node("ReduceMean", ["s", "axes"], ["p"], keepdims=0, name="gap"),
        helper.make_node("MatMul", ["p", "fc"], ["y"], name="fc"),
    ]
    m = model_of(nodes, [vi("x", [1, 9, 11, 3])], [vi("y", None)], [w1, b1, w2, kk, fc, axes], opset=18)
    cases.append(("nhwc_tf2onnx", m, f32(rng, 1, 9, 11, 3)))
    # A tf2onnx-style NHWC output (no transpose back at the end).
    nodes = [
        helper.make_node("Transpose", ["x"], ["t0"], perm=[0, 3, 1, 2], name="in_t"),
        helper.make_node("Conv", ["t0", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Transpose", ["c1"], ["y"], perm=[0, 2, 3, 1], name="out_t"),
    ]
    m = model_of(nodes, [vi("x", [2, 6, 7, 3])], [vi("y", None)], [w1, b1])
    cases.append(("nhwc_output", m, f32(rng, 2, 6, 7, 3)))
    # Batchnorm decomposed into Sub/Mul/Add on constants after a conv (folds into it).
    mean = numpy_helper.from_array(f32(rng, 1, 8, 1, 1, scale=0.2), "mean")
    inv = numpy_helper.from_array((rng.uniform(0.5, 1.5, size=(1, 8, 1, 1))).astype(np.float32), "inv")
    beta = numpy_helper.from_array(f32(rng, 8, 1, 1, scale=0.2), "beta")
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Sub", ["c", "mean"], ["s"], name="bn_sub"),
        helper.make_node("Mul", ["s", "inv"], ["m"], name="bn_mul"),
        helper.make_node("Add", ["m", "beta"], ["a"], name="bn_add"),
        helper.make_node("Relu", ["a"], ["y"], name="relu"),
    ]
    cases.append(("bn_decomposed", model_of(nodes, [vi("x", [1, 3, 8, 9])], [vi("y", None)], [w1, mean, inv, beta]), f32(rng, 1, 3, 8, 9)))
    # Inception-ResNet residual: conv, Mul by a scalar, Add, Relu.
    w3 = numpy_helper.from_array(f32(rng, 8, 8, 1, 1, scale=0.3), "w3")
    b3 = numpy_helper.from_array(f32(rng, 8), "b3")
    s17 = numpy_helper.from_array(np.array(0.17, np.float32), "s17")
    nodes = [
        helper.make_node("Conv", ["x", "w3", "b3"], ["c"], name="conv2d"),
        helper.make_node("Mul", ["c", "s17"], ["m"], name="scale"),
        helper.make_node("Add", ["m", "x"], ["a"], name="residual"),
        helper.make_node("Relu", ["a"], ["y"], name="relu"),
    ]
    cases.append(("scaled_residual", model_of(nodes, [vi("x", [1, 8, 5, 6])], [vi("y", None)], [w3, b3, s17]), f32(rng, 1, 8, 5, 6)))
    # Constant Pad folded into the conv / count-including-pad average pool that follows.
    pads = numpy_helper.from_array(np.array([0, 0, 1, 2, 0, 0, 3, 0], np.int64), "pads")
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"], mode="constant", name="pad"),
        helper.make_node("Conv", ["p", "w1", "b1"], ["y"], name="conv"),
    ]
    cases.append(("pad_into_conv", model_of(nodes, [vi("x", [1, 3, 7, 8])], [vi("y", None)], [w1, b1, pads]), f32(rng, 1, 3, 7, 8)))
    pads2 = numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads2")
    nodes = [
        helper.make_node("Pad", ["x", "pads2"], ["p"], mode="constant", name="pad"),
        helper.make_node("AveragePool", ["p"], ["y"], kernel_shape=[3, 3], strides=[1, 1],
                         count_include_pad=1, name="pool"),
    ]
    cases.append(("pad_into_avgpool", model_of(nodes, [vi("x", [1, 4, 6, 7])], [vi("y", None)], [pads2]), f32(rng, 1, 4, 6, 7)))
    # Shape arithmetic before a flatten (the legacy exporter's pattern) and Gemm with transB.
    g_w = numpy_helper.from_array(f32(rng, 10, 8 * 3 * 4), "gw")
    g_b = numpy_helper.from_array(f32(rng, 10), "gb")
    zero = numpy_helper.from_array(np.array(0, np.int64), "zero")
    minus1 = numpy_helper.from_array(np.array([-1], np.int64), "minus1")
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2], name="conv"),
        helper.make_node("Shape", ["c"], ["sh"], name="shape"),
        helper.make_node("Gather", ["sh", "zero"], ["n"], axis=0, name="gather"),
        helper.make_node("Unsqueeze", ["n", "zero_axes"], ["n1"], name="unsq"),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0, name="cat"),
        helper.make_node("Reshape", ["c", "target"], ["f"], name="reshape"),
        helper.make_node("Gemm", ["f", "gw", "gb"], ["y"], transB=1, alpha=0.5, beta=2.0, name="gemm"),
    ]
    zero_axes = numpy_helper.from_array(np.array([0], np.int64), "zero_axes")
    cases.append(("shape_arith_gemm", model_of(nodes, [vi("x", [2, 3, 5, 7])], [vi("y", None)], [w1, b1, g_w, g_b, zero, minus1, zero_axes]), f32(rng, 2, 3, 5, 7)))
    # BatchNormalization on a conv, Softmax at the end, Identity and Dropout dropped.
    bn = [numpy_helper.from_array(v, n) for v, n in [
        (rng.uniform(0.5, 1.5, 8).astype(np.float32), "g"), (f32(rng, 8, scale=0.2), "b"),
        (f32(rng, 8, scale=0.2), "m"), (rng.uniform(0.5, 1.5, 8).astype(np.float32), "v")]]
    fc2 = numpy_helper.from_array(f32(rng, 8, 4), "fc2")
    fcb = numpy_helper.from_array(f32(rng, 4), "fcb")
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["bn"], epsilon=1e-3, name="bn"),
        helper.make_node("Identity", ["bn"], ["id"], name="id"),
        helper.make_node("Relu", ["id"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["gp"], name="gap"),
        helper.make_node("Flatten", ["gp"], ["fl"], axis=1, name="flatten"),
        helper.make_node("Dropout", ["fl"], ["dr"], name="drop"),
        helper.make_node("MatMul", ["dr", "fc2"], ["mm"], name="fc"),
        helper.make_node("Add", ["mm", "fcb"], ["lg"], name="fc_bias"),
        helper.make_node("Softmax", ["lg"], ["y"], axis=-1, name="softmax"),
    ]
    cases.append(("bn_gap_fc_softmax", model_of(nodes, [vi("x", [3, 3, 6, 5])], [vi("y", None)], [w1] + bn + [fc2, fcb]), f32(rng, 3, 3, 6, 5)))
    # Sum of three branches and a channel Concat.
    wa = numpy_helper.from_array(f32(rng, 4, 3, 1, 1), "wa")
    wb = numpy_helper.from_array(f32(rng, 4, 3, 3, 3, scale=0.3), "wb")
    nodes = [
        helper.make_node("Conv", ["x", "wa"], ["a"], name="conv_a"),
        helper.make_node("Conv", ["x", "wb"], ["b"], pads=[1, 1, 1, 1], name="conv_b"),
        helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="pool"),
        helper.make_node("Sum", ["a", "b", "a"], ["s"], name="sum"),
        helper.make_node("Concat", ["s", "p", "b"], ["y"], axis=1, name="cat"),
    ]
    cases.append(("sum_concat", model_of(nodes, [vi("x", [1, 3, 7, 6])], [vi("y", None)], [wa, wb]), f32(rng, 1, 3, 7, 6)))
    # A pending scalar scale read twice (an Add takes it as a coefficient,
    # a Relu needs it applied), and a MatMul output read both through an
    # Identity + Add (a bias) and directly (no bias): two outputs.
    w5 = numpy_helper.from_array(f32(rng, 6, 6, 3, 3, scale=0.3), "w5")
    half = numpy_helper.from_array(np.array(0.5, np.float32), "half")
    fc5 = numpy_helper.from_array(f32(rng, 12, 3), "fc5")
    b5 = numpy_helper.from_array(f32(rng, 3), "b5")
    nodes = [
        helper.make_node("Conv", ["x", "w5"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Mul", ["c", "half"], ["h"], name="half"),
        helper.make_node("Add", ["h", "x"], ["a"], name="residual"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Concat", ["a", "r"], ["cat"], axis=1, name="cat"),
        helper.make_node("GlobalAveragePool", ["cat"], ["gp"], name="gap"),
        helper.make_node("Flatten", ["gp"], ["fl"], name="flatten"),
        helper.make_node("MatMul", ["fl", "fc5"], ["m"], name="fc"),
        helper.make_node("Identity", ["m"], ["mi"], name="id"),
        helper.make_node("Add", ["mi", "b5"], ["y1"], name="bias"),
    ]
    m = model_of(nodes, [vi("x", [2, 6, 5, 4])], [vi("y1", None), vi("m", None)], [w5, half, fc5, b5])
    cases.append(("shared_pending", m, f32(rng, 2, 6, 5, 4)))
    # Preprocessing metadata (metadata_props), read into OnnxModelInfo.
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu")]
    m = model_of(nodes, [vi("x", [1, 3, 4, 4])], [vi("y", None)], [])
    for k, v in (("mean", "[0.485, 0.456, 0.406]"), ("std", "0.229,0.224,0.225"), ("resize", "256"),
                 ("crop", "224"), ("interpolation", "bicubic"), ("labels", "cat\ndog\nbird\n")):
        e = m.metadata_props.add()
        e.key, e.value = k, v
    cases.append(("metadata", m, f32(rng, 1, 3, 4, 4)))
    # Symbolic batch: the model declares ["batch", 3, 8, 8]; the test gives batch 2.
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["y"], pads=[1, 1, 1, 1], name="conv")]
    m = model_of(nodes, [vi("x", ["batch", 3, 8, 8])], [vi("y", ["batch", 8, 8, 8])], [w1, b1])
    cases.append(("symbolic_batch", m, f32(rng, 2, 3, 8, 8)))
    # Pad modes and softmax axes (their own generator, so the cases above
    # keep their values).
    qrng = np.random.default_rng(20261201)
    # Reflect Pad between convs (style-transfer / segmentation nets), an
    # edge Pad of an odd shape (C padded too), a constant Pad cropping
    # other sides, and a per-pixel softmax over the channels of a feature
    # map.
    w6 = numpy_helper.from_array(f32(qrng, 5, 3, 3, 3, scale=0.3), "w6")
    w7 = numpy_helper.from_array(f32(qrng, 4, 5, 3, 3, scale=0.3), "w7")
    rp = numpy_helper.from_array(np.array([0, 0, 2, 1, 0, 0, 1, 2], np.int64), "rp")
    nodes = [
        helper.make_node("Conv", ["x", "w6"], ["c1"], name="conv1"),
        helper.make_node("Pad", ["c1", "rp"], ["p"], mode="reflect", name="reflect_pad"),
        helper.make_node("Conv", ["p", "w7"], ["y"], name="conv2"),
    ]
    cases.append(("conv_reflect_pad_conv", model_of(nodes, [vi("x", [1, 3, 9, 7])], [vi("y", None)], [w6, w7, rp]), f32(qrng, 1, 3, 9, 7)))
    ep = numpy_helper.from_array(np.array([0, 1, 3, 0, 0, 2, 1, 4], np.int64), "ep")
    nodes = [helper.make_node("Pad", ["x", "ep"], ["y"], mode="edge", name="edge_pad")]
    cases.append(("edge_pad_odd", model_of(nodes, [vi("x", [2, 3, 5, 7])], [vi("y", None)], [ep]), f32(qrng, 2, 3, 5, 7)))
    cp = numpy_helper.from_array(np.array([0, 0, -1, 2, 0, 0, 3, -2], np.int64), "cp")
    nodes = [helper.make_node("Pad", ["x", "cp"], ["y"], mode="constant", name="crop_pad")]
    cases.append(("constant_pad_crop", model_of(nodes, [vi("x", [1, 2, 5, 6])], [vi("y", None)], [cp]), f32(qrng, 1, 2, 5, 6)))
    # Crop one side and wrap the other (onnxruntime crops first, then pads
    # from the cropped tensor).
    wp = numpy_helper.from_array(np.array([0, 0, 2, -1, 0, 0, -2, 3], np.int64), "wp")
    nodes = [helper.make_node("Pad", ["x", "wp"], ["y"], mode="wrap", name="wrap_crop_pad")]
    cases.append(("wrap_pad_crop", model_of(nodes, [vi("x", [1, 3, 6, 5])], [vi("y", None)], [wp]), f32(qrng, 1, 3, 6, 5)))
    w8 = numpy_helper.from_array(f32(qrng, 6, 3, 3, 3, scale=0.5), "w8")
    nodes = [
        helper.make_node("Conv", ["x", "w8"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Softmax", ["c"], ["y"], axis=1, name="pixel_softmax"),
    ]
    cases.append(("conv_channel_softmax", model_of(nodes, [vi("x", [2, 3, 5, 6])], [vi("y", None)], [w8]), f32(qrng, 2, 3, 5, 6, scale=3.0)))
    # Gemm with transA=1 on the runtime input (3 of the 5 "images" become
    # the rows: the graph couples its batch) and a bias.
    gb_ = numpy_helper.from_array(f32(qrng, 5, 4), "gB")
    gc_ = numpy_helper.from_array(f32(qrng, 4), "gC")
    node = helper.make_node("Gemm", ["x", "gB", "gC"], ["y"], transA=1, alpha=0.75, name="gemm_ta")
    cases.append(("gemm_transa_bias", model_of([node], [vi("x", [5, 3])], [vi("y", None)], [gb_, gc_]), f32(qrng, 5, 3)))
    cases.extend(const_cases())
    return cases


def const_cases():
    """Elementwise ops with a constant that is neither a scalar nor
    per-channel (the IR's ConstArith), a Gemm with a full-matrix C whose
    rows differ, and Dropout's mask as an output; batch 2 so that every
    constant without a batch dim broadcasts over N. Own generator: the
    other cases' data stays as it was."""
    rng = np.random.default_rng(20261130)
    cases = []
    w = numpy_helper.from_array(f32(rng, 4, 3, 3, 3, scale=0.4), "w")
    b = numpy_helper.from_array(f32(rng, 4), "b")
    conv = helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv")
    x = lambda: f32(rng, 2, 3, 6, 5)  # noqa: E731
    # Add of a (1, C, H, W) constant: a whole image, broadcast over N.
    k = numpy_helper.from_array(f32(rng, 1, 4, 6, 5), "k")
    nodes = [conv, helper.make_node("Add", ["c", "k"], ["y"], name="add_image")]
    cases.append(("const_add_image", model_of(nodes, [vi("x", [2, 3, 6, 5])], [vi("y", None)], [w, b, k]), x()))
    # Mul by a (1, 1, H, W) constant (in the constant-first order).
    k = numpy_helper.from_array(f32(rng, 1, 1, 6, 5) * 2.0, "k")
    nodes = [conv, helper.make_node("Mul", ["k", "c"], ["y"], name="mul_plane")]
    cases.append(("const_mul_plane", model_of(nodes, [vi("x", [2, 3, 6, 5])], [vi("y", None)], [w, b, k]), x()))
    # A constant divided by the activation, kept in [1, ∞) by Relu + 1
    # (a pending scalar map, applied before the division): (C, 1, W).
    one = numpy_helper.from_array(np.array(1.0, np.float32), "one")
    k = numpy_helper.from_array(f32(rng, 4, 1, 5) * 3.0, "k")
    nodes = [conv, helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Add", ["r", "one"], ["r1"], name="plus_one"),
             helper.make_node("Div", ["k", "r1"], ["y"], name="div_by_x")]
    cases.append(("const_div_by_activation", model_of(nodes, [vi("x", [2, 3, 6, 5])], [vi("y", None)], [w, b, one, k]), x()))
    # Rank-lower constants: x − (H, W), then (W,) − that.
    k1 = numpy_helper.from_array(f32(rng, 6, 5), "k1")
    k2 = numpy_helper.from_array(f32(rng, 5), "k2")
    nodes = [conv, helper.make_node("Sub", ["c", "k1"], ["s"], name="sub_hw"),
             helper.make_node("Sub", ["k2", "s"], ["y"], name="sub_from_row")]
    cases.append(("const_sub_rank_lower", model_of(nodes, [vi("x", [2, 3, 6, 5])], [vi("y", None)], [w, b, k1, k2]), x()))
    # Sum of a runtime tensor and two constants (full, per-row).
    k1 = numpy_helper.from_array(f32(rng, 2, 4, 6, 5), "k1")
    k2 = numpy_helper.from_array(f32(rng, 6, 1), "k2")
    nodes = [conv, helper.make_node("Sum", ["c", "k1", "k2"], ["y"], name="sum_consts")]
    cases.append(("const_sum", model_of(nodes, [vi("x", [2, 3, 6, 5])], [vi("y", None)], [w, b, k1, k2]), x()))
    # Gemm with a full-matrix C whose rows differ: (M, out) with transB,
    # alpha and beta, and (M, 1).
    gb = numpy_helper.from_array(f32(rng, 7, 5), "gb")
    cm = numpy_helper.from_array(f32(rng, 3, 7), "cm")
    node = helper.make_node("Gemm", ["x", "gb", "cm"], ["y"], transB=1, alpha=0.7, beta=1.5, name="gemm")
    cases.append(("gemm_matrix_bias", model_of([node], [vi("x", [3, 5])], [vi("y", None)], [gb, cm]), f32(rng, 3, 5)))
    gc = numpy_helper.from_array(f32(rng, 5, 4), "gc")
    col = numpy_helper.from_array(f32(rng, 3, 1), "col")
    node = helper.make_node("Gemm", ["x", "gc", "col"], ["y"], name="gemm")
    cases.append(("gemm_column_bias", model_of([node], [vi("x", [3, 5])], [vi("y", None)], [gc, col]), f32(rng, 3, 5)))
    # Dropout (inference, ratio 0.3) asked for its mask: all true, BOOL.
    ratio = numpy_helper.from_array(np.array(0.3, np.float32), "ratio")
    nodes = [conv, helper.make_node("Dropout", ["c", "ratio"], ["y", "mask"], name="dropout")]
    m = model_of(nodes, [vi("x", [2, 3, 6, 5])], [vi("y", None), helper.make_tensor_value_info("mask", TensorProto.BOOL, None)], [w, b, ratio])
    cases.append(("dropout_mask", m, x()))
    return cases


def make_extra():
    out = os.path.join(FIX, "extra")
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    lines = []
    skips = {}
    for name, model, x in extra_cases():
        d = os.path.join(out, name)
        os.makedirs(d)
        path = os.path.join(d, "model.onnx")
        onnx.save(model, path)
        ys = ort_run(path, x)
        write_case(d, model, [x], ys)
        lines.append(f"{name}\t{'skip' if name in skips else 'run'}\t{skips.get(name, '')}")
    # External data: the weights in a file beside the model.
    rng = np.random.default_rng(7)
    name, model, x = conv_case(rng, "external_data", (1, 4, 6, 6), (8, 4, 3, 3), pads=[1, 1, 1, 1])
    d = os.path.join(out, name)
    os.makedirs(d)
    path = os.path.join(d, "model.onnx")
    onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    ys = ort_run(path, x)
    data = os.path.join(d, "test_data_set_0")
    os.makedirs(data)
    for i, arr in enumerate([x]):
        with open(os.path.join(data, f"input_{i}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(arr, "x").SerializeToString())
    for i, arr in enumerate(ys):
        with open(os.path.join(data, f"output_{i}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(arr, "y").SerializeToString())
    lines.append(f"{name}\trun\t")
    lines.sort()
    with open(os.path.join(out, "manifest.tsv"), "w") as f:
        f.write("# case\tmode (run | skip)\treason\n")
        f.write("\n".join(lines) + "\n")
    print(f"extra/: {len(lines)} cases, {dir_size(out)} bytes")


# ---------------------------------------------------------------------------
# 4. Models the importer must refuse (each with one clear error)
# ---------------------------------------------------------------------------


def make_refusals():
    out = os.path.join(FIX, "refuse")
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(f32(rng, 4, 3, 3, 3), "w")
    written = []

    def save(name, m):
        onnx.save(m, os.path.join(out, name))
        written.append(name)

    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("LeakyRelu", ["c"], ["y"], alpha=0.1, name="leaky")]
    save("unsupported_op.onnx", model_of(nodes, [vi("x", [1, 3, 8, 8])], [vi("y", None)], [w]))
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu")]
    save("old_opset.onnx", model_of(nodes, [vi("x", [1, 3, 8, 8])], [vi("y", None)], [], opset=11))
    nodes = [helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT, name="cast"),
             helper.make_node("Relu", ["xf"], ["y"], name="relu")]
    xi = helper.make_tensor_value_info("x", TensorProto.INT64, [1, 3, 4, 4])
    save("int_input.onnx", model_of(nodes, [xi], [vi("y", None)], []))
    nodes = [helper.make_node("Add", ["a", "b"], ["y"], name="add")]
    save("two_inputs.onnx", model_of(nodes, [vi("a", [1, 3, 4, 4]), vi("b", [1, 3, 4, 4])], [vi("y", None)], []))
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")]
    m = model_of(nodes, [vi("x", [1, 3, 8, 8])], [vi("y", None)], [w])
    t = m.graph.initializer[0]
    t.ClearField("raw_data")
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "../outside.bin"), ("offset", "0"), ("length", "432")):
        e = t.external_data.add()
        e.key, e.value = k, v
    save("external_traversal.onnx", m)
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")]
    save("symbolic_dims.onnx", model_of(nodes, [vi("x", ["N", 3, "height", 8])], [vi("y", None)], [w]))
    # A reflect Pad as long as the axis it mirrors (ONNX and numpy refuse it).
    rp = numpy_helper.from_array(np.array([0, 0, 0, 3, 0, 0, 0, 1], np.int64), "rp")
    nodes = [helper.make_node("Pad", ["x", "rp"], ["y"], mode="reflect", name="mirror")]
    save("reflect_pad_too_large.onnx", model_of(nodes, [vi("x", [1, 2, 4, 3])], [vi("y", None)], [rp]))
    print(f"refuse/: {len(written)} models, {dir_size(out)} bytes")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="node,extra,refuse,models")
    ap.add_argument("--full", default=None, help="also write full-width models to this folder (outside git)")
    args = ap.parse_args()
    parts = set(args.only.split(","))
    print(f"onnx {onnx.__version__}")
    if "node" in parts:
        make_node_tests()
    if "extra" in parts:
        make_extra()
    if "refuse" in parts:
        make_refusals()
    if "models" in parts:
        import make_onnx_models  # noqa: F401  (scripts/make_onnx_models.py)

        make_onnx_models.main(FIX, args.full)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()

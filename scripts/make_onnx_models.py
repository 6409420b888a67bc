"""Whole-model ONNX fixtures (part 3 of make_onnx_fixtures.py; run that).

Each model is built randomly initialised (torch.manual_seed), its
batchnorm statistics calibrated on random batches (train mode, cumulative
average over CALIB_BATCHES batches, then eval), checked to depend on its
input (negating the input moves the logits by more than 1% of
max|logits|), exported with torch.onnx.export by the legacy TorchScript
exporter (opset 17, symbolic batch) and the dynamo exporter (its default
opset), and run by onnxruntime (all graph optimisations off, one thread)
on a seeded input: its outputs are the expected values.

Slim variants ("_slim", committed): the same constructors with every
channel count above 3 divided by SLIM (16 for ResNeXt, whose 32 groups
must survive; groups are divided likewise where they divide), 100 classes: the same topology and the same exporters' graphs,
small enough for CI. Full-width ones only with --full DIR (outside git).
"""

import contextlib
import os
import shutil

import numpy as np
import onnx
import torch
from onnx import numpy_helper

SLIM = 32
# ResNeXt keeps its groups only at 16 (32 groups / 16 = 2, 4 channels each).
SLIM_OF = {"resnext50_32x4d": 16}
CLASSES = 100
CALIB_BATCHES = 4


def models():
    """(name, size, constructor(num_classes)) — the issue's six models."""
    import timm
    import torchvision.models as tvm

    return [
        ("resnet50", 97, lambda k: tvm.resnet50(num_classes=k)),
        ("resnext50_32x4d", 97, lambda k: tvm.resnext50_32x4d(num_classes=k)),
        ("inception_v3", 139, lambda k: tvm.inception_v3(num_classes=k, aux_logits=False,
                                                          transform_input=False, init_weights=True)),
        ("inception_v4", 139, lambda k: timm.create_model("inception_v4", num_classes=k)),
        ("inception_resnet_v2", 139, lambda k: timm.create_model("inception_resnet_v2", num_classes=k)),
        ("resnetv2_50", 97, lambda k: timm.create_model("resnetv2_50", num_classes=k)),
    ]


@contextlib.contextmanager
def slim(factor):
    """Divides every Conv2d/BatchNorm2d/Linear channel count above 3 by
    `factor` while models are built (groups too where they divide)."""
    nn = torch.nn
    conv_init, bn_init, lin_init = nn.Conv2d.__init__, nn.BatchNorm2d.__init__, nn.Linear.__init__

    def s(c):
        return c if c <= 3 else max(1, c // factor)

    def conv(self, in_channels, out_channels, *args, **kw):
        groups = kw.get("groups", 1)
        if groups > 1:
            if groups == in_channels:
                kw["groups"] = s(in_channels)
            elif groups % factor == 0:
                kw["groups"] = groups // factor
        conv_init(self, s(in_channels), s(out_channels), *args, **kw)

    def bn(self, num_features, *args, **kw):
        bn_init(self, s(num_features), *args, **kw)

    def lin(self, in_features, out_features, *args, **kw):
        lin_init(self, s(in_features), out_features if out_features == CLASSES else s(out_features), *args, **kw)

    nn.Conv2d.__init__, nn.BatchNorm2d.__init__, nn.Linear.__init__ = conv, bn, lin
    try:
        yield
    finally:
        nn.Conv2d.__init__, nn.BatchNorm2d.__init__, nn.Linear.__init__ = conv_init, bn_init, lin_init


def calibrate(model, size, seed):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(CALIB_BATCHES):
            model(torch.randn(8, 3, size, size, generator=g))
    model.eval()


def ort_run(path, x):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})


def export(model, x, path, exporter):
    if exporter == "legacy":
        torch.onnx.export(model, (x,), path, dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                          do_constant_folding=True)
    else:
        prog = torch.onnx.export(model, (x,), dynamo=True, external_data=False,
                                 input_names=["input"], output_names=["logits"])
        prog.save(path)


def write(d, path_model, x, ys):
    data = os.path.join(d, "test_data_set_0")
    os.makedirs(data, exist_ok=True)
    m = onnx.load(path_model, load_external_data=False)
    with open(os.path.join(data, "input_0.pb"), "wb") as f:
        f.write(numpy_helper.from_array(x, m.graph.input[0].name).SerializeToString())
    for i, y in enumerate(ys):
        with open(os.path.join(data, f"output_{i}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(y, m.graph.output[i].name).SerializeToString())


def make(out_root, name, size, ctor, factor, classes, seed):
    torch.manual_seed(seed)
    if factor > 1:
        with slim(factor):
            model = ctor(classes)
    else:
        model = ctor(classes)
    calibrate(model, size, seed + 1)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(seed + 2))
    with torch.no_grad():
        y = model(x)
        y_neg = model(-x)
    moved = (y - y_neg).abs().max().item()
    top = y.abs().max().item()
    assert moved > 0.01 * top, f"{name}: logits barely depend on the input ({moved} vs {top})"
    written = []
    for exporter in ("legacy", "dynamo"):
        tag = f"{name}{'_slim' if factor > 1 else ''}_{exporter}"
        d = os.path.join(out_root, tag)
        if os.path.exists(d):
            shutil.rmtree(d)
        os.makedirs(d)
        path = os.path.join(d, "model.onnx")
        export(model, x, path, exporter)
        xn = x.numpy()
        ys = ort_run(path, xn)
        err = np.abs(ys[0] - y.numpy()).max()
        # A sanity check of the export, not the tests' tolerance: two f32
        # implementations of a deep random net differ by rounding alone
        # (full-width Inception-v4: 1.1e-3 of max|logits|).
        assert err <= 1e-2 * top, f"{tag}: onnxruntime differs from PyTorch by {err} (max |logit| {top})"
        write(d, path, xn, ys)
        size_b = sum(os.path.getsize(os.path.join(p, f)) for p, _, fs in os.walk(d) for f in fs)
        print(f"  {tag}: {size}x{size}, {size_b} bytes, ort vs torch {err:.2e}, "
              f"input moves logits by {moved / top:.0%} of max|logit|")
        written.append(tag)
    return written


def main(fix_root, full_dir):
    out = os.path.join(fix_root, "models")
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    print(f"models/ (torch {torch.__version__}):")
    for i, (name, size, ctor) in enumerate(models()):
        make(out, name, size, ctor, SLIM_OF.get(name, SLIM), CLASSES, 1000 + 10 * i)
    if full_dir:
        os.makedirs(full_dir, exist_ok=True)
        print(f"full-width models in {full_dir}:")
        for i, (name, size, ctor) in enumerate(models()):
            make(full_dir, name, size, ctor, 1, 1000, 1000 + 10 * i)

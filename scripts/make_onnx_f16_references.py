#!/usr/bin/env python3
"""PyTorch's own half precision on the slim exported models.

For each committed slim model of `kernels-tests/fixtures/onnx/models/`,
rebuilds the same PyTorch model (make_onnx_models.py's constructors,
seeds and batchnorm calibration; checked: its f32 logits must match the
fixture's onnxruntime output within 1e-3 of max|logits|), then writes
beside the fixture's `test_data_set_0/output_0.pb`:

- `float64_output_0.pb`: the model in float64 (`model.double()`), the
  exact reference;
- `torch_f16_output_0.pb`: the model in PyTorch's FP16 (`model.half()` on
  the half input, logits back to f32), what `.half()` users get.

The CLI tests hold resincept's `--precision f16` run to the distance of
PyTorch's own FP16 from float64 (tests/cli.rs, onnx_f16_as_accurate_as_pytorch):
on these input-sensitive nets (calibrated batchnorm) rounding to f16 moves
the logits by a few percent of max|logits| in any implementation.

Needs torch, torchvision, timm, onnx (the same venv as make_onnx_models.py).
"""
import os
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_onnx_models as m  # noqa: E402


def main(fix_root):
    root = os.path.join(fix_root, "models")
    for i, (name, size, ctor) in enumerate(m.models()):
        seed = 1000 + 10 * i
        torch.manual_seed(seed)
        with m.slim(m.SLIM_OF.get(name, m.SLIM)):
            model = ctor(m.CLASSES)
        m.calibrate(model, size, seed + 1)
        model.eval()
        x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(seed + 2))
        with torch.no_grad():
            y32 = model.float()(x.float()).numpy()
            y64 = model.double()(x.double()).numpy()
            y16 = model.half()(x.half()).float().numpy()
        top = float(np.abs(y64).max())
        for exporter in ("legacy", "dynamo"):
            d = os.path.join(root, f"{name}_slim_{exporter}", "test_data_set_0")
            out = onnx.load_tensor(os.path.join(d, "output_0.pb"))
            ort = numpy_helper.to_array(out)
            same = float(np.abs(ort - y32).max())
            # Two f32 implementations of one deep net differ by rounding
            # (1.5e-4 of max|logits| for Inception-v4); another model would
            # differ by O(1).
            assert same <= 1e-3 * top, f"{d}: rebuilt model differs from the fixture by {same}"
            for fname, y in (("float64_output_0.pb", y64), ("torch_f16_output_0.pb", y16)):
                t = numpy_helper.from_array(y.astype(np.float32), out.name)
                with open(os.path.join(d, fname), "wb") as f:
                    f.write(t.SerializeToString())
        print(f"{name}: torch f16 vs float64 {np.abs(y16 - y64).max() / top:.2e} of max|logits| "
              f"({top:.3f}); f32 vs float64 {np.abs(y32 - y64).max() / top:.2e}")


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "kernels-tests", "fixtures", "onnx"))

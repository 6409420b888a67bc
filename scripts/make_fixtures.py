#!/usr/bin/env python3
"""Fixtures of our own, for behaviour the team's golden set does not cover.

Written to kernels-tests/fixtures/ (see the README there). Uses the
synthetic-v1 weights and input of the golden set, imported from the team's
make_golden.py, so a fixture holds only the input and PyTorch's output.

  inception_v3_transform_input.safetensors
      torchvision's inception_v3 built with transform_input=True (what
      inception_v3(weights=DEFAULT) builds), synthetic weights seed 1,
      input (1, 3, 75, 75), output computed in float64; `transformed` is
      the model's _transform_input(input) alone, in float32.

usage: make_fixtures.py [--golden ../shared/golden] [--out kernels-tests/fixtures]
needs: torch, torchvision, safetensors, numpy
"""
import argparse
import os
import sys


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--golden", default=os.path.join(here, "..", "..", "shared", "golden"),
                    help="folder holding the team's make_golden.py")
    ap.add_argument("--out", default=os.path.join(here, "..", "kernels-tests", "fixtures"))
    a = ap.parse_args()
    sys.path.insert(0, os.path.abspath(a.golden))
    import make_golden as mg
    import torchvision

    import torch
    from safetensors.torch import save_file

    os.makedirs(a.out, exist_ok=True)
    model = torchvision.models.inception_v3(aux_logits=False, init_weights=False, transform_input=True)
    x, y = mg.run(model, 1, (1, 3, 75, 75))
    # The transform alone, in float32 as PyTorch runs it at inference.
    with torch.no_grad():
        t = model.float()._transform_input(x)
    path = os.path.join(a.out, "inception_v3_transform_input.safetensors")
    save_file({"input": x, "output": y, "transformed": t.contiguous()}, path,
              metadata={"model": "inception_v3", "transform_input": "true", "seed": "1",
                        "weights": "synthetic-v1", "source": mg.TV})
    print(f"{os.path.basename(path)}: out {tuple(y.shape)}")


if __name__ == "__main__":
    main()

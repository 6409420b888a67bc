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

  models/inception_v3_b1_107x107_x1e6.safetensors
  models/inception_v4_b1_107x107_x1e8.safetensors
      The golden set's model fixtures, but with the synthetic input scaled
      by 1e6 / 1e8 (metadata `input_scale`). With synthetic-v1 weights the
      signal of these deep nets without skip connections fades below the
      batchnorm shifts: at the golden set's size, negating the input moves
      Inception-v3's logits by 3e-6 of max|y| and Inception-v4's by 1e-8,
      far under the tests' 1e-4 bar, so those fixtures cannot see an error
      in the early layers. Scaled, the input drives the logits (negating it
      moves them by a few percent; metadata `sensitivity`).

  blocks/<block>_<N>x<C>x<H>x<W>.safetensors
      The golden set's strided and stem blocks again, at odd, non-square
      sizes and batch 2 (the golden set has each block at one square size,
      mostly batch 1): where PyTorch's floor/ceil output-size rules and
      padding meet an odd edge.

  preprocess/input_<i>.png, preprocess/<model>_<i>.png, preprocess/transforms.txt
      Two synthetic RGB images (a smooth 500x375 one that is shrunk, a noisy
      97x73 one that is enlarged, kept for one bilinear and one bicubic
      transform) and what each model's library transform makes of them
      before ToTensor: torchvision's DEFAULT weights'
      transforms() for the torchvision models, timm's create_transform of
      resolve_data_config for the timm ones (PIL resize, bilinear or
      bicubic, then centre crop). transforms.txt lists each transform's
      resize, crop, interpolation, mean and std as the library states them.

usage: make_fixtures.py [--golden ../shared/golden] [--out kernels-tests/fixtures]
needs: torch, torchvision, safetensors, numpy
"""
import argparse
import math
import os
import sys


def make_preprocess(out):
    import numpy as np
    import timm
    from PIL import Image
    from torchvision import transforms as T
    from torchvision.models import get_model_weights

    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:375, 0:500].astype(np.float64)
    smooth = np.stack([
        127 + 120 * np.sin(xx / 37.0) * np.cos(yy / 23.0),
        255 * xx / 499,
        127 + 100 * np.sin((xx + yy) / 11.0),
    ], axis=-1)
    smooth[100:180, 200:330] = [250, 20, 40]  # a hard-edged block
    images = [
        Image.fromarray(np.clip(smooth, 0, 255).astype(np.uint8), "RGB"),
        Image.fromarray(rng.integers(0, 256, (73, 97, 3), dtype=np.uint8), "RGB"),
    ]
    for i, img in enumerate(images):
        img.save(os.path.join(out, f"input_{i}.png"))

    rows = []
    for name in ["resnet18", "resnet50", "inception_v3"]:
        t = get_model_weights(name).DEFAULT.transforms()
        rows.append((name, t.resize_size[0], t.crop_size[0], t.interpolation.value, t.mean, t.std))
    for name in ["resnetv2_50", "resnetv2_152", "inception_v4", "inception_resnet_v2"]:
        cfg = timm.data.resolve_data_config({}, model=timm.create_model(name))
        crop = cfg["input_size"][1]
        resize = math.floor(crop / cfg["crop_pct"])
        rows.append((name, resize, crop, cfg["interpolation"], cfg["mean"], cfg["std"]))
        # The library's own transform must be the resize and crop above.
        tf = timm.data.create_transform(**cfg)
        assert tf.transforms[0].size == resize and tf.transforms[1].size == (crop, crop), tf
    with open(os.path.join(out, "transforms.txt"), "w") as f:
        f.write("# model resize crop interpolation mean std (from the libraries; see make_fixtures.py)\n")
        for name, resize, crop, interp, mean, std in rows:
            f.write(f"{name} {resize} {crop} {interp} {','.join(map(repr, mean))} {','.join(map(repr, std))}\n")
            mode = {"bilinear": T.InterpolationMode.BILINEAR, "bicubic": T.InterpolationMode.BICUBIC}[interp]
            pipe = T.Compose([T.Resize(resize, interpolation=mode), T.CenterCrop(crop)])
            for i, img in enumerate(images):
                # The enlarged noise makes large PNGs: one bilinear, one bicubic.
                if i == 0 or name in ("resnet50", "inception_v4"):
                    pipe(img).save(os.path.join(out, f"{name}_{i}.png"))
    print(f"preprocess: {len(images)} images x {len(rows)} transforms")


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

    import timm

    make_preprocess(os.path.join(a.out, "preprocess"))

    # Blocks at odd sizes: (golden block name, input shape).
    odd = [
        ("resnet_basic_down", (2, 64, 15, 13)),
        ("resnet_bottleneck_down", (2, 256, 15, 13)),
        ("preact_bottleneck_down", (1, 256, 13, 11)),
        ("inception_v3_b", (2, 288, 17, 13)),
        ("inception_v3_d", (1, 768, 17, 15)),
        ("inception_v3_e", (2, 1280, 8, 6)),
        ("inception_v4_stem", (1, 3, 83, 79)),
        ("inception_v4_reduction_a", (2, 384, 17, 13)),
        ("inception_v4_reduction_b", (1, 1024, 17, 15)),
        ("inception_resnet_v2_mixed_6a", (2, 320, 17, 13)),
        ("inception_resnet_v2_mixed_7a", (1, 1088, 17, 15)),
    ]
    ctors = {stem: (ctor, src) for stem, ctor, _, src in mg.blocks()}
    os.makedirs(os.path.join(a.out, "blocks"), exist_ok=True)
    for stem, shape in odd:
        ctor, src = ctors[stem]
        x, y = mg.run(ctor(), 1, shape)
        name = f"{stem}_{'x'.join(map(str, shape))}.safetensors"
        mg.save(os.path.join(a.out, "blocks", name), x, y,
                {"block": stem, "seed": 1, "weights": "synthetic-v1", "source": src})

    os.makedirs(os.path.join(a.out, "models"), exist_ok=True)
    for stem, ctor, size, scale, source in [
        ("inception_v3",
         lambda: torchvision.models.inception_v3(aux_logits=False, init_weights=False, transform_input=False),
         107, 1e6, mg.TV),
        ("inception_v4", lambda: timm.create_model("inception_v4"), 107, 1e8, mg.TM),
    ]:
        shape = (1, 3, size, size)
        model = ctor().eval()
        mg.synthesize(model, 1)
        model = model.double()
        x = mg.synthetic_input(1, shape) * scale  # float32, as the engine reads it
        with torch.no_grad():
            y = model(x.double())
            y_neg = model(-x.double())
        sensitivity = ((y - y_neg).abs().max() / y.abs().max()).item()
        path = os.path.join(a.out, "models", f"{stem}_b1_{size}x{size}_x{scale:.0e}.safetensors".replace("e+0", "e"))
        save_file({"input": x.contiguous(), "output": y.float().contiguous()}, path,
                  metadata={"model": stem, "seed": "1", "weights": "synthetic-v1", "source": source,
                            "input_scale": repr(scale), "sensitivity": f"{sensitivity:.4g}"})
        print(f"{os.path.basename(path)}: max|y| {y.abs().max().item():.4g}, sensitivity {sensitivity:.3g}")


if __name__ == "__main__":
    main()

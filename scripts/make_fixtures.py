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

  models/<resnext or wide_resnet>_b<N>_<H>x<W>.safetensors
      torchvision's ResNeXt and Wide ResNet (grouped and widened
      bottlenecks), synthetic weights and input seed 1, at small odd sizes,
      output in float64; metadata `sensitivity` as for the Inceptions
      (these residual nets need no input scaling). --only grouped makes
      just these.

  decode/<name>.png, decode/<name>.rgb.png
      PNGs of every kind PIL opens differently (16-bit RGB, RGBA, grey and
      grey + alpha, 1/2/4-bit grey, palette with transparency, ...) and
      what PIL's Image.open(f).convert("RGB") makes of each, as 8-bit RGB
      PNGs: how torchvision's ImageFolder loads an image. Needs only
      Pillow and numpy (--only decode).

usage: make_fixtures.py [--golden ../shared/golden] [--out kernels-tests/fixtures] [--only decode]
needs: torch, torchvision, safetensors, numpy (decode: Pillow, numpy)
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
    # ResNeXt and Wide ResNet transforms are listed, not drawn: they are
    # resnet50's (232/224 bilinear), whose images are already here.
    for name in ["resnet18", "resnet50", "inception_v3", "resnext50_32x4d", "resnext101_64x4d",
                 "wide_resnet101_2"]:
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
                if name.startswith(("resnext", "wide_")):
                    continue
                if i == 0 or name in ("resnet50", "inception_v4"):
                    pipe(img).save(os.path.join(out, f"{name}_{i}.png"))
    print(f"preprocess: {len(images)} images x {len(rows)} transforms")


def write_png(path, arr, bit_depth, color_type, palette=None, trns=None):
    """A PNG written by hand (PIL cannot write 16-bit RGB or grey + alpha):
    rows of `arr` (H, W, channels) packed at `bit_depth`, filter 0."""
    import struct
    import zlib

    import numpy as np

    h, w = arr.shape[:2]
    rows = []
    for r in range(h):
        row = arr[r].reshape(-1)
        if bit_depth == 16:
            data = row.astype(">u2").tobytes()
        elif bit_depth == 8:
            data = row.astype(np.uint8).tobytes()
        else:  # 1, 2, 4: pack MSB first
            per = 8 // bit_depth
            padded = np.zeros(-(-len(row) // per) * per, np.uint8)
            padded[: len(row)] = row
            packed = np.zeros(len(padded) // per, np.uint8)
            for k in range(per):
                packed |= (padded[k::per] << (8 - bit_depth * (k + 1))).astype(np.uint8)
            data = packed.tobytes()
        rows.append(b"\x00" + data)

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0))
    if palette is not None:
        png += chunk(b"PLTE", bytes(palette))
    if trns is not None:
        png += chunk(b"tRNS", bytes(trns))
    png += chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def make_decode(out):
    import numpy as np
    from PIL import Image

    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(11)
    h, w = 37, 53
    yy, xx = np.mgrid[0:h, 0:w]
    ramp = np.stack([xx * 4.8, yy * 6.9, (xx + yy) * 2.7], -1)
    # 16-bit samples spread over the whole range, low bytes random, and a
    # few grey values just above 255 (where PIL's 16-bit grey clips).
    rgb16 = (ramp / 255 * 65535 + rng.integers(0, 256, (h, w, 3))).clip(0, 65535).astype(np.uint16)
    grey16 = rgb16[:, :, :1].copy()
    grey16[0, :8, 0] = [0, 1, 254, 255, 256, 300, 65280, 65535]
    alpha16 = rng.integers(0, 65536, (h, w, 1)).astype(np.uint16)
    write_png(os.path.join(out, "rgb16.png"), rgb16, 16, 2)
    write_png(os.path.join(out, "rgba16.png"), np.concatenate([rgb16, alpha16], -1), 16, 6)
    write_png(os.path.join(out, "grey16.png"), grey16, 16, 0)
    write_png(os.path.join(out, "greyalpha16.png"), np.concatenate([grey16, alpha16], -1), 16, 4)
    for bits in (1, 2, 4):
        g = rng.integers(0, 1 << bits, (h, w, 1))
        write_png(os.path.join(out, f"grey{bits}.png"), g, bits, 0)
    rgb8 = ramp.clip(0, 255).astype(np.uint8)
    write_png(os.path.join(out, "greyalpha8.png"),
              np.stack([rgb8[:, :, 0], (xx * 3 % 256).astype(np.uint8)], -1), 8, 4)
    write_png(os.path.join(out, "rgba8.png"),
              np.concatenate([rgb8, (yy * 5 % 256).astype(np.uint8)[..., None]], -1), 8, 6)
    # Palette of 13 colours, 4-bit indices, some entries transparent.
    pal = rng.integers(0, 256, (13, 3))
    write_png(os.path.join(out, "palette4_trns.png"), rng.integers(0, 13, (h, w, 1)), 4, 3,
              palette=pal.reshape(-1).tolist(), trns=[0, 128, 255, 7])
    names = sorted(f for f in os.listdir(out) if f.endswith(".png") and not f.endswith(".rgb.png"))
    for name in names:
        img = Image.open(os.path.join(out, name))
        mode = img.mode
        img.convert("RGB").save(os.path.join(out, name[:-4] + ".rgb.png"))
        print(f"decode: {name} opens as {mode}")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--golden", default=os.path.join(here, "..", "..", "shared", "golden"),
                    help="folder holding the team's make_golden.py")
    ap.add_argument("--out", default=os.path.join(here, "..", "kernels-tests", "fixtures"))
    ap.add_argument("--only", choices=["decode", "grouped"],
                    help="make only this part (decode needs no torch)")
    a = ap.parse_args()
    if a.only in (None, "decode"):
        make_decode(os.path.join(a.out, "decode"))
    if a.only == "decode":
        return
    sys.path.insert(0, os.path.abspath(a.golden))
    import make_golden as mg
    import torchvision

    import torch
    from safetensors.torch import save_file

    os.makedirs(os.path.join(a.out, "models"), exist_ok=True)
    # ResNeXt and Wide ResNet: (model, input shape). Small, odd sizes keep
    # the CPU reference quick in CI.
    for stem, shape in [
        ("resnext50_32x4d", (2, 3, 61, 53)),
        ("resnext101_32x8d", (1, 3, 45, 45)),
        ("resnext101_64x4d", (1, 3, 41, 47)),
        ("wide_resnet50_2", (1, 3, 64, 57)),
        ("wide_resnet101_2", (1, 3, 40, 40)),
    ]:
        model = getattr(torchvision.models, stem)(weights=None).eval()
        mg.synthesize(model, 1)
        model = model.double()
        x = mg.synthetic_input(1, shape)
        with torch.no_grad():
            y = model(x.double())
            y_neg = model(-x.double())
        sensitivity = ((y - y_neg).abs().max() / y.abs().max()).item()
        name = f"{stem}_b{shape[0]}_{shape[2]}x{shape[3]}.safetensors"
        save_file({"input": x.contiguous(), "output": y.float().contiguous()},
                  os.path.join(a.out, "models", name),
                  metadata={"model": stem, "seed": "1", "weights": "synthetic-v1", "source": mg.TV,
                            "sensitivity": f"{sensitivity:.4g}"})
        print(f"{name}: max|y| {y.abs().max().item():.4g}, sensitivity {sensitivity:.3g}")
    if a.only == "grouped":
        return

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

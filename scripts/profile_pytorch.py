#!/usr/bin/env python3
"""Per-layer GPU time of a model in PyTorch (CUDA, eager fp32, TF32 off,
cudnn.benchmark on), to set beside `resincept bench --profile --json`.

Each nn.Conv2d / nn.Linear / pooling module is timed with CUDA events
around its forward (a forward hook pair), over --iters runs after
--warmup, and reported by its module name (the same names resincept's
profile uses, since both follow torchvision's state_dict keys). Event
pairs around single modules add a few microseconds each, so use the
table to rank layers and compare shapes, not to add up.

    python scripts/profile_pytorch.py --model inception_v3 --batch 32 --json
"""

import argparse
import json
import statistics
import sys

import torch

sys.path.insert(0, __import__("os").path.dirname(__file__))
from bench_pytorch import DEFAULT_SIZE, build  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--size", type=int)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    size = args.size or DEFAULT_SIZE.get(args.model, 224)
    model = build(args.model).cuda().eval()
    x = torch.randn(args.batch, 3, size, size, device="cuda")
    kinds = (torch.nn.Conv2d, torch.nn.Linear, torch.nn.MaxPool2d, torch.nn.AvgPool2d,
             torch.nn.AdaptiveAvgPool2d)
    times = {}
    pending = {}

    def pre(name):
        def hook(_m, _inp):
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            pending[name] = ev
        return hook

    def post(name):
        def hook(_m, _inp, _out):
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            times.setdefault(name, []).append((pending.pop(name), ev))
        return hook

    shapes = {}

    def shape_hook(name):
        def hook(m, inp, out):
            shapes.setdefault(name, (list(inp[0].shape), list(out.shape), type(m).__name__))
        return hook

    for name, m in model.named_modules():
        if isinstance(m, kinds):
            m.register_forward_pre_hook(pre(name))
            m.register_forward_hook(post(name))
            m.register_forward_hook(shape_hook(name))
    with torch.no_grad():
        for _ in range(args.warmup):
            model(x)
        times.clear()
        for _ in range(args.iters):
            model(x)
        torch.cuda.synchronize()
    rows = []
    for name, evs in times.items():
        ms = statistics.median(a.elapsed_time(b) for a, b in evs)
        i, o, kind = shapes[name]
        rows.append({"layer": name, "kind": kind, "ms": ms, "input": i, "output": o})
    rows.sort(key=lambda r: -r["ms"])
    if args.json:
        print(json.dumps({"model": args.model, "batch": args.batch, "size": size,
                          "torch": torch.__version__, "device": torch.cuda.get_device_name(),
                          "layers": rows}))
    else:
        total = sum(r["ms"] for r in rows)
        print(f"{args.model} batch {args.batch} {size}x{size} on {torch.cuda.get_device_name()}: "
              f"sum {total:.3f} ms over {len(rows)} modules")
        for r in rows:
            print(f"{r['layer']:<40} {r['kind']:<18} {r['ms']:9.4f}  {r['input']} -> {r['output']}")


if __name__ == "__main__":
    main()

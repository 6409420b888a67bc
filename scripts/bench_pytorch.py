#!/usr/bin/env python3
"""Time resincept's models in PyTorch on CUDA, for a side-by-side with
`resincept bench`.

Same models (torchvision / timm, or the same architecture written here where
neither library has it), same batch and input size, synthetic weights
(timing does not depend on their values), fp32. The table has the columns of
`resincept bench`; `--json` prints one object per model with the same keys
(`null` for resincept-only ones such as `dispatches`).

What is timed, per iteration, matches `resincept bench` by default: a host
(CPU) input tensor is copied to the GPU, the model runs, and the logits are
copied back to the host (`end_to_end`). `--device-resident` keeps the input
on the GPU and times the forward pass alone with CUDA events.

Precision: TF32 is OFF by default (`torch.backends.cudnn.allow_tf32` and
`torch.backends.cuda.matmul.allow_tf32` False), so convolutions really run
in fp32 like resincept's shaders; `--tf32` turns it on. `--precision f16`
runs PyTorch's FP16 (`model.half()` and a half input, the logits cast back
to float: the counterpart of `resincept bench --precision f16`); pair it
with `--channels-last`, cuDNN's fast layout for FP16 tensor cores. cuDNN
autotuning (`cudnn.benchmark`) is on; `--no-cudnn-benchmark` turns it off.

Examples:
    python scripts/bench_pytorch.py --model resnet50 --batch 1
    python scripts/bench_pytorch.py --model all --batch 8 --iters 50 --json
    python scripts/bench_pytorch.py --model inception_v3 --channels-last --compile
    python scripts/bench_pytorch.py --model resnet50 --batch 32 --precision f16 --channels-last

Needs torch (with CUDA), torchvision and timm (timm only for the timm models).
"""

import argparse
import json
import statistics
import sys
import time

MODELS = [
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "wide_resnet50_2",
    "wide_resnet101_2",
    "plain18",
    "plain34",
    "resnetv2_50",
    "resnetv2_101",
    "resnetv2_152",
    "resnetv2_200",
    "preact_resnet164_cifar",
    "preact_resnet1001_cifar",
    "inception_v3",
    "inception_v4",
    "inception_resnet_v2",
]

DEFAULT_SIZE = {
    "inception_v3": 299,
    "inception_v4": 299,
    "inception_resnet_v2": 299,
    "preact_resnet164_cifar": 32,
    "preact_resnet1001_cifar": 32,
}

# Keys of `resincept bench --json` that have no PyTorch counterpart.
RESINCEPT_ONLY = [
    "dispatches",
    "pipelines",
    "arena_bytes",
    "values_bytes",
    "lower_bound_bytes",
]


def build(name):
    """The nn.Module for `name` (eval mode, random weights, on the CPU)."""
    import torch
    import torch.nn as nn
    import torchvision

    if name in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152") or name.startswith(
        ("resnext", "wide_resnet")
    ):
        return getattr(torchvision.models, name)(weights=None)
    if name in ("plain18", "plain34"):
        from torchvision.models.resnet import BasicBlock, ResNet

        class PlainBlock(BasicBlock):
            """BasicBlock without the shortcut (He et al. 2015, sec. 4.1)."""

            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self.downsample = None

            def forward(self, x):
                out = self.relu(self.bn1(self.conv1(x)))
                return self.relu(self.bn2(self.conv2(out)))

        layers = [2, 2, 2, 2] if name == "plain18" else [3, 4, 6, 3]
        return ResNet(PlainBlock, layers)
    if name == "inception_v3":
        return torchvision.models.inception_v3(
            weights=None, aux_logits=False, init_weights=False
        )
    if name in ("resnetv2_50", "resnetv2_101", "resnetv2_152", "resnetv2_200"):
        from timm.layers import BatchNormAct2d, create_conv2d
        from timm.models.resnetv2 import ResNetV2

        layers = {
            "resnetv2_50": [3, 4, 6, 3],
            "resnetv2_101": [3, 4, 23, 3],
            "resnetv2_152": [3, 8, 36, 3],
            "resnetv2_200": [3, 24, 36, 3],
        }[name]
        # What timm.create_model("resnetv2_50") builds, for any depth.
        return ResNetV2(
            layers=layers, conv_layer=create_conv2d, norm_layer=BatchNormAct2d
        )
    if name in ("inception_v4", "inception_resnet_v2"):
        import timm

        return timm.create_model(name, pretrained=False)
    if name in ("preact_resnet164_cifar", "preact_resnet1001_cifar"):
        n = 18 if name == "preact_resnet164_cifar" else 111

        class PreActBottleneck(nn.Module):
            def __init__(self, cin, cout, stride, project):
                super().__init__()
                mid = cout // 4
                self.norm1 = nn.BatchNorm2d(cin)
                self.conv1 = nn.Conv2d(cin, mid, 1, bias=False)
                self.norm2 = nn.BatchNorm2d(mid)
                self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, bias=False)
                self.norm3 = nn.BatchNorm2d(mid)
                self.conv3 = nn.Conv2d(mid, cout, 1, bias=False)
                self.downsample = (
                    nn.Conv2d(cin, cout, 1, stride, bias=False) if project else None
                )

            def forward(self, x):
                p = torch.relu(self.norm1(x))
                short = self.downsample(p) if self.downsample is not None else x
                y = self.conv1(p)
                y = self.conv2(torch.relu(self.norm2(y)))
                y = self.conv3(torch.relu(self.norm3(y)))
                return y + short

        class PreActCifar(nn.Module):
            """He et al. 2016's depth-(9n+2) CIFAR net, as resincept builds it."""

            def __init__(self):
                super().__init__()
                self.stem = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
                blocks, cin = [], 16
                for s, cout in enumerate([64, 128, 256]):
                    for i in range(n):
                        stride = 2 if s > 0 and i == 0 else 1
                        blocks.append(PreActBottleneck(cin, cout, stride, i == 0))
                        cin = cout
                self.blocks = nn.Sequential(*blocks)
                self.norm = nn.BatchNorm2d(cin)
                self.fc = nn.Conv2d(cin, 10, 1)

            def forward(self, x):
                y = torch.relu(self.norm(self.blocks(self.stem(x))))
                y = y.mean((2, 3), keepdim=True)
                return self.fc(y).flatten(1)

        return PreActCifar()
    raise SystemExit(
        "error: unknown model `%s`; known models: %s" % (name, ", ".join(MODELS))
    )


def count_macs(model, x):
    """Multiply-adds of Conv2d and Linear layers for input `x` (the figure
    `resincept models` reports), via forward hooks on a CPU run."""
    import torch
    import torch.nn as nn

    total = [0]

    def conv_hook(m, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1]
        total[0] += out.numel() * (m.in_channels // m.groups) * k

    def linear_hook(m, inp, out):
        total[0] += out.numel() * m.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return total[0]


def bench_one(name, args):
    import torch

    size = args.size or DEFAULT_SIZE.get(name, 224)
    torch.manual_seed(0)
    model = build(name).eval()
    x_cpu = torch.randn(args.batch, 3, size, size)
    macs = count_macs(model, x_cpu[:1]) * args.batch
    dev = torch.device("cuda")
    model = model.to(dev)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    # FP16: weights and activations in half; the host input is converted
    # on the GPU (as resincept converts its f32 input), the logits come
    # back as float.
    dtype = torch.float16 if args.precision == "f16" else torch.float32
    model = model.to(dtype)
    if args.compile:
        model = torch.compile(model)
    x_gpu = x_cpu.to(dev).to(dtype).contiguous(memory_format=fmt)
    x_pinned = x_cpu.pin_memory() if args.pin_memory else x_cpu

    def step_end_to_end():
        x = x_pinned.to(dev, non_blocking=args.pin_memory)
        x = x.to(dtype).contiguous(memory_format=fmt)
        return model(x).float().cpu()  # .cpu() waits for the GPU

    t0 = time.perf_counter()
    with torch.inference_mode():
        for _ in range(max(args.warmup, 1)):
            model(x_gpu)
        torch.cuda.synchronize()
        warm_s = time.perf_counter() - t0
        times = []
        if args.device_resident:
            for _ in range(args.iters):
                start = torch.cuda.Event(enable_timing=True)
                end = torch.cuda.Event(enable_timing=True)
                start.record()
                model(x_gpu)
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
        else:
            for _ in range(args.iters):
                t = time.perf_counter()
                out = step_end_to_end()
                times.append((time.perf_counter() - t) * 1e3)
            if not torch.isfinite(out).all():
                print("warning: %s produced non-finite logits" % name, file=sys.stderr)
    median = statistics.median(times)
    variant = "eager"
    if args.compile:
        variant = "torch.compile"
    if args.channels_last:
        variant += "+channels_last"
    if args.tf32:
        variant += "+tf32"
    if args.precision == "f16":
        variant += "+fp16"
    result = {
        "model": name,
        "batch": args.batch,
        "size": size,
        "precision": "f16" if args.precision == "f16" else ("tf32" if args.tf32 else "f32"),
        "adapter": torch.cuda.get_device_name(dev),
        "backend": "pytorch-cuda %s (%s)" % (torch.__version__, variant),
        "driver": "CUDA %s, cuDNN %s"
        % (torch.version.cuda, torch.backends.cudnn.version()),
        "timing": "device_resident" if args.device_resident else "end_to_end",
        "flops": 2 * macs,
        "macs": macs,
        "compile_s": warm_s,
        "warmup": max(args.warmup, 1),
        "iters": args.iters,
        "latency_ms_median": median,
        "latency_ms_min": min(times),
        "latency_ms_max": max(times),
        "images_per_s": args.batch / (median / 1e3),
        "gflops_per_s": 2 * macs / (median / 1e3) / 1e9,
    }
    for k in RESINCEPT_ONLY:
        result[k] = None
    return result


def header():
    return "%-24s %5s %5s %10s %9s %9s %10s %9s" % (
        "model",
        "batch",
        "size",
        "median_ms",
        "min_ms",
        "max_ms",
        "images/s",
        "GFLOP/s",
    )


def row(r):
    return "%-24s %5d %5d %10.3f %9.3f %9.3f %10.1f %9.1f" % (
        r["model"],
        r["batch"],
        r["size"],
        r["latency_ms_median"],
        r["latency_ms_min"],
        r["latency_ms_max"],
        r["images_per_s"],
        r["gflops_per_s"],
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--model",
        action="append",
        required=True,
        help="model name (repeatable), or `all`",
    )
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--size", type=int, default=0, help="default: the model's")
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument(
        "--precision",
        default="f32",
        choices=["f32", "f16"],
        help="f16: model.half() (PyTorch FP16)",
    )
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--tf32", action="store_true", help="allow TF32 convs/matmuls")
    p.add_argument("--no-cudnn-benchmark", action="store_true")
    p.add_argument(
        "--device-resident",
        action="store_true",
        help="input stays on the GPU; time the forward pass alone (CUDA events)",
    )
    p.add_argument(
        "--pin-memory", action="store_true", help="pinned host input (faster copy)"
    )
    p.add_argument(
        "--json", action="store_true", help="one JSON object per line per model"
    )
    args = p.parse_args(argv)
    if args.batch < 1 or args.iters < 1 or args.size < 0 or args.warmup < 0:
        p.error("--batch and --iters must be positive, --size and --warmup >= 0")
    names = []
    for m in args.model:
        names.extend(MODELS if m == "all" else [m])
    for n in names:
        if n not in MODELS:
            p.error("unknown model `%s`; known models: %s" % (n, ", ".join(MODELS)))

    import torch

    if not torch.cuda.is_available():
        sys.exit("error: PyTorch sees no CUDA device")
    torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.backends.cuda.matmul.allow_tf32 = args.tf32

    if not args.json:
        print(
            "%s, torch %s, CUDA %s, %s timing, TF32 %s"
            % (
                torch.cuda.get_device_name(0),
                torch.__version__,
                torch.version.cuda,
                "device-resident" if args.device_resident else "end-to-end",
                "on" if args.tf32 else "off",
            )
        )
        print(header())
    for n in names:
        r = bench_one(n, args)
        if args.json:
            print(json.dumps(r), flush=True)
        else:
            print(row(r), flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Export a torchvision / timm classifier's state_dict to safetensors for resincept.

The file holds `model.state_dict()` exactly, keyed by PyTorch's own names
(`layer1.0.conv1.weight`, `Mixed_5b.branch1x1.bn.running_var`, ...), every
tensor made contiguous, nothing dropped: resincept skips the integer
`num_batches_tracked` entries itself. Floating-point tensors are cast to
`--dtype` (f32, f16 or bf16); resincept converts them back to f32 at load.

Weights come from one of:
  --pretrained       the library's pretrained weights (downloads them; run this
                     on your own machine, with network access)
  --state-dict PATH  a .pth/.pt file holding a state_dict (or a checkpoint
                     dict with a "state_dict" / "model" entry); a fine-tuned
                     head of another width (a 10-class fc) is built as such
  neither            the library's random initialisation (useful for shapes only)

The file's metadata records the model, library, dtype and source; the
evaluation transform of those weights as the library states it
(`preprocess_resize`, `preprocess_crop`, `preprocess_interpolation`,
`preprocess_mean`, `preprocess_std`: torchvision's `weights.transforms()`,
timm's `resolve_data_config`), which `resincept classify` then applies; and for
inception_v3 whether the model was built with `transform_input` (torchvision
builds its pretrained Inception-v3 so: the weights expect inputs normalised
with mean = std = 0.5, and the model maps ImageNet-normalised ones to that);
`resincept run` and `classify` apply the same transform when it says true.

--reference FILE also writes a check file: a random input (N, 3, S, S) at the
model's default size and PyTorch's float64 output for it, computed with the
weights exactly as stored (rounded to --dtype), as tensors `input` and
`output`; then `resincept check --model M --weights W --input FILE --expect
FILE` runs both of resincept's executors on it and compares with PyTorch.

examples:
  python3 scripts/export_weights.py --model resnet50 --pretrained -o resnet50.safetensors
  python3 scripts/export_weights.py --model resnet50 --pretrained -o r50.safetensors --reference r50_check.safetensors
  python3 scripts/export_weights.py --model inception_v3 --state-dict my.pth --dtype f16 -o v3.safetensors

needs: torch, safetensors, and torchvision or timm for the chosen model
"""
import argparse
import sys

# model name -> (library, constructor name)
TORCHVISION = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
               "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2",
               "inception_v3"]
TIMM = ["resnetv2_50", "resnetv2_101", "resnetv2_152", "inception_v4", "inception_resnet_v2"]
MODELS = {name: "torchvision" for name in TORCHVISION}
MODELS.update({name: "timm" for name in TIMM})

DTYPES = ["f32", "f16", "bf16"]


# Each family's classifier, as its state_dict names it (resincept's
# ModelInfo::head): a fine-tuned checkpoint's class count is its first dim.
HEAD_KEYS = ["fc.weight", "last_linear.weight", "classif.weight", "head.fc.weight"]


def classes_in(state_dict):
    """The class count of a checkpoint's classifier, or None without one."""
    for key in HEAD_KEYS:
        if key in state_dict:
            return int(state_dict[key].shape[0])
    return None


def build_model(name, pretrained, num_classes=None):
    """The model `name`, eval mode, with library weights if `pretrained`;
    with a `num_classes`-wide classifier when given (a fine-tuned head)."""
    library = MODELS[name]
    extra = {} if num_classes is None else {"num_classes": num_classes}
    if library == "torchvision":
        import torchvision

        ctor = getattr(torchvision.models, name)
        kwargs = {"weights": "DEFAULT" if pretrained else None, **extra}
        if name == "inception_v3":
            # torchvision's pretrained inception_v3 requires the training-only
            # auxiliary head (AuxLogits.*); without weights, build the plain
            # classifier, as the golden fixtures do. The aux keys are kept in
            # the file unless --no-aux is given.
            kwargs["aux_logits"] = pretrained
            kwargs["init_weights"] = False
        model = ctor(**kwargs)
    else:
        import timm

        model = timm.create_model(name, pretrained=pretrained, **extra)
    return model.eval()


def preprocess_metadata(name, model):
    """The evaluation transform the library defines for these weights: for
    torchvision, the DEFAULT weights' transforms() (the --pretrained ones, and
    the best guess for a --state-dict); for timm, resolve_data_config."""
    import math

    if MODELS[name] == "torchvision":
        from torchvision.models import get_model_weights

        t = get_model_weights(name).DEFAULT.transforms()
        resize, crop = t.resize_size[0], t.crop_size[0]
        interp, mean, std = t.interpolation.value, t.mean, t.std
    else:
        import timm

        cfg = timm.data.resolve_data_config({}, model=model)
        crop = cfg["input_size"][1]
        resize = math.floor(crop / cfg["crop_pct"])
        interp, mean, std = cfg["interpolation"], cfg["mean"], cfg["std"]
    return {
        "preprocess_resize": str(resize),
        "preprocess_crop": str(crop),
        "preprocess_interpolation": interp,
        "preprocess_mean": ",".join(map(repr, mean)),
        "preprocess_std": ",".join(map(repr, std)),
    }


def load_state_dict_file(path):
    """A state_dict from a .pth/.pt file, unwrapping common checkpoint layouts."""
    import torch

    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict):
        for wrapper in ("state_dict", "model", "model_state_dict"):
            if wrapper in obj and isinstance(obj[wrapper], dict):
                obj = obj[wrapper]
                break
    if not isinstance(obj, dict) or not all(hasattr(v, "dtype") for v in obj.values()):
        sys.exit(f"error: {path} does not hold a state_dict of tensors")
    # checkpoints saved from nn.DataParallel prefix every key with "module."
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="models: " + ", ".join(MODELS),
    )
    ap.add_argument("--model", required=True, choices=sorted(MODELS), metavar="MODEL",
                    help="model name (see below)")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--pretrained", action="store_true", help="download and use the library's pretrained weights")
    src.add_argument("--state-dict", metavar="PATH", help="load weights from a .pth/.pt state_dict")
    ap.add_argument("--dtype", choices=DTYPES, default="f32", help="storage dtype of float tensors (default f32)")
    ap.add_argument("--transform-input", choices=["auto", "true", "false"], default="auto",
                    help="inception_v3: whether the weights expect torchvision's transform_input "
                         "(auto: as the model is built, true for --pretrained)")
    ap.add_argument("--no-aux", action="store_true",
                    help="inception_v3: drop the training-only AuxLogits.* keys from the output")
    ap.add_argument("-o", "--output", required=True, metavar="FILE", help="output .safetensors path")
    ap.add_argument("--reference", metavar="FILE",
                    help="also write a check file: a random input and PyTorch's float64 output "
                         "for it with the stored weights (for `resincept check --expect`)")
    ap.add_argument("--reference-batch", type=int, default=2, metavar="N",
                    help="images in the check file's input (default 2)")
    args = ap.parse_args(argv)

    import torch
    from safetensors.torch import save_file

    dtype = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[args.dtype]

    sd = load_state_dict_file(args.state_dict) if args.state_dict else None
    # A fine-tuned checkpoint (a 10-class fc, say) builds a head of its width.
    model = build_model(args.model, args.pretrained, classes_in(sd) if sd is not None else None)
    if sd is not None:
        # an inception_v3 checkpoint may or may not carry the aux head
        if args.model == "inception_v3" and any(k.startswith("AuxLogits.") for k in sd):
            import torchvision

            model = torchvision.models.inception_v3(
                weights=None, aux_logits=True, init_weights=False, num_classes=classes_in(sd) or 1000
            ).eval()
        # strict: a checkpoint for another model fails here, naming the keys
        model.load_state_dict(sd, strict=True)

    state = model.state_dict()
    if args.no_aux:
        state = {k: v for k, v in state.items() if not k.startswith("AuxLogits.")}
    tensors = {}
    for key, t in state.items():
        t = t.detach().cpu()
        if t.dtype.is_floating_point:
            t = t.to(dtype)
        tensors[key] = t.contiguous()

    source = "pretrained" if args.pretrained else (args.state_dict or "random init")
    metadata = {
        "model": args.model,
        "library": MODELS[args.model],
        "dtype": args.dtype,
        "weights": source,
        "format": "pytorch state_dict",
    }
    metadata.update(preprocess_metadata(args.model, model))
    if args.model == "inception_v3":
        ti = args.transform_input
        if ti == "auto":
            ti = "true" if getattr(model, "transform_input", False) else "false"
        metadata["transform_input"] = ti
    elif args.transform_input != "auto":
        sys.exit(f"error: --transform-input is an inception_v3 option; {args.model} has none")
    save_file(tensors, args.output, metadata=metadata)
    n_params = sum(t.numel() for t in tensors.values() if t.dtype.is_floating_point)
    print(f"{args.output}: {len(tensors)} tensors, {n_params} float values in {args.dtype} ({source})")
    if args.reference:
        write_reference(args, model, tensors, metadata.get("transform_input") == "true")


def write_reference(args, model, tensors, transform_input):
    """The check file: input ~ N(0, 1), seed 0, at the model's default size,
    and the float64 forward pass of the weights as stored (an f16 or bf16
    file's rounding included, as resincept reads it)."""
    import copy

    import torch
    from safetensors.torch import save_file

    ref = copy.deepcopy(model).double().eval()
    state = {k: (v.double() if v.dtype.is_floating_point else v) for k, v in tensors.items()}
    ref.load_state_dict(state, strict=not args.no_aux)
    if args.model == "inception_v3":
        ref.transform_input = transform_input
    size = 299 if args.model.startswith("inception") else 224
    x = torch.randn(args.reference_batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = ref(x.double())
    save_file({"input": x.contiguous(), "output": y.float().contiguous()}, args.reference,
              metadata={"model": args.model, "weights": args.output, "dtype": args.dtype,
                        "computed": "float64 forward pass, stored as float32"})
    print(f"{args.reference}: input {tuple(x.shape)}, output {tuple(y.shape)}, "
          f"max|output| {y.abs().max().item():.4g}")


if __name__ == "__main__":
    main()

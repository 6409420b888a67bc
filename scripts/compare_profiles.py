#!/usr/bin/env python3
"""Sets resincept's per-layer profile beside PyTorch's, from the files
scripts/device_profile.sh writes (`resincept bench --profile --json` and
scripts/profile_pytorch.py --json), matched by module name. Split-K's
reduce dispatch (`name:splitk_reduce`) is added to its conv. Prints the
layers where resincept loses most, then totals by kind.

    python3 scripts/compare_profiles.py MODEL_b32_resincept.json MODEL_b32_pytorch.json [--top 25]
"""

import argparse
import json


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("resincept")
    p.add_argument("pytorch")
    p.add_argument("--top", type=int, default=25)
    a = p.parse_args()
    ours_run = json.load(open(a.resincept))
    theirs_run = json.load(open(a.pytorch))
    ours, kinds = {}, {}
    for e in ours_run["profile"]:
        name = e["name"].split(":")[0]
        ours[name] = ours.get(name, 0.0) + e["ms"]
        kinds.setdefault(name, e["kind"])
    theirs = {e["layer"]: e for e in theirs_run["layers"]}
    rows = []
    for name, ms in ours.items():
        t = theirs.get(name)
        rows.append((ms - (t["ms"] if t else 0.0), name, kinds[name], ms, t))
    rows.sort(key=lambda r: -r[0])
    print(f"{ours_run['model']} batch {ours_run['batch']}: resincept end to end "
          f"{ours_run['latency_ms_median']:.2f} ms, per-dispatch sum "
          f"{sum(ours.values()):.3f} ms; PyTorch per-module sum "
          f"{sum(e['ms'] for e in theirs_run['layers']):.3f} ms "
          f"(convolution, linear and pooling modules; batchnorm and ReLU not timed)")
    print(f"{'layer':<40} {'kind':<16} {'ours ms':>8} {'torch ms':>8} {'ratio':>6}  shape")
    for _, name, kind, ms, t in rows[: a.top]:
        tm = f"{t['ms']:8.4f}" if t else "       -"
        ratio = f"{ms / t['ms']:6.2f}" if t and t["ms"] > 0 else "     -"
        shape = f"{t['input']} -> {t['output']}" if t else ""
        print(f"{name:<40} {kind:<16} {ms:8.4f} {tm} {ratio}  {shape}")
    by = {}
    for _, name, kind, ms, t in rows:
        o = by.setdefault(kind, [0.0, 0.0])
        o[0] += ms
        o[1] += t["ms"] if t else 0.0
    print("by kind (ours / PyTorch ms): " + "; ".join(
        f"{k} {o:.3f} / {t:.3f}" for k, (o, t) in sorted(by.items(), key=lambda kv: -kv[1][0])))


if __name__ == "__main__":
    main()

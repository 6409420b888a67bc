#!/usr/bin/env python3
"""Markdown tables for docs/BENCHMARKS.md from the JSON lines that
`resincept bench --json` and `scripts/bench_pytorch.py --json` print (as
scripts/device_side_by_side.sh collects them).

usage: bench_table.py RESINCEPT.jsonl PYTORCH.jsonl

Prints one table: per (model, batch, size), resincept's median (min-max)
latency and images/s with split-K auto and off, PyTorch's, and the ratio
resincept (split-K auto, the default) / PyTorch of the median times (below
1: resincept is faster).
Rows resincept or PyTorch lack are shown with a dash.

When resincept was also run with split-K targets (`--split-k N`), another
grouped-direct threshold (`--grouped-direct N`) or another 128x64-tile
threshold (`--tall-tile N|off`), a second table gives its
median latency per (model, batch, size) for every setting it was run with,
fastest marked.

Rows with `"precision": "f16"` (resincept bench --precision f16, PyTorch
--precision f16) are kept out of those tables and get their own: per
(model, batch, size), resincept f32 and f16 (split-K auto), f16/f32, PyTorch
f32 and FP16, and resincept f16 / PyTorch FP16.
"""
import json
import sys


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    return rows


def cell(r):
    if r is None:
        return "—", "—"
    return ("%.2f (%.2f–%.2f)" % (r["latency_ms_median"], r["latency_ms_min"], r["latency_ms_max"]),
            "%.0f" % r["images_per_s"])


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    ours_all = load(sys.argv[1])
    torch_all = load(sys.argv[2])
    half = lambda r: r.get("precision") == "f16"
    ours = [r for r in ours_all if not half(r)]
    torch = [r for r in torch_all if not half(r)]
    ours16 = [r for r in ours_all if half(r)]
    torch16 = [r for r in torch_all if half(r)]
    keys = []
    for r in ours + torch:
        k = (r["model"], r["batch"], r["size"])
        if k not in keys:
            keys.append(k)
    print("| model | batch | size | resincept ms (split-K auto) | img/s | resincept ms (split-K off) "
          "| img/s | PyTorch ms | img/s | resincept / PyTorch |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for k in keys:
        def find(rows, split=None):
            for r in rows:
                if ((r["model"], r["batch"], r["size"]) == k
                        and (split is None or (r.get("split_k") == split
                                               and r.get("grouped_direct_max", 16) == 16
                                               and r.get("tall_tile_min_k", 256) == 256))):
                    return r
            return None
        auto, off, pt = find(ours, "auto"), find(ours, "off"), find(torch)
        ratio = "%.2f" % (auto["latency_ms_median"] / pt["latency_ms_median"]) if auto and pt else "—"
        print("| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s |" % (
            k[0], k[1], k[2], *cell(auto), *cell(off), *cell(pt), ratio))
    # Settings beyond the defaults (split-K targets, the grouped-direct
    # threshold): one column per setting, fastest marked.
    def setting(r):
        gd = r.get("grouped_direct_max", 16)
        tall = r.get("tall_tile_min_k", 256)
        return (r.get("split_k", "auto") + ("" if gd == 16 else " / direct<=%d" % gd)
                + ("" if tall == 256 else " / tall tile %s" % ("off" if tall is None else tall)))

    settings = []
    for r in ours:
        if setting(r) not in settings:
            settings.append(setting(r))
    if any(s not in ("auto", "off", "on") for s in settings):
        def order(s):
            sk, _, gd = s.partition(" / ")  # gd: the other settings, as text
            rank = (0, 0) if sk == "off" else (1, 0) if sk in ("auto", "on") else (2, int(sk))
            return rank + (gd,)
        settings.sort(key=order)
        print()
        print("| model | batch | size | " + " | ".join("split-K %s ms" % s for s in settings) + " |")
        print("| --- | --- | --- | " + " | ".join("---" for _ in settings) + " |")
        for k in keys:
            times = {}
            for r in ours:
                if (r["model"], r["batch"], r["size"]) == k:
                    times[setting(r)] = r["latency_ms_median"]
            if len(times) < 2:
                continue
            best = min(times.values())
            cells = []
            for s in settings:
                t = times.get(s)
                cells.append("—" if t is None else ("**%.2f**" if t == best else "%.2f") % t)
            print("| %s | %d | %d | %s |" % (k[0], k[1], k[2], " | ".join(cells)))
    if ours16 or torch16:
        print()
        print("| model | batch | size | resincept f32 ms | resincept f16 ms | f16 / f32 "
              "| PyTorch f32 ms | PyTorch FP16 ms | resincept f16 / PyTorch FP16 |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        keys16 = []
        for r in ours16 + torch16:
            k = (r["model"], r["batch"], r["size"])
            if k not in keys16:
                keys16.append(k)

        def first(rows, k, split=None):
            for r in rows:
                if (r["model"], r["batch"], r["size"]) == k and (
                        split is None or (r.get("split_k", "auto") == split
                                          and r.get("grouped_direct_max", 16) == 16
                                          and r.get("tall_tile_min_k", 256) == 256)):
                    return r
            return None

        def ms(r):
            return "—" if r is None else "%.2f" % r["latency_ms_median"]

        def ratio(a, b):
            return "—" if a is None or b is None else "%.2f" % (
                a["latency_ms_median"] / b["latency_ms_median"])

        for k in keys16:
            o32, o16 = first(ours, k, "auto"), first(ours16, k, "auto")
            p32, p16 = first(torch, k), first(torch16, k)
            print("| %s | %d | %d | %s | %s | %s | %s | %s | %s |" % (
                k[0], k[1], k[2], ms(o32), ms(o16), ratio(o16, o32), ms(p32), ms(p16),
                ratio(o16, p16)))
    devices = sorted({r.get("adapter", "?") + " / " + r.get("backend", "?")
                      for r in ours_all + torch_all})
    print()
    for d in devices:
        print("- " + d)


if __name__ == "__main__":
    main()

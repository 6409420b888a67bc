#!/usr/bin/env python3
"""Writes kernels-tests/fixtures/jpeg/: JPEG files and, for each, the RGB that
PIL's ``Image.open(f).convert("RGB")`` gives (``x.jpg`` -> ``x.png``).

The JPEGs come from two encoders:

* Pillow's own (libjpeg-turbo): qualities, 4:4:4 / 4:2:2 / 4:2:0,
  progressive, optimized Huffman tables, grey, restart markers, Adobe RGB
  (``keep_rgb``), CMYK (Adobe transform 0), odd sizes.
* A small baseline encoder in this file, for what Pillow cannot write:
  4:4:0, 4:1:1 and other sampling factors, several sequential scans, files
  without DHT (libjpeg's default tables), RGB told by component ids, YCCK
  (Adobe transform 2) and CMYK without an Adobe marker, with any sampling.

Some files are derived from Pillow output by dropping scans (a progressive
file that stops refining early, which libjpeg block-smooths), dropping the
Adobe marker of a CMYK file, or switching a CMYK file's Adobe transform to
2 after saving YCCK planes as CMYK (``pillow_ycck``).

Everything is seeded, so a rerun writes the same bytes (given the same Pillow
and libjpeg-turbo). Run from the repository root:

    python3 scripts/make_jpeg_fixtures.py   # needs Pillow 13 and numpy

``--extra N --out DIR --seed S`` instead writes N random JPEGs with the
expected RGB as raw ``.rgb`` files (for wider checks; not committed); with
``--cmyk`` they are 4-component (CMYK and YCCK, with and without an Adobe
marker).
"""

import argparse
import io
import os
import sys

import numpy as np
from PIL import Image, features

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "kernels-tests", "fixtures", "jpeg")

# ---------------------------------------------------------------------------
# Content: smooth gradients + edges + a little noise
# ---------------------------------------------------------------------------


def content(w, h, rng, noise=6.0):
    """An RGB uint8 array (h, w, 3) that looks like a photo's worth of
    structure: waves, a disc, a rectangle, a diagonal edge and noise."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = []
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    r = rng.uniform(2, max(3.0, max(w, h) / 2))
    x0, y0 = rng.uniform(-w / 4, w), rng.uniform(-h / 4, h)
    for _ in range(3):
        a = rng.uniform(0, 2 * np.pi)
        f = rng.uniform(0.02, 0.15)
        g = 128 + 80 * np.sin(f * (x * np.cos(a) + y * np.sin(a)) + rng.uniform(0, 6))
        g += 40 * (x / max(w, 1) - 0.5)
        g = np.where((x - cx) ** 2 + (y - cy) ** 2 < r * r, 255 - 0.6 * g, g)
        inside = (x > x0) & (y > y0) & (x < x0 + w / 3) & (y < y0 + h / 3)
        g = np.where(inside, rng.uniform(0, 255), g)
        g = np.where(x + 2 * y > (w + 2 * h) * 0.7, g * 0.5, g)
        g = g + rng.normal(0, noise, size=g.shape)
        chans.append(np.clip(np.rint(g), 0, 255).astype(np.uint8))
    return np.stack(chans, -1)


def cmyk_content(w, h, rng, noise=6.0):
    """Ink amounts (h, w, 4) uint8, C M Y K, as PIL's "CMYK" mode holds them
    (0 = no ink): the RGB content with 60 % grey component replacement."""
    rgb = content(w, h, rng, noise).astype(np.float64)
    cmy = 255.0 - rgb
    k = 0.6 * cmy.min(axis=-1)
    inks = [np.clip(np.rint((cmy[..., i] - k) * 255.0 / np.maximum(255.0 - k, 1.0)), 0, 255) for i in range(3)]
    return np.stack(inks + [np.rint(k)], -1).astype(np.uint8)


def ycck_planes(ink):
    """The four planes a YCCK JPEG stores for PIL ink amounts: what libjpeg's
    encoder (jccolor.c cmyk_ycck_convert) makes of the Adobe-inverted CMYK
    255 - ink: Y, Cb, Cr of the RGB 255 - (255 - ink), and K = 255 - ink."""
    return rgb_to_ycc(ink[..., :3]) + [255 - ink[..., 3]]


# ---------------------------------------------------------------------------
# A small baseline encoder (any sampling factors, several scans, restarts)
# ---------------------------------------------------------------------------

ZIGZAG = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48,
    41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22,
    15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55,
    62, 63,
]

# JPEG Annex K tables (quantization in natural order).
Q_LUMA = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
]
Q_CHROMA = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
] + [99] * 32


def _ac_values(first, ranges):
    vals = list(first)
    for hi, lo_from, lo_to in ranges:
        vals += [hi << 4 | lo for lo in range(lo_from, lo_to + 1)]
    return vals


DC_LUMA = ([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0], list(range(12)))
DC_CHROMA = ([0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0], list(range(12)))
AC_LUMA = (
    [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D],
    _ac_values(
        [0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06,
         0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08,
         0x23, 0x42, 0xB1, 0xC1, 0x15, 0x52, 0xD1, 0xF0, 0x24, 0x33, 0x62, 0x72,
         0x82, 0x09, 0x0A, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x25, 0x26, 0x27, 0x28,
         0x29, 0x2A, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A],
        [(h, 3, 10) for h in range(4, 9)] + [(h, 2, 10) for h in range(9, 14)]
        + [(14, 1, 10), (15, 1, 10)],
    ),
)
AC_CHROMA = (
    [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77],
    _ac_values(
        [0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41,
         0x51, 0x07, 0x61, 0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91,
         0xA1, 0xB1, 0xC1, 0x09, 0x23, 0x33, 0x52, 0xF0, 0x15, 0x62, 0x72, 0xD1,
         0x0A, 0x16, 0x24, 0x34, 0xE1, 0x25, 0xF1, 0x17, 0x18, 0x19, 0x1A, 0x26,
         0x27, 0x28, 0x29, 0x2A],
        [(3, 5, 10)] + [(h, 3, 10) for h in range(4, 8)]
        + [(h, 2, 10) for h in range(8, 14)] + [(14, 2, 10), (15, 2, 10)],
    ),
)
assert len(AC_LUMA[1]) == 162 and len(AC_CHROMA[1]) == 162


def _codes(table):
    bits, vals = table
    codes, code, k = {}, 0, 0
    for length in range(1, 17):
        for _ in range(bits[length - 1]):
            codes[vals[k]] = (code, length)
            code += 1
            k += 1
        code <<= 1
    return codes


class _Bits:
    def __init__(self):
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, value, n):
        self.acc = (self.acc << n) | (value & ((1 << n) - 1))
        self.n += n
        while self.n >= 8:
            b = (self.acc >> (self.n - 8)) & 0xFF
            self.out.append(b)
            if b == 0xFF:
                self.out.append(0)
            self.n -= 8
        self.acc &= (1 << self.n) - 1

    def flush(self):
        if self.n:
            self.put((1 << (8 - self.n)) - 1, 8 - self.n)


def _category(v):
    return 0 if v == 0 else int(abs(v)).bit_length()


def _put_value(bw, v, s):
    if s:
        bw.put(v if v >= 0 else v + (1 << s) - 1, s)


def _dct_matrix():
    c = np.zeros((8, 8))
    for u in range(8):
        for x in range(8):
            c[u, x] = (np.sqrt(0.5) if u == 0 else 1.0) * np.cos((2 * x + 1) * u * np.pi / 16) / 2
    return c


_C = _dct_matrix()


def plane_coefs(plane, qtable, bw_pad, bh_pad):
    """Quantized DCT coefficients (bh_pad, bw_pad, 64), natural order, of a
    uint8 plane padded by edge replication to the block grid."""
    h, w = plane.shape
    p = np.pad(plane.astype(np.float64), ((0, bh_pad * 8 - h), (0, bw_pad * 8 - w)), mode="edge")
    blocks = p.reshape(bh_pad, 8, bw_pad, 8).transpose(0, 2, 1, 3) - 128.0
    f = np.einsum("ux,abxy,vy->abuv", _C, blocks, _C)
    q = np.asarray(qtable, np.float64).reshape(8, 8)
    return np.rint(f / q).astype(np.int64).reshape(bh_pad, bw_pad, 64)


def _ceil_div(a, b):
    return -(-a // b)


def _segment(marker, payload):
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


def encode_baseline(width, height, comps, coefs, qtables, scans=None, restart=0,
                    jfif=True, adobe=None, dht=True, sof=0xC0, precision=8, dqt16=False):
    """Writes a sequential Huffman JPEG from quantized coefficients.

    comps: list of (id, h, v, tq); coefs[i]: (bh_pad, bw_pad, 64) int array
    for component i; qtables: {tq: 64 natural-order values}; scans: lists of
    component indices (default: one interleaved scan); restart: MCUs per
    restart interval; adobe: APP14 transform byte or None; dht=False leaves
    the Huffman tables out (decoders then use the Annex K defaults); dqt16
    writes the quantization tables with 16-bit entries."""
    out = bytearray(b"\xff\xd8")
    if jfif:
        out += _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    if adobe is not None:
        out += _segment(0xEE, b"Adobe\x00\x64\x00\x00\x00\x00" + bytes([adobe]))
    for tq, table in sorted(qtables.items()):
        if dqt16:
            out += _segment(0xDB, bytes([0x10 | tq]) + b"".join(table[z].to_bytes(2, "big") for z in ZIGZAG))
        else:
            out += _segment(0xDB, bytes([tq]) + bytes(table[z] for z in ZIGZAG))
    sofp = bytes([precision]) + height.to_bytes(2, "big") + width.to_bytes(2, "big")
    sofp += bytes([len(comps)])
    for cid, h, v, tq in comps:
        sofp += bytes([cid, h << 4 | v, tq])
    out += _segment(sof, sofp)
    if dht:
        for cls, slot, table in [(0, 0, DC_LUMA), (1, 0, AC_LUMA), (0, 1, DC_CHROMA), (1, 1, AC_CHROMA)]:
            out += _segment(0xC4, bytes([cls << 4 | slot] + table[0] + table[1]))
    if restart:
        out += _segment(0xDD, restart.to_bytes(2, "big"))
    max_h = max(c[1] for c in comps)
    max_v = max(c[2] for c in comps)
    tables = [(_codes(DC_LUMA), _codes(AC_LUMA)), (_codes(DC_CHROMA), _codes(AC_CHROMA))]
    for scan in scans or [list(range(len(comps)))]:
        slot = [0 if i == 0 else 1 for i in range(len(comps))]
        sos = bytes([len(scan)])
        for i in scan:
            sos += bytes([comps[i][0], slot[i] << 4 | slot[i]])
        out += _segment(0xDA, sos + b"\x00\x3f\x00")
        if len(scan) == 1:
            _, h, v, _ = comps[scan[0]]
            bw = _ceil_div(_ceil_div(width * h, max_h), 8)
            bh = _ceil_div(_ceil_div(height * v, max_v), 8)
            mcus = [(bx, by) for by in range(bh) for bx in range(bw)]
            layout = lambda mx, my: [(scan[0], mx, my)]
        else:
            mcux, mcuy = _ceil_div(width, 8 * max_h), _ceil_div(height, 8 * max_v)
            mcus = [(mx, my) for my in range(mcuy) for mx in range(mcux)]
            layout = lambda mx, my: [(i, mx * comps[i][1] + x, my * comps[i][2] + y)
                                     for i in scan for y in range(comps[i][2])
                                     for x in range(comps[i][1])]
        bw = _Bits()
        pred = [0] * len(comps)
        for n, (mx, my) in enumerate(mcus):
            if restart and n and n % restart == 0:
                bw.flush()
                bw.out += bytes([0xFF, 0xD0 + (n // restart - 1) % 8])
                pred = [0] * len(comps)
            for i, bx, by in layout(mx, my):
                blk = coefs[i][by, bx]
                dc_codes, ac_codes = tables[slot[i]]
                diff = int(blk[0]) - pred[i]
                pred[i] = int(blk[0])
                s = _category(diff)
                bw.put(*dc_codes[s])
                _put_value(bw, diff, s)
                run = 0
                for k in range(1, 64):
                    v = int(blk[ZIGZAG[k]])
                    if v == 0:
                        run += 1
                        continue
                    while run > 15:
                        bw.put(*ac_codes[0xF0])
                        run -= 16
                    s = _category(v)
                    bw.put(*ac_codes[run << 4 | s])
                    _put_value(bw, v, s)
                    run = 0
                if run:
                    bw.put(*ac_codes[0x00])
        bw.flush()
        out += bw.out
    out += b"\xff\xd9"
    return bytes(out)


def rgb_to_ycc(rgb):
    r, g, b = [rgb[..., i].astype(np.float64) for i in range(3)]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
    return [np.clip(np.rint(c), 0, 255).astype(np.uint8) for c in (y, cb, cr)]


def downsample(plane, fx, fy, dw, dh):
    h, w = plane.shape
    p = np.pad(plane.astype(np.float64), ((0, dh * fy - h), (0, dw * fx - w)), mode="edge")
    return np.clip(np.rint(p.reshape(dh, fy, dw, fx).mean(axis=(1, 3))), 0, 255).astype(np.uint8)


def encode_planes(width, height, planes, sampling, ids=None, quality_scale=1.0, **kw):
    """Encodes full-size planes (YCbCr, RGB or grey) with the given sampling
    factors [(h, v), ...], box-filtering each plane down to its size."""
    n = len(planes)
    ids = ids or list(range(1, n + 1))
    max_h = max(s[0] for s in sampling)
    max_v = max(s[1] for s in sampling)
    mcux, mcuy = _ceil_div(width, 8 * max_h), _ceil_div(height, 8 * max_v)
    qt = {0: [max(1, min(255, int(q * quality_scale))) for q in Q_LUMA],
          1: [max(1, min(255, int(q * quality_scale))) for q in Q_CHROMA]}
    comps, coefs = [], []
    for i, (plane, (h, v)) in enumerate(zip(planes, sampling)):
        dw, dh = _ceil_div(width * h, max_h), _ceil_div(height * v, max_v)
        small = downsample(plane, max_h // h, max_v // v, dw, dh)
        tq = 0 if i == 0 else 1
        comps.append((ids[i], h, v, tq))
        coefs.append(plane_coefs(small, qt[tq], mcux * h, mcuy * v))
    return encode_baseline(width, height, comps, coefs, qt if n > 1 else {0: qt[0]}, **kw)


# ---------------------------------------------------------------------------
# Surgery on Pillow's files
# ---------------------------------------------------------------------------


def segments(data):
    """(marker, start, end) of each marker segment / scan, in order."""
    out, pos = [], 2
    while pos < len(data):
        assert data[pos] == 0xFF, pos
        m = data[pos + 1]
        if m == 0xD9:
            out.append((m, pos, pos + 2))
            break
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        end = pos + 2 + length
        if m == 0xDA:  # entropy-coded data up to the next non-RST marker
            while not (data[end] == 0xFF and data[end + 1] not in (0x00, *range(0xD0, 0xD8))):
                end += 1
        out.append((m, pos, end))
        pos = end
    return out


def drop_scans(data, keep):
    """Keeps only the scans whose index (0-based) is in keep."""
    out, n = bytearray(data[:2]), 0
    for m, a, b in segments(data):
        if m == 0xDA:
            if n in keep:
                out += data[a:b]
            n += 1
        else:
            out += data[a:b]
    return bytes(out)


def drop_markers(data, marker):
    return bytes(data[:2]) + b"".join(data[a:b] for m, a, b in segments(data) if m != marker)


def set_adobe_transform(data, transform):
    """Rewrites the transform byte of the Adobe APP14 segment."""
    (a,) = [a for m, a, _ in segments(data) if m == 0xEE and data[a + 4:a + 9] == b"Adobe"]
    return data[:a + 15] + bytes([transform]) + data[a + 16:]


def pillow_ycck(ink, transform=2, **kw):
    """A YCCK JPEG from Pillow's encoder, which only writes CMYK: the YCCK
    planes go in as CMYK (Pillow inverts on saving, so it is handed
    255 - plane) and the Adobe transform byte is switched from 0 to 2."""
    planes = np.stack([255 - p for p in ycck_planes(ink)], -1)
    return set_adobe_transform(pillow_jpeg(planes, **kw), transform)


# ---------------------------------------------------------------------------
# The fixture set
# ---------------------------------------------------------------------------


def pillow_jpeg(arr, **kw):
    mode = "L" if arr.ndim == 2 else "CMYK" if arr.shape[2] == 4 else "RGB"
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, "JPEG", **kw)
    return buf.getvalue()


def fixtures():
    """(name, jpeg bytes, what it covers) for every committed fixture."""
    rng = np.random.default_rng(20240613)
    out = []

    def add(name, data, what):
        out.append((name, data, what))

    def rgb(w, h, noise=6.0):
        return content(w, h, rng, noise)

    def grey(w, h):
        return np.asarray(Image.fromarray(rgb(w, h), "RGB").convert("L"))

    # Pillow: quality x subsampling.
    for q in (50, 75, 95):
        add(f"q{q}_444_64x48", pillow_jpeg(rgb(64, 48), quality=q, subsampling=0),
            f"Pillow quality {q}, 4:4:4")
    add("q75_422_64x48", pillow_jpeg(rgb(64, 48), quality=75, subsampling=1), "Pillow 4:2:2 (h2v1 fancy upsampling)")
    add("q75_420_64x48", pillow_jpeg(rgb(64, 48), quality=75, subsampling=2), "Pillow 4:2:0 (h2v2 fancy upsampling)")
    add("q50_420_40x40", pillow_jpeg(rgb(40, 40), quality=50, subsampling=2), "Pillow quality 50, 4:2:0")
    add("q95_422_40x40", pillow_jpeg(rgb(40, 40), quality=95, subsampling=1), "Pillow quality 95, 4:2:2")
    # Progressive and optimized Huffman tables.
    add("prog_q75_420_97x73", pillow_jpeg(rgb(97, 73), quality=75, subsampling=2, progressive=True),
        "Pillow progressive (spectral selection + successive approximation, EOB runs), 4:2:0, odd size")
    add("prog_q95_444_48x40", pillow_jpeg(rgb(48, 40), quality=95, subsampling=0, progressive=True),
        "Pillow progressive 4:4:4 at quality 95")
    add("prog_q75_422_33x31", pillow_jpeg(rgb(33, 31), quality=75, subsampling=1, progressive=True),
        "Pillow progressive 4:2:2, odd size")
    add("opt_q75_420_64x48", pillow_jpeg(rgb(64, 48), quality=75, subsampling=2, optimize=True),
        "Pillow optimize=True (custom Huffman tables)")
    add("prog_opt_q60_420_50x30", pillow_jpeg(rgb(50, 30), quality=60, subsampling=2, progressive=True, optimize=True),
        "Pillow progressive + optimize")
    # Grey.
    add("grey_q75_64x48", pillow_jpeg(grey(64, 48), quality=75), "Pillow grey (L), replicated to RGB")
    add("grey_q90_97x73", pillow_jpeg(grey(97, 73), quality=90), "Pillow grey, odd size")
    add("grey_prog_q75_45x37", pillow_jpeg(grey(45, 37), quality=75, progressive=True), "Pillow grey progressive")
    # Odd sizes.
    add("size_1x1_444", pillow_jpeg(rgb(1, 1), quality=75, subsampling=0), "1x1 4:4:4")
    add("size_1x1_420", pillow_jpeg(rgb(1, 1), quality=75, subsampling=2), "1x1 4:2:0 (chroma 1 wide: box upsampling)")
    add("size_7x9_420", pillow_jpeg(rgb(7, 9), quality=75, subsampling=2), "7x9 4:2:0, partial MCU")
    add("size_7x9_422", pillow_jpeg(rgb(7, 9), quality=75, subsampling=1), "7x9 4:2:2")
    add("size_4x5_420", pillow_jpeg(rgb(4, 5), quality=75, subsampling=2), "4x5 4:2:0 (chroma 2 wide: libjpeg box upsampling)")
    add("size_17x300_420", pillow_jpeg(rgb(17, 300), quality=75, subsampling=2), "17x300 4:2:0, tall")
    add("size_300x17_422", pillow_jpeg(rgb(300, 17), quality=75, subsampling=1), "300x17 4:2:2, wide")
    add("size_97x73_420", pillow_jpeg(rgb(97, 73), quality=80, subsampling=2), "97x73 4:2:0")
    add("size_127x129_420", pillow_jpeg(rgb(127, 129, noise=3.0), quality=75, subsampling=2), "127x129 4:2:0")
    add("size_127x129_prog_444", pillow_jpeg(rgb(127, 129, noise=3.0), quality=70, subsampling=0, progressive=True),
        "127x129 progressive 4:4:4")
    # Restart markers.
    add("restart_blocks3_420_64x48", pillow_jpeg(rgb(64, 48), quality=75, subsampling=2, restart_marker_blocks=3),
        "Pillow restart_marker_blocks=3 (DRI + RSTn every 3 MCUs)")
    add("restart_rows1_prog_420_61x43",
        pillow_jpeg(rgb(61, 43), quality=75, subsampling=2, progressive=True, restart_marker_rows=1),
        "Pillow progressive with restart_marker_rows=1 (DRI changes between scans; restarts reset EOB runs)")
    # APPn / COM segments to skip, one holding a whole JPEG (an EXIF
    # thumbnail's SOI ... EOI must not be taken for the image's markers).
    thumb = pillow_jpeg(rgb(8, 8), quality=50)
    add("exif_thumb_com_32x24",
        pillow_jpeg(rgb(32, 24), quality=75, exif=b"Exif\x00\x00" + thumb, comment="resincept fixture"),
        "Pillow with an APP1 (EXIF) segment holding a JPEG thumbnail, and a COM segment")
    # Adobe RGB (no colour transform).
    add("adobe_rgb_q90_48x40", pillow_jpeg(rgb(48, 40), quality=90, subsampling=0, keep_rgb=True),
        "Pillow keep_rgb=True: Adobe APP14 transform 0, RGB stored directly")

    # Own baseline encoder: sampling factors Pillow cannot write.
    def ycc(w, h):
        return rgb_to_ycc(rgb(w, h))

    for name, samp, (w, h), what in [
        ("enc_440_45x37", [(1, 2), (1, 1), (1, 1)], (45, 37), "4:4:0 (Y 1x2): h1v2 fancy upsampling"),
        ("enc_411_61x21", [(4, 1), (1, 1), (1, 1)], (61, 21), "4:1:1 (Y 4x1): int_upsample x4"),
        ("enc_y2x2_cb1x2_cr1x1_37x29", [(2, 2), (1, 2), (1, 1)], (37, 29),
         "Y 2x2, Cb 1x2 (h2v1 fancy), Cr 1x1 (h2v2 fancy)"),
        ("enc_y1x1_cb2x2_cr1x1_30x22", [(1, 1), (2, 2), (1, 1)], (30, 22),
         "luma subsampled below a chroma plane: Y and Cr h2v2 fancy"),
        ("enc_y4x2_c1x1_50x35", [(4, 2), (1, 1), (1, 1)], (50, 35), "Y 4x2, chroma 1x1: int_upsample 4x2"),
        ("enc_y3x1_c1x1_40x20", [(3, 1), (1, 1), (1, 1)], (40, 20), "Y 3x1: int_upsample x3"),
        ("enc_y2x1_cb2x1_cr1x1_33x17", [(2, 1), (2, 1), (1, 1)], (33, 17), "Cb full size, Cr h2v1"),
        ("enc_420_3x7", [(2, 2), (1, 1), (1, 1)], (3, 7), "4:2:0, 3 wide (chroma 2 wide: box)"),
        ("enc_440_5x3", [(1, 2), (1, 1), (1, 1)], (5, 3), "4:4:0, tiny"),
    ]:
        add(name, encode_planes(w, h, ycc(w, h), samp), f"own encoder: {what}")
    w, h = 40, 32
    add("enc_multiscan_420_40x32", encode_planes(w, h, ycc(w, h), [(2, 2), (1, 1), (1, 1)], scans=[[0], [1], [2]]),
        "own encoder: sequential, one scan per component (non-interleaved, MCU = 1 block)")
    add("enc_multiscan_422_restart_40x32",
        encode_planes(w, h, ycc(w, h), [(2, 1), (1, 1), (1, 1)], scans=[[0], [1, 2]], restart=5),
        "own encoder: luma scan, then an interleaved chroma scan, restart every 5 MCUs")
    add("enc_nodht_420_40x32", encode_planes(w, h, ycc(w, h), [(2, 2), (1, 1), (1, 1)], dht=False),
        "own encoder: no DHT segment (libjpeg-turbo's default Annex K tables)")
    arr = rgb(w, h)
    add("enc_rgb_ids_444_40x32",
        encode_planes(w, h, [arr[..., i] for i in range(3)], [(1, 1)] * 3, ids=[82, 71, 66], jfif=False),
        "own encoder: no JFIF/Adobe, component ids 'R','G','B' (RGB, no conversion)")
    add("enc_adobe_ycc_420_40x32",
        encode_planes(w, h, ycc(w, h), [(2, 2), (1, 1), (1, 1)], jfif=False, adobe=1),
        "own encoder: Adobe APP14 transform 1 (YCbCr)")
    add("enc_jfif_and_adobe0_444_40x32",
        encode_planes(w, h, ycc(w, h), [(1, 1)] * 3, adobe=0),
        "own encoder: JFIF and Adobe transform 0 (JFIF wins: YCbCr)")
    add("enc_dqt16_420_24x16", encode_planes(24, 16, ycc(24, 16), [(2, 2), (1, 1), (1, 1)], dqt16=True),
        "own encoder: 16-bit quantization tables (DQT Pq=1)")
    add("enc_grey_2x2_23x19", encode_planes(23, 19, [grey(23, 19)], [(2, 2)]),
        "own encoder: grey with sampling factors 2x2 (MCU still 1 block)")

    # Progressive that stops early: libjpeg's block smoothing.
    base = pillow_jpeg(rgb(64, 56, noise=2.0), quality=75, subsampling=2, progressive=True)
    n_scans = sum(1 for m, _, _ in segments(base) if m == 0xDA)
    add("prog_dc_only_64x56", drop_scans(base, {0}),
        "Pillow progressive cut to its first (DC) scan: block smoothing incl. DC interpolation")
    add("prog_partial_64x56", drop_scans(base, set(range(n_scans - 4))),
        "Pillow progressive without its last 4 scans: block smoothing of unrefined AC")

    # Four components (added after the others so that their random content
    # stays the same). PIL reads every 4-component JPEG as inverted CMYK
    # ("CMYK;I") and converts with cmyk2rgb; libjpeg converts YCCK to CMYK.
    def ink(w, h):
        return cmyk_content(w, h, rng)

    add("cmyk_q90_48x40", pillow_jpeg(ink(48, 40), quality=90),
        "Pillow CMYK: Adobe APP14 transform 0, inverted CMYK, all 1x1")
    add("cmyk_prog_c2x2_45x37", pillow_jpeg(ink(45, 37), quality=75, subsampling=2, progressive=True),
        "Pillow CMYK progressive, subsampling=2 (C 2x2; M, Y, K 1x1: h2v2 fancy), odd size")
    add("cmyk_noadobe_q75_40x32", drop_markers(pillow_jpeg(ink(40, 32), quality=75), 0xEE),
        "Pillow CMYK without its Adobe marker: libjpeg assumes CMYK, PIL still inverts")
    add("ycck_q85_40x32", pillow_ycck(ink(40, 32), quality=85),
        "YCCK (Adobe transform 2) from Pillow's encoder: ycck_cmyk_convert")
    data = pillow_ycck(ink(33, 31), quality=75, subsampling=1, progressive=True, optimize=True)
    n_scans = sum(1 for m, _, _ in segments(data) if m == 0xDA)
    add("ycck_prog_partial_y2x1_33x31", drop_scans(data, set(range(n_scans - 3))),
        "YCCK progressive + optimize, Y 2x1 (Cb, Cr, K h2v1 fancy), last 3 scans dropped: block smoothing")
    add("enc_ycck_y2x2_k2x2_37x29",
        encode_planes(37, 29, ycck_planes(ink(37, 29)), [(2, 2), (1, 1), (1, 1), (2, 2)], jfif=False, adobe=2),
        "own encoder: YCCK, Y and K 2x2, Cb and Cr 1x1 (h2v2 fancy; 10 blocks per MCU, libjpeg's limit)")
    add("enc_ycck_adobe1_restart_40x32",
        encode_planes(40, 32, ycck_planes(ink(40, 32)), [(2, 1), (1, 1), (1, 1), (1, 1)], jfif=False, adobe=1,
                      restart=3),
        "own encoder: 4 components with Adobe transform 1 (libjpeg warns, assumes YCCK), restart every 3 MCUs")
    arr = ink(40, 32)
    add("enc_cmyk_jfif_multiscan_40x32",
        encode_planes(40, 32, [255 - arr[..., i] for i in range(4)], [(2, 1), (2, 1), (2, 1), (1, 1)],
                      scans=[[0], [1, 2], [3]]),
        "own encoder: CMYK with JFIF and no Adobe marker (CMYK), K 1x1 (h2v1 fancy), three scans")
    return out


def write_fixtures(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for f in os.listdir(out_dir):
        if f.endswith((".jpg", ".png")):
            os.remove(os.path.join(out_dir, f))
    rows = []
    for name, data, what in fixtures():
        path = os.path.join(out_dir, name + ".jpg")
        with open(path, "wb") as f:
            f.write(data)
        with Image.open(path) as im:
            im.convert("RGB").save(os.path.join(out_dir, name + ".png"), optimize=True)
            size = f"{im.width}x{im.height}"
        rows.append((name, size, what))
    total = sum(os.path.getsize(os.path.join(out_dir, f)) for f in os.listdir(out_dir))
    print(f"{len(rows)} fixtures, {total} bytes in {out_dir}")
    return rows


def extra(out_dir, n, seed):
    """n random JPEGs (Pillow and own encoder) with PIL's RGB as raw .rgb."""
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    sizes = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 23, 31, 32, 33, 47, 64, 97, 127, 129, 200]
    samplings = [[(1, 2), (1, 1), (1, 1)], [(4, 1), (1, 1), (1, 1)], [(2, 2), (1, 2), (1, 1)],
                 [(1, 1), (2, 2), (1, 1)], [(4, 2), (1, 1), (1, 1)], [(2, 2), (1, 1), (1, 1)],
                 [(2, 1), (1, 1), (1, 1)], [(1, 4), (1, 1), (1, 1)], [(2, 3), (1, 1), (1, 1)], [(1, 4), (1, 2), (1, 1)]]
    for i in range(n):
        w = int(rng.choice(sizes)) if rng.random() < 0.7 else int(rng.integers(1, 300))
        h = int(rng.choice(sizes)) if rng.random() < 0.7 else int(rng.integers(1, 300))
        arr = content(w, h, rng, noise=float(rng.uniform(0, 20)))
        if rng.random() < 0.3:
            samp = samplings[int(rng.integers(len(samplings)))]
            restart = int(rng.integers(1, 8)) if rng.random() < 0.3 else 0
            data = encode_planes(w, h, rgb_to_ycc(arr), samp, quality_scale=float(rng.uniform(0.2, 2)),
                                 restart=restart)
            tag = "enc_" + "_".join(f"{a}{b}" for a, b in samp) + f"_ri{restart}"
        else:
            kw = dict(quality=int(rng.choice([10, 30, 50, 75, 90, 95, 100])))
            if rng.random() < 0.15:
                arr = np.asarray(Image.fromarray(arr).convert("L"))
            else:
                kw["subsampling"] = int(rng.choice([0, 1, 2]))
            kw["progressive"] = bool(rng.random() < 0.4)
            kw["optimize"] = bool(rng.random() < 0.3)
            if rng.random() < 0.15:
                kw["restart_marker_blocks"] = int(rng.integers(1, 20))
            try:
                data = pillow_jpeg(arr, **kw)
            except OSError:
                continue
            if kw["progressive"] and rng.random() < 0.2:
                n_scans = sum(1 for m, _, _ in segments(data) if m == 0xDA)
                keep = int(rng.integers(1, n_scans + 1))
                data = drop_scans(data, set(range(keep)))
                kw["keep"] = keep
            tag = "pil_" + "_".join(f"{k}{v}" for k, v in kw.items())
        write_extra(out_dir, f"x{seed}_{i:04d}_{w}x{h}_{tag}", data)


def write_extra(out_dir, name, data):
    """Writes name.jpg and PIL's RGB of it as name.rgb."""
    path = os.path.join(out_dir, name + ".jpg")
    with open(path, "wb") as f:
        f.write(data)
    try:
        with Image.open(path) as im:
            raw = im.convert("RGB").tobytes()
        with open(path[:-4] + ".rgb", "wb") as f:
            f.write(raw)
    except Exception as e:  # noqa: BLE001 - PIL refusing is data too
        print("PIL fails on", path, e)


def extra_cmyk(out_dir, n, seed):
    """n random 4-component JPEGs (CMYK and YCCK; Pillow's encoder, edited,
    and the own encoder) with PIL's RGB as raw .rgb."""
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    sizes = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 23, 31, 32, 33, 47, 64, 97, 127, 129, 200]
    samplings = [[(1, 1)] * 4, [(2, 2), (1, 1), (1, 1), (2, 2)], [(2, 1), (1, 1), (1, 1), (2, 1)],
                 [(2, 2), (1, 1), (1, 1), (1, 1)], [(1, 2), (1, 1), (1, 1), (1, 2)],
                 [(2, 2), (1, 2), (2, 1), (1, 1)], [(4, 1), (1, 1), (1, 1), (2, 1)],
                 [(1, 1), (2, 2), (1, 1), (1, 1)], [(3, 1), (1, 1), (1, 1), (3, 1)],
                 [(2, 2), (2, 2), (1, 1), (1, 1)]]
    for i in range(n):
        w = int(rng.choice(sizes)) if rng.random() < 0.7 else int(rng.integers(1, 300))
        h = int(rng.choice(sizes)) if rng.random() < 0.7 else int(rng.integers(1, 300))
        ink = cmyk_content(w, h, rng, noise=float(rng.uniform(0, 20)))
        ycck = bool(rng.random() < 0.5)
        # Adobe transform: 0 (CMYK), 2 (YCCK), another value (libjpeg
        # warns and assumes YCCK) or no Adobe marker at all (CMYK).
        if ycck:
            transform = 2 if rng.random() < 0.8 else int(rng.choice([1, 3, 255]))
        else:
            transform = None if rng.random() < 0.35 else 0
        if rng.random() < 0.35:
            samp = samplings[int(rng.integers(len(samplings)))]
            restart = int(rng.integers(1, 8)) if rng.random() < 0.3 else 0
            planes = ycck_planes(ink) if ycck else [255 - ink[..., c] for c in range(4)]
            scans = [[0], [1, 2], [3]] if rng.random() < 0.2 else None
            data = encode_planes(w, h, planes, samp, quality_scale=float(rng.uniform(0.2, 2)), restart=restart,
                                 jfif=bool(rng.random() < 0.3), adobe=transform, scans=scans)
            tag = "enc_" + "_".join(f"{a}{b}" for a, b in samp) + f"_ri{restart}" + ("_ms" if scans else "")
        else:
            kw = dict(quality=int(rng.choice([10, 30, 50, 75, 90, 95, 100])), subsampling=int(rng.choice([0, 1, 2])))
            kw["progressive"] = bool(rng.random() < 0.4)
            kw["optimize"] = bool(rng.random() < 0.3)
            if rng.random() < 0.15:
                kw["restart_marker_blocks"] = int(rng.integers(1, 20))
            try:
                if ycck:
                    data = pillow_ycck(ink, transform, **kw)
                else:
                    data = pillow_jpeg(ink, **kw)
                    if transform is None:
                        data = drop_markers(data, 0xEE)
            except OSError:
                continue
            if kw["progressive"] and rng.random() < 0.2:
                n_scans = sum(1 for m, _, _ in segments(data) if m == 0xDA)
                keep = int(rng.integers(1, n_scans + 1))
                data = drop_scans(data, set(range(keep)))
                kw["keep"] = keep
            tag = "pil_" + "_".join(f"{k}{v}" for k, v in kw.items())
        kind = ("ycck" if ycck else "cmyk") + ("_noadobe" if transform is None else f"_t{transform}")
        write_extra(out_dir, f"c{seed}_{i:04d}_{w}x{h}_{kind}_{tag}", data)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--extra", type=int, default=0, help="write N random files instead of the fixtures")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cmyk", action="store_true", help="with --extra: 4-component (CMYK / YCCK) files")
    ap.add_argument("--readme-table", action="store_true", help="print the README's fixture table")
    args = ap.parse_args()
    print(f"Pillow {Image.__version__}, libjpeg-turbo {features.version('libjpeg_turbo')}", file=sys.stderr)
    if args.extra:
        (extra_cmyk if args.cmyk else extra)(args.out, args.extra, args.seed)
        return
    rows = write_fixtures(args.out)
    if args.readme_table:
        print("| file | size | what it covers |")
        print("| --- | --- | --- |")
        for name, size, what in rows:
            print(f"| `{name}.jpg` | {size} | {what} |")


if __name__ == "__main__":
    main()

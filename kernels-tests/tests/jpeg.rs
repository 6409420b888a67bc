//! Tests of `resincept::jpeg::decode_rgb`, the JPEG decoder that reproduces
//! PIL (Pillow 13 / libjpeg-turbo 3.2) bit for bit; CPU only.
//!
//! * Every JPEG in `fixtures/jpeg/` must decode to exactly the bytes of the
//!   PNG beside it, which holds PIL's `Image.open(f).convert("RGB")` of it
//!   (made by `scripts/make_jpeg_fixtures.py`; `fixtures/jpeg/README.md`
//!   says what each file covers). The PNGs are read with the `image` crate
//!   through `resincept::preprocess::decode_image`.
//! * Truncated and corrupted fixtures never panic, and a file cut anywhere
//!   (even just its EOI marker) is an error, as it is in PIL.
//! * Crafted files of each refused kind (lossless, hierarchical, arithmetic,
//!   12-bit, 2- and 5-component, fractional sampling, DNL height) are
//!   refused with the reason named, and oversized headers are refused
//!   before any image-sized allocation.
//! * JFIF and Adobe markers count only before the first scan, as in
//!   libjpeg: an Adobe marker after it changes neither a CMYK nor a YCbCr
//!   file's colours.

use resincept::jpeg::decode_rgb;
use resincept::preprocess::decode_image;
use std::panic::catch_unwind;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join("jpeg")
}

fn fixtures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("fixtures/jpeg is missing; run scripts/make_jpeg_fixtures.py")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    files.sort();
    files
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(format!("{name}.jpg"))).unwrap()
}

#[test]
fn every_fixture_is_pils_byte_for_byte() {
    let files = fixtures();
    assert!(files.len() >= 40, "only {} fixtures", files.len());
    let mut failures = Vec::new();
    for jpg in &files {
        let name = jpg.file_name().unwrap().to_string_lossy().into_owned();
        let want = decode_image(jpg.with_extension("png")).unwrap();
        let got = match decode_rgb(&std::fs::read(jpg).unwrap()) {
            Ok(got) => got,
            Err(e) => {
                failures.push(format!("{name}: error: {e}"));
                continue;
            }
        };
        if (got.width, got.height) != (want.width, want.height) {
            failures.push(format!(
                "{name}: {}x{}, PIL {}x{}",
                got.width, got.height, want.width, want.height
            ));
            continue;
        }
        assert_eq!(got.rgb.len(), 3 * got.width * got.height, "{name}");
        // `classify` decodes through `decode_image`, which must route
        // JPEGs here.
        let via_preprocess = decode_image(jpg).unwrap();
        assert!(
            via_preprocess.data == got.rgb,
            "{name}: decode_image differs from decode_rgb"
        );
        let differing = got.rgb.iter().zip(&want.data).filter(|(a, b)| a != b);
        let n = differing.count();
        if let Some(i) = (0..got.rgb.len()).find(|&i| got.rgb[i] != want.data[i]) {
            let (px, w) = (i / 3, got.width);
            failures.push(format!(
                "{name}: {n} of {} samples differ; first at x={} y={}: got {:?}, PIL {:?}",
                got.rgb.len(),
                px % w,
                px / w,
                &got.rgb[px * 3..px * 3 + 3],
                &want.data[px * 3..px * 3 + 3],
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures differ from PIL:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

/// Fixtures the robustness tests cut and corrupt: each entropy-coding mode,
/// restart markers in sequential and progressive scans, several scans,
/// block smoothing, int upsampling, optimized tables, CMYK and YCCK.
const FUZZED: [&str; 12] = [
    "q75_420_64x48",
    "opt_q75_420_64x48",
    "prog_q75_420_97x73",
    "grey_prog_q75_45x37",
    "restart_blocks3_420_64x48",
    "restart_rows1_prog_420_61x43",
    "enc_multiscan_422_restart_40x32",
    "enc_411_61x21",
    "prog_partial_64x56",
    "cmyk_noadobe_q75_40x32",
    "ycck_prog_partial_y2x1_33x31",
    "enc_ycck_y2x2_k2x2_37x29",
];

#[test]
fn truncated_files_are_errors_and_never_panic() {
    // PIL refuses a JPEG cut anywhere, even one missing only its EOI
    // marker, and so must the decoder.
    for name in FUZZED {
        let data = read(name);
        assert!(data.ends_with(&[0xFF, 0xD9]), "{name}");
        for cut in 0..data.len() {
            let result = catch_unwind(|| decode_rgb(&data[..cut]))
                .unwrap_or_else(|_| panic!("{name} cut to {cut} bytes: panicked"));
            assert!(
                result.is_err(),
                "{name} cut to {cut} of {} bytes decoded",
                data.len()
            );
        }
    }
}

#[test]
fn corrupted_files_never_panic() {
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for name in FUZZED {
        let data = read(name);
        let mut decoded = 0;
        // Single bytes: every 5th position, flipped, set to 0xFF (a marker
        // prefix), set to 0 and set to a random value.
        for pos in (2..data.len()).step_by(5) {
            let random = next() as u8;
            for value in [!data[pos], 0xFF, 0x00, random] {
                let mut bad = data.clone();
                bad[pos] = value;
                let result = catch_unwind(|| decode_rgb(&bad)).unwrap_or_else(|_| {
                    panic!("{name} with byte {pos} set to 0x{value:02X}: panicked")
                });
                decoded += usize::from(result.is_ok());
            }
        }
        // Bursts of up to 8 random bytes anywhere, headers included.
        for _ in 0..300 {
            let mut bad = data.clone();
            let at = 2 + next() as usize % (data.len() - 2);
            let len = 1 + next() as usize % 8;
            for b in bad.iter_mut().skip(at).take(len) {
                *b = next() as u8;
            }
            let result = catch_unwind(|| decode_rgb(&bad));
            assert!(
                result.is_ok(),
                "{name} with {len} random bytes at {at}: panicked"
            );
        }
        // Most single-byte changes inside entropy-coded data still decode
        // (to wrong pixels); this guards against refusing everything.
        assert!(decoded > 0, "{name}: no corrupted variant decoded");
    }
}

/// SOI, a SOF segment with `marker`, `precision`, size and components
/// `(id, h, v)` (quantization table 0), then EOI.
fn crafted(marker: u8, precision: u8, w: u16, h: u16, comps: &[(u8, u8, u8)]) -> Vec<u8> {
    let mut sof = vec![precision];
    sof.extend(h.to_be_bytes());
    sof.extend(w.to_be_bytes());
    sof.push(comps.len() as u8);
    for &(id, hs, vs) in comps {
        sof.extend([id, hs << 4 | vs, 0]);
    }
    let mut out = vec![0xFF, 0xD8, 0xFF, marker];
    out.extend(((sof.len() + 2) as u16).to_be_bytes());
    out.extend(sof);
    out.extend([0xFF, 0xD9]);
    out
}

#[test]
fn refused_kinds_name_the_reason() {
    let ycc = [(1, 1, 1), (2, 1, 1), (3, 1, 1)];
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (crafted(0xC3, 8, 8, 8, &ycc), "lossless"),
        (crafted(0xC5, 8, 8, 8, &ycc), "hierarchical"),
        (crafted(0xC7, 8, 8, 8, &ycc), "hierarchical"),
        (crafted(0xC9, 8, 8, 8, &ycc), "arithmetic"),
        (crafted(0xCA, 8, 8, 8, &ycc), "arithmetic"),
        (crafted(0xC0, 12, 8, 8, &ycc), "12-bit"),
        (crafted(0xC1, 12, 8, 8, &ycc), "12-bit"),
        (
            crafted(0xC2, 8, 8, 8, &[(1, 1, 1), (2, 1, 1)]),
            "2-component",
        ),
        (
            crafted(
                0xC0,
                8,
                8,
                8,
                &[(1, 1, 1), (2, 1, 1), (3, 1, 1), (4, 1, 1), (5, 1, 1)],
            ),
            "5-component",
        ),
        (
            crafted(0xC0, 8, 8, 8, &[(1, 3, 1), (2, 2, 1), (3, 1, 1)]),
            "fractional",
        ),
        (crafted(0xC0, 8, 8, 0, &ycc), "DNL"),
        (crafted(0xC0, 8, 65_000, 65_000, &ycc), "too large"),
        (b"\x89PNG\r\n\x1a\n".to_vec(), "not a JPEG"),
        (Vec::new(), "not a JPEG"),
        (vec![0xFF, 0xD8, 0xFF, 0xD9], "no SOF"),
    ];
    for (bytes, reason) in cases {
        match decode_rgb(&bytes) {
            Ok(img) => panic!("{reason}: decoded to {}x{}", img.width, img.height),
            Err(e) => assert!(e.contains(reason), "{reason}: got {e:?}"),
        }
    }
    // The same kinds in a real file: switch a baseline fixture's SOF0 to
    // SOF3 / SOF9 and its precision to 12.
    let data = read("q75_420_64x48");
    let sof = data.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    for (at, value, reason) in [
        (sof + 1, 0xC3, "lossless"),
        (sof + 1, 0xC9, "arithmetic"),
        (sof + 4, 12, "12-bit"),
    ] {
        let mut bad = data.clone();
        bad[at] = value;
        let e = decode_rgb(&bad).unwrap_err();
        assert!(e.contains(reason), "{reason}: got {e:?}");
    }
}

#[test]
fn huge_headers_are_refused_before_allocating() {
    // A 1x1 fixture claiming 16384x16384 (2^28 pixels, the largest allowed)
    // has far too little entropy-coded data for its 4 million blocks; the
    // decoder must say so instead of allocating hundreds of megabytes.
    let data = read("size_1x1_444");
    let sof = data.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    let mut big = data.clone();
    big[sof + 5..sof + 9].copy_from_slice(&[0x40, 0x00, 0x40, 0x00]);
    let start = std::time::Instant::now();
    let e = decode_rgb(&big).unwrap_err();
    assert!(e.contains("truncated"), "{e}");
    assert!(
        start.elapsed().as_secs_f64() < 1.0,
        "took {:?}",
        start.elapsed()
    );
    // One pixel over the limit is refused from the header alone.
    big[sof + 5..sof + 9].copy_from_slice(&[0x40, 0x00, 0x40, 0x01]);
    let e = decode_rgb(&big).unwrap_err();
    assert!(e.contains("too large"), "{e}");
}

/// An Adobe APP14 segment with the given transform byte.
fn adobe(transform: u8) -> Vec<u8> {
    let mut seg = vec![0xFF, 0xEE, 0, 14];
    seg.extend(b"Adobe\x00\x64\x00\x00\x00\x00");
    seg.push(transform);
    seg
}

/// `data` with `segment` inserted at byte `at`.
fn insert(data: &[u8], at: usize, segment: &[u8]) -> Vec<u8> {
    [&data[..at], segment, &data[at..]].concat()
}

#[test]
fn colour_markers_count_only_before_the_first_scan() {
    // libjpeg fixes the colour space at the first SOS, so a marker added
    // after the scan changes nothing: CMYK without an Adobe marker stays
    // CMYK despite a late transform 2 (which before the SOF makes it YCCK),
    // and YCbCr with Adobe transform 1 stays YCbCr despite a late 0.
    for (name, late) in [
        ("cmyk_noadobe_q75_40x32", adobe(2)),
        ("enc_adobe_ycc_420_40x32", adobe(0)),
    ] {
        let data = read(name);
        let want = decode_image(dir().join(format!("{name}.png"))).unwrap();
        let eoi = data.len() - 2;
        let got = decode_rgb(&insert(&data, eoi, &late)).unwrap();
        assert!(
            got.rgb == want.data,
            "{name}: marker after the scan was used"
        );
        let early = decode_rgb(&insert(&data, 2, &late)).unwrap();
        assert_eq!((early.width, early.height), (want.width, want.height));
        if name.starts_with("cmyk") {
            assert!(early.rgb != want.data, "{name}: Adobe transform 2 ignored");
        }
    }
    // A CMYK file read with Adobe transform 0 before its SOF is CMYK still.
    let data = read("cmyk_noadobe_q75_40x32");
    let want = decode_image(dir().join("cmyk_noadobe_q75_40x32.png")).unwrap();
    assert!(decode_rgb(&insert(&data, 2, &adobe(0))).unwrap().rgb == want.data);
}

// Tests of the gate itself (node --test): validate.mjs and replay.mjs must
// fail, with a message naming the fault, on each kind of fault they exist
// to catch, and pass on clean input. Needs Dawn's adapter (lavapipe of
// Mesa 25 here: see scripts/dawn_driver.sh). Run: npm test.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'resincept-dawn-selftest-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

/** Runs `node script args`; returns { status, out } (stdout + stderr). */
function run(script, ...args) {
  const r = spawnSync(process.execPath, [path.join(here, script), ...args], { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

let fileCount = 0;
/** Writes `spec` as a pipeline list and runs validate.mjs on it. */
function validate(spec) {
  const file = path.join(tmp, `pipelines${fileCount++}.json`);
  fs.writeFileSync(file, JSON.stringify(spec));
  return run('validate.mjs', file);
}

// A workgroup array sized by an override, a barrier in uniform control
// flow (the loop bound is a uniform), one storage binding and the params.
const CLEAN = `
struct Params { n: u32, rounds: u32 }
override N: u32 = 64u;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> data: array<f32>;
var<workgroup> tile: array<f32, N>;
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let rounds = p.rounds;
    for (var r = 0u; r < rounds; r++) {
        tile[l] = data[wid.x * 64u + l];
        workgroupBarrier();
        data[wid.x * 64u + l] = tile[63u - l];
        workgroupBarrier();
    }
}
`;
const BINDINGS = ['uniform', 'read_write'];
// 8192 f32 = 32 KiB of workgroup memory: above WebGPU's default 16 KiB.
const BIG = { N: 8192 };
const BIG_NEEDS = { maxComputeWorkgroupStorageSize: 32768 };

const spec = (code, pipelines, extra = {}) => ({
  features: [],
  limits: { maxStorageBuffersPerShaderStage: 1 },
  shaders: [{ file: 'selftest.wgsl', code }],
  pipelines: pipelines.map((p) => ({ shader: 0, entry: 'main', bindings: BINDINGS, ...p })),
  ...extra,
});

test('validate passes clean pipelines, and refuses a marked one only where its needs exceed the limits', () => {
  const r = validate(spec(CLEAN, [{ constants: {} }, { constants: BIG, needs: BIG_NEEDS }]));
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /validate: 2 pipelines × 2 limit sets OK: 3 created, 1 refused as their needs mark says/);
});

test('validate fails an unmarked pipeline that WebGPU default limits refuse', () => {
  const r = validate(spec(CLEAN, [{ constants: BIG }]));
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /FAIL selftest\.wgsl `main` N=8192 \[WebGPU default limits\]/);
  assert.match(r.out, /workgroup storage/i);
  assert.doesNotMatch(r.out, /\[adapter limits\]/);
});

test('validate judges a layout over the default storage-buffer limit by its needs mark', () => {
  // Nine storage buffers: one more than WebGPU's default of 8 per stage.
  const decl = [...Array(9).keys()].map((k) => `@group(0) @binding(${k}) var<storage, read_write> b${k}: array<f32>;`);
  const sum = [...Array(8).keys()].map((k) => `b${k + 1}[0]`).join(' + ');
  const code = `${decl.join('\n')}\n@compute @workgroup_size(1) fn main() { b0[0] = ${sum}; }\n`;
  const bindings = Array(9).fill('read_write');
  let r = validate(spec(code, [{ constants: {}, bindings, needs: { maxStorageBuffersPerShaderStage: 9 } }]));
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /1 created, 1 refused as their needs mark says/);
  r = validate(spec(code, [{ constants: {}, bindings }]));
  assert.equal(r.status, 1, r.out);
  assert.match(
    r.out,
    /FAIL selftest\.wgsl `main` no overrides \[WebGPU default limits\]:[\s\S]*maxStorageBuffersPerShaderStage/,
  );
});

test('validate fails a needs mark that the device does not enforce', () => {
  const r = validate(spec(CLEAN, [{ constants: {}, needs: BIG_NEEDS }]));
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /marked as needing maxComputeWorkgroupStorageSize 32768 > 16384, yet Dawn created it/);
});

test('validate fails a barrier in non-uniform control flow, naming file, line, entry and constants', () => {
  const code = CLEAN.replace('let rounds = p.rounds;', 'let rounds = p.rounds + l % 2u;');
  const r = validate(spec(code, [{ constants: { N: 64 } }]));
  assert.equal(r.status, 1, r.out);
  assert.match(
    r.out,
    /selftest\.wgsl:\d+:\d+: error: 'workgroupBarrier' must only be called from uniform control flow/,
  );
  assert.match(r.out, /note: builtin 'l' of 'main' may be non-uniform/);
  assert.match(r.out, /FAIL selftest\.wgsl `main` N=64 \[adapter limits\]: the shader module did not compile/);
});

test('validate fails on a Tint warning', () => {
  const code = CLEAN.replace(
    'let rounds = p.rounds;',
    'let rounds = p.rounds;\n    if (rounds == 0u) { return; data[0] = 1.0; }',
  );
  const r = validate(spec(code, [{ constants: {} }]));
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /selftest\.wgsl:\d+:\d+: warning: code is unreachable/);
});

test('validate fails when the bindings list does not match the shader', () => {
  const r = validate(spec(CLEAN, [{ constants: {}, bindings: ['uniform', 'read'] }]));
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /FAIL selftest\.wgsl `main` no overrides \[adapter limits\]:/);
});

test('validate fails a floor above WebGPU default limits, and an empty list', () => {
  let r = validate(spec(CLEAN, [{ constants: {} }], { limits: { maxComputeWorkgroupStorageSize: 20000 } }));
  assert.equal(r.status, 1, r.out);
  assert.match(
    r.out,
    /limits\.maxComputeWorkgroupStorageSize: the engine needs 20000, a device with WebGPU default limits has 16384/,
  );
  r = validate(spec(CLEAN, []));
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /no pipelines/);
});

// ---- replay -----------------------------------------------------------------

const FIXTURES = ['conv_splitk', 'maxpool'].map((f) => path.join(here, 'testdata', f));

/** A copy of fixture `dir` with its JSON and bytes passed through `edit`. */
function mutated(dir, edit) {
  const out = fs.mkdtempSync(path.join(tmp, 'trace-'));
  const t = JSON.parse(fs.readFileSync(path.join(dir, 'trace.json'), 'utf8'));
  const bin = fs.readFileSync(path.join(dir, 'trace.bin'));
  edit(t, bin);
  fs.writeFileSync(path.join(out, 'trace.json'), JSON.stringify(t));
  fs.writeFileSync(path.join(out, 'trace.bin'), bin);
  return out;
}

test('replay passes the recorded conv (split-K) and pool traces', () => {
  const r = run('replay.mjs', ...FIXTURES);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /PASS conv3x3 split2 output: 1260 f32/);
  assert.match(r.out, /PASS maxpool output: 200 f32/);
  assert.match(r.out, /replay: 2 of 2 traces passed/);
});

test('replay fails an element off by more than the tolerance, naming index and both values', () => {
  const dir = mutated(FIXTURES[1], (t, bin) => {
    const at = t.checks[0].expected[0] + 4 * 17;
    bin.writeFloatLE(bin.readFloatLE(at) + 1e-3, at);
  });
  const r = run('replay.mjs', dir);
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /FAIL maxpool output: 1 of 200 elements .*first: \[17\] dawn=\S+ wgpu=\S+/);
});

test('replay fails outputs left unwritten (the NaN pre-fill)', () => {
  const dir = mutated(FIXTURES[1], (t) => {
    t.commands[0].workgroups = [0, 1, 1];
  });
  const r = run('replay.mjs', dir);
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /FAIL maxpool output: 200 of 200 elements NaN or outside/);
});

test('replay requires NaN where wgpu left NaN (unwritten channels), and a number elsewhere', () => {
  // wgpu's element 5 is NaN (as if the kernel never wrote it): Dawn wrote a
  // number there, which must fail.
  let dir = mutated(FIXTURES[1], (t, bin) => {
    bin.writeFloatLE(NaN, t.checks[0].expected[0] + 4 * 5);
  });
  let r = run('replay.mjs', dir);
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /FAIL maxpool output: 1 of 200 elements .*first: \[5\] dawn=\S+ wgpu=NaN/);
  // Every expected value NaN: the check covers nothing the run writes.
  dir = mutated(FIXTURES[1], (t, bin) => {
    const [at, len] = t.checks[0].expected;
    for (let i = 0; i < len; i += 4) bin.writeFloatLE(NaN, at + i);
  });
  r = run('replay.mjs', dir);
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /all NaN/);
});

test('replay fails a pipeline Dawn refuses, naming it', () => {
  const dir = mutated(FIXTURES[0], (t) => {
    t.pipelines[1].bindings[6] = 'read';
  });
  const r = run('replay.mjs', dir);
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /FAIL .*: pipeline conv2d\.wgsl `conv2d_splitk_reduce` no overrides:/);
  assert.match(r.out, /@binding\(6\)/);
});

test('replay names the limit an adapter falls short of, and refuses a trace without checks', () => {
  let dir = mutated(FIXTURES[1], (t) => {
    t.limits.maxComputeWorkgroupStorageSize = 1 << 30;
  });
  let r = run('replay.mjs', dir);
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /maxComputeWorkgroupStorageSize is \d+, at least 1073741824 needed/);
  dir = mutated(FIXTURES[1], (t) => {
    t.checks = [];
  });
  r = run('replay.mjs', dir);
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /no checks/);
});

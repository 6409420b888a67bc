// Cross-implementation run: replays a GPU trace that resincept recorded on
// wgpu (docs/TRACE_FORMAT.md) on Dawn, Chrome's WebGPU, and compares the
// checked ranges with wgpu's bytes within each check's tolerance. Same
// WGSL, two compilers (naga -> SPIR-V and Tint -> SPIR-V), two runtimes.
//
//   node replay.mjs TRACE_DIR [TRACE_DIR...]     (a dir holding trace.json + trace.bin)
//
// Prints one line per check; exit status 0 only if every check of every
// trace passed and Dawn raised no validation, internal or uncaptured error.

import fs from 'node:fs';
import nodePath from 'node:path';
import {
  checkPipelineRecord,
  closeDevice,
  compileModule,
  constantsText,
  describeAdapter,
  die,
  errorText,
  makeGpu,
  pipelineDescriptor,
  pipelineLayout,
  readJson,
  requestAdapter,
  requestDevice,
  scoped,
} from './common.mjs';

const USAGE = {
  storage: GPUBufferUsage.STORAGE,
  uniform: GPUBufferUsage.UNIFORM,
  copy_src: GPUBufferUsage.COPY_SRC,
  copy_dst: GPUBufferUsage.COPY_DST,
};
const DTYPE_BYTES = { f32: 4, f16: 2 };
/** How many mismatches a failing check lists. */
const SHOW = 8;

/** IEEE binary16 bits to a number. */
function halfToFloat(h) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** The elements of `bytes` (a Uint8Array) as numbers. */
function decode(bytes, dtype) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.byteLength / DTYPE_BYTES[dtype];
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = dtype === 'f32' ? view.getFloat32(4 * i, true) : halfToFloat(view.getUint16(2 * i, true));
  }
  return out;
}

const fmt = (v) => (Number.isNaN(v) ? 'NaN' : v.toExponential(6));

/**
 * Compares Dawn's elements with wgpu's: |dawn − wgpu| ≤ atol + rtol·|wgpu|
 * for each; identical values (equal infinities included) pass. Where wgpu's
 * value is NaN — an element the run leaves unwritten in a NaN-prefilled
 * buffer, such as the channels around a channel-offset write — Dawn's must
 * be NaN too (so Dawn writing outside the range fails); NaN from Dawn where
 * wgpu has a number fails; a check whose wgpu values are all NaN fails (it
 * checks nothing). Returns the line to print and whether it passed.
 */
function compare(check, dawnBytes, wgpuBytes) {
  const dawn = decode(dawnBytes, check.dtype);
  const wgpu = decode(wgpuBytes, check.dtype);
  const bad = [];
  let badCount = 0;
  // The largest finite |diff|, where it is and what was allowed there.
  let worst = { diff: 0, at: -1, allowed: check.atol };
  let written = 0;
  for (let i = 0; i < dawn.length; i++) {
    const d = dawn[i];
    const w = wgpu[i];
    const allowed = check.atol + check.rtol * Math.abs(w);
    const diff = Math.abs(d - w);
    const ok = Number.isNaN(w)
      ? Number.isNaN(d)
      : !Number.isNaN(d) && (d === w || diff <= allowed);
    if (!Number.isNaN(w)) written++;
    if (!ok) {
      badCount++;
      if (bad.length < SHOW) bad.push(`[${i}] dawn=${fmt(d)} wgpu=${fmt(w)}`);
    }
    if (diff > worst.diff && Number.isFinite(diff)) worst = { diff, at: i, allowed };
  }
  const where = worst.at >= 0 ? ` at [${worst.at}]` : '';
  const stats =
    `${dawn.length} ${check.dtype}, max |diff| ${fmt(worst.diff)}${where}, allowed there ${fmt(worst.allowed)} ` +
    `(atol ${check.atol}, rtol ${check.rtol})`;
  if (written === 0) {
    return { ok: false, line: `FAIL ${check.label}: wgpu's values are all NaN: the check covers nothing the run writes` };
  }
  if (badCount === 0) return { ok: true, line: `PASS ${check.label}: ${stats}` };
  return {
    ok: false,
    line:
      `FAIL ${check.label}: ${badCount} of ${dawn.length} elements NaN or outside ` +
      `|dawn − wgpu| ≤ atol + rtol·|wgpu|; ${stats}; first: ${bad.join(', ')}`,
  };
}

/** Reads and checks a trace directory's JSON and its bytes. */
function load(dir) {
  const jsonPath = nodePath.join(dir, 'trace.json');
  const binPath = nodePath.join(dir, 'trace.bin');
  const t = readJson(jsonPath);
  let bin;
  try {
    bin = new Uint8Array(fs.readFileSync(binPath));
  } catch (e) {
    die(`cannot read ${binPath}: ${e.message}`);
  }
  const bad = [];
  const where = (what) => `${jsonPath}: ${what}`;
  if (t.format !== 'resincept-trace') bad.push(`format is ${JSON.stringify(t.format)}, not "resincept-trace"`);
  if (t.version !== 1) bad.push(`version is ${JSON.stringify(t.version)}; this replay reads version 1`);
  for (const key of ['shaders', 'buffers', 'pipelines', 'bind_groups', 'commands', 'checks']) {
    if (!Array.isArray(t[key])) bad.push(`${key} is not a list`);
  }
  if (bad.length) die(where(bad.join('; ')));
  const range = (r, what, mult = 1) => {
    if (!Array.isArray(r) || r.length !== 2 || !r.every((x) => Number.isInteger(x) && x >= 0)) {
      bad.push(`${what} is not [offset, length]`);
    } else if (r[0] + r[1] > bin.byteLength) {
      bad.push(`${what} [${r[0]}, ${r[1]}] runs past the end of trace.bin (${bin.byteLength} bytes)`);
    } else if (r[1] % mult) {
      bad.push(`${what} length ${r[1]} is not a multiple of ${mult}`);
    }
  };
  t.buffers.forEach((b, i) => {
    if (!Number.isInteger(b.size) || b.size <= 0 || b.size % 4)
      bad.push(`buffers[${i}].size ${b.size} is not a positive multiple of 4`);
    if (!Array.isArray(b.usage) || !b.usage.every((u) => u in USAGE)) {
      bad.push(`buffers[${i}].usage must be a list of ${Object.keys(USAGE).join(' | ')}`);
    }
    if (b.init !== null && b.init !== undefined) {
      range(b.init, `buffers[${i}].init`, 4);
      if (Array.isArray(b.init) && b.init[1] > b.size)
        bad.push(`buffers[${i}].init is ${b.init[1]} bytes, the buffer ${b.size}`);
    }
  });
  t.pipelines.forEach((p, i) => bad.push(...checkPipelineRecord(p, i, t.shaders.length)));
  t.bind_groups.forEach((g, i) => {
    const p = t.pipelines[g.pipeline];
    if (!p) return bad.push(`bind_groups[${i}].pipeline ${g.pipeline} is not a pipeline index`);
    if (!Array.isArray(g.entries) || g.entries.length !== p.bindings.length) {
      return bad.push(`bind_groups[${i}] has ${g.entries?.length} entries, its pipeline ${p.bindings.length} bindings`);
    }
    g.entries.forEach((e, k) => {
      if (!t.buffers[e.buffer]) bad.push(`bind_groups[${i}].entries[${k}].buffer ${e.buffer} is not a buffer index`);
    });
  });
  t.commands.forEach((c, i) => {
    if (c.op === 'dispatch') {
      if (!t.pipelines[c.pipeline]) bad.push(`commands[${i}].pipeline ${c.pipeline} is not a pipeline index`);
      const g = t.bind_groups[c.bind_group];
      if (!g) bad.push(`commands[${i}].bind_group ${c.bind_group} is not a bind group index`);
      else if (
        g.pipeline !== c.pipeline &&
        t.pipelines[g.pipeline]?.bindings.join() !== t.pipelines[c.pipeline]?.bindings.join()
      ) {
        bad.push(`commands[${i}] binds bind group ${c.bind_group}, made for a pipeline of another layout`);
      }
      if (
        !Array.isArray(c.workgroups) ||
        c.workgroups.length !== 3 ||
        !c.workgroups.every((n) => Number.isInteger(n) && n >= 0)
      ) {
        bad.push(`commands[${i}].workgroups is not [x, y, z]`);
      }
    } else if (c.op === 'copy') {
      for (const k of ['src', 'dst'])
        if (!t.buffers[c[k]]) bad.push(`commands[${i}].${k} ${c[k]} is not a buffer index`);
    } else {
      bad.push(`commands[${i}].op ${JSON.stringify(c.op)} is neither "dispatch" nor "copy"`);
    }
  });
  if (t.checks.length === 0) bad.push('no checks (a replay that compares nothing must not pass)');
  t.checks.forEach((c, i) => {
    const b = t.buffers[c.buffer];
    const at = `checks[${i}] (${c.label})`;
    if (!b) return bad.push(`${at}.buffer ${c.buffer} is not a buffer index`);
    if (!(c.dtype in DTYPE_BYTES)) bad.push(`${at}.dtype ${JSON.stringify(c.dtype)} is neither "f32" nor "f16"`);
    if (!Number.isInteger(c.offset) || !Number.isInteger(c.size) || c.offset % 4 || c.size % 4 || c.size <= 0) {
      bad.push(`${at}: offset ${c.offset} and size ${c.size} must be multiples of 4, size > 0`);
    } else if (c.offset + c.size > b.size) {
      bad.push(`${at}: range [${c.offset}, +${c.size}] runs past buffer ${c.buffer} (${b.size} bytes)`);
    }
    range(c.expected, `${at}.expected`);
    if (Array.isArray(c.expected) && c.expected[1] !== c.size)
      bad.push(`${at}.expected is ${c.expected[1]} bytes, the range ${c.size}`);
    if (!(c.atol >= 0) || !(c.rtol >= 0)) bad.push(`${at}: atol and rtol must be numbers ≥ 0`);
  });
  if (bad.length) die(where(bad.join('; ')));
  return { t, bin, name: t.name || dir };
}

/** Replays one trace; returns true when every check passed. */
async function replay(gpu, dir) {
  const started = Date.now();
  const { t, bin, name } = load(dir);
  const adapter = await requestAdapter(gpu);
  const device = await requestDevice(adapter, t.features ?? [], t.limits ?? {}, `trace ${name}`);
  console.log(`trace ${name}: ${t.commands.length} commands on ${describeAdapter(adapter)}`);
  let ok = true;
  const failLine = (text) => {
    ok = false;
    console.log(`FAIL ${name}: ${text}`);
  };

  const { errors: setupErrors, value: built } = await scoped(device, async (d) => {
    const checked = new Set(t.checks.map((c) => c.buffer));
    const buffers = t.buffers.map((b, i) => {
      let usage = b.usage.reduce((u, k) => u | USAGE[k], 0);
      if (checked.has(i)) usage |= GPUBufferUsage.COPY_SRC;
      if (b.init) usage |= GPUBufferUsage.COPY_DST;
      const buffer = d.createBuffer({ label: b.label || `buffer ${i}`, size: b.size, usage });
      if (b.init && b.init[1] > 0) d.queue.writeBuffer(buffer, 0, bin, b.init[0], b.init[1]);
      return buffer;
    });
    const modules = [];
    for (const s of t.shaders) {
      const { module, diagnostics } = await compileModule(d, s.file, s.code);
      if (diagnostics.length) failLine(`${s.file}: Tint:\n  ${diagnostics.join('\n  ')}`);
      modules.push(diagnostics.length ? null : module);
    }
    // Compiled concurrently; each rejection carries its own error.
    const pipelines = await Promise.all(
      t.pipelines.map(async (p) => {
        const label = `${t.shaders[p.shader].file} \`${p.entry}\` ${constantsText(p.constants)}`;
        if (!modules[p.shader]) return null;
        try {
          return await d.createComputePipelineAsync(pipelineDescriptor(d, p, modules[p.shader], label));
        } catch (e) {
          failLine(`pipeline ${label}:\n  ${errorText(e).replace(/\n/g, '\n  ')}`);
          return null;
        }
      }),
    );
    const bindGroups = t.bind_groups.map((g, i) =>
      d.createBindGroup({
        label: `bind group ${i}`,
        layout: pipelineLayout(d, t.pipelines[g.pipeline].bindings).bindGroupLayout,
        entries: g.entries.map((e, k) => ({
          binding: k,
          resource: { buffer: buffers[e.buffer], offset: e.offset ?? 0, ...(e.size == null ? {} : { size: e.size }) },
        })),
      }),
    );
    return { buffers, pipelines, bindGroups };
  });
  for (const e of setupErrors) failLine(`setup: ${e}`);
  if (!ok || !built) {
    closeDevice(device);
    return false;
  }
  const { buffers, pipelines, bindGroups } = built;

  // One encoder: consecutive dispatches share a compute pass, a copy ends
  // it; the check ranges are copied out at the end; one submission.
  const readbacks = [];
  const { errors: runErrors } = await scoped(device, async (d) => {
    const encoder = d.createCommandEncoder({ label: name });
    let pass = null;
    for (const c of t.commands) {
      if (c.op === 'dispatch') {
        pass ??= encoder.beginComputePass({ label: c.label });
        pass.setPipeline(pipelines[c.pipeline]);
        pass.setBindGroup(0, bindGroups[c.bind_group]);
        pass.dispatchWorkgroups(...c.workgroups);
      } else {
        pass?.end();
        pass = null;
        encoder.copyBufferToBuffer(buffers[c.src], c.src_offset ?? 0, buffers[c.dst], c.dst_offset ?? 0, c.size);
      }
    }
    pass?.end();
    for (const c of t.checks) {
      const staging = d.createBuffer({
        label: `read ${c.label}`,
        size: c.size,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
      encoder.copyBufferToBuffer(buffers[c.buffer], c.offset, staging, 0, c.size);
      readbacks.push(staging);
    }
    d.queue.submit([encoder.finish()]);
    await d.queue.onSubmittedWorkDone();
  });
  for (const e of runErrors) failLine(`run: ${e}`);
  const secs = ((Date.now() - started) / 1000).toFixed(1);

  if (ok) {
    for (const [i, c] of t.checks.entries()) {
      const staging = readbacks[i];
      await staging.mapAsync(GPUMapMode.READ);
      const got = new Uint8Array(staging.getMappedRange().slice(0));
      staging.unmap();
      const want = bin.subarray(c.expected[0], c.expected[0] + c.expected[1]);
      const r = compare(c, got, want);
      console.log(r.line);
      if (!r.ok) ok = false;
    }
  }
  for (const p of device.problems) failLine(p);
  closeDevice(device);
  console.log(`trace ${name}: ${ok ? 'OK' : 'FAILED'}, ${t.checks.length} checks (${secs} s)`);
  return ok;
}

const dirs = process.argv.slice(2);
if (dirs.length === 0 || dirs.some((d) => d.startsWith('--'))) die('usage: node replay.mjs TRACE_DIR [TRACE_DIR...]');
const gpu = makeGpu();
let failed = 0;
for (const dir of dirs) {
  if (!(await replay(gpu, dir))) failed++;
}
console.log(`replay: ${dirs.length - failed} of ${dirs.length} traces passed`);
process.exit(failed ? 1 : 0);

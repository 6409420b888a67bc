// Validation gate: every pipeline the engine can create, created through
// Dawn (Chrome's WebGPU; Tint compiles the WGSL) with explicit layouts, on
// two devices: one with the adapter's limits and one with WebGPU's default
// limits. Tint's errors and warnings, and any pipeline Dawn refuses, fail
// with file, entry point, override constants and Tint's message.
//
//   node validate.mjs PIPELINES.json [--info]
//
// PIPELINES.json (docs/TRACE_FORMAT.md, "Pipeline list"):
//   { "features": [...], "limits": {...},          // the engine's floor
//     "shaders": [{ "file", "code" }],
//     "pipelines": [{ "shader", "entry", "constants", "bindings",
//                     "needs": { limit: value } }] }   // needs: optional
// A pipeline marked `needs` is one the launcher picks only on devices with
// at least those limits (say maxComputeWorkgroupStorageSize 24576 for a
// double-buffered 128x64 conv tile): on a device below any of them Dawn
// must refuse it, and creating it there anyway is a failure too (the mark
// or the launcher's accounting is wrong). Every other pipeline must be
// created on both devices, and the floor `limits` must fit within WebGPU's
// defaults: the engine promises to run on any WebGPU device.
//
// --info also prints the adapter's info, features and limits as JSON.
// Exit status 0 only when every check passed.

import os from 'node:os';
import {
  adapterReport,
  checkPipelineRecord,
  closeDevice,
  compileModule,
  constantsText,
  describeAdapter,
  die,
  makeGpu,
  errorText,
  pipelineDescriptor,
  pipelineLayout,
  readJson,
  requestAdapter,
  requestDevice,
  scoped,
} from './common.mjs';

const args = process.argv.slice(2);
const showInfo = args.includes('--info');
const files = args.filter((a) => !a.startsWith('--'));
if (files.length !== 1) die('usage: node validate.mjs PIPELINES.json [--info]');
const path = files[0];
const spec = readJson(path);

// ---- the input, checked before any GPU work ---------------------------------
const features = spec.features ?? [];
const floor = spec.limits ?? {};
if (!Array.isArray(features) || !features.every((f) => typeof f === 'string')) {
  die(`${path}: features must be a list of WebGPU feature names`);
}
if (!Array.isArray(spec.shaders) || spec.shaders.length === 0) {
  die(`${path}: no shaders (a gate that checks nothing must not pass)`);
}
if (!Array.isArray(spec.pipelines) || spec.pipelines.length === 0) {
  die(`${path}: no pipelines (a gate that checks nothing must not pass)`);
}
spec.shaders.forEach((s, i) => {
  if (typeof s.file !== 'string' || typeof s.code !== 'string') die(`${path}: shaders[${i}] needs file and code`);
});
const problems = [];
spec.pipelines.forEach((p, i) => {
  problems.push(...checkPipelineRecord(p, i, spec.shaders.length));
  if (p.needs !== undefined) {
    if (typeof p.needs !== 'object' || p.needs === null || Array.isArray(p.needs)) {
      problems.push(`pipelines[${i}].needs is not an object`);
    } else {
      for (const [k, v] of Object.entries(p.needs)) {
        if (!k.startsWith('max')) problems.push(`pipelines[${i}].needs.${k}: only max* limits can be needed`);
        if (!Number.isInteger(v) || v < 0) problems.push(`pipelines[${i}].needs.${k} is not a limit value`);
      }
    }
  }
});
if (problems.length) die(`${path}: ${problems.join('; ')}`);

const name = (p) => `${spec.shaders[p.shader].file} \`${p.entry}\` ${constantsText(p.constants)}`;
const failures = [];
const fail = (text) => {
  failures.push(text);
  console.log(`FAIL ${text}`);
};

// ---- the two devices ---------------------------------------------------------
const gpu = makeGpu();
const sets = [
  { what: 'adapter limits', limits: 'adapter' },
  { what: 'WebGPU default limits', limits: 'default' },
];
const moduleDiagnostics = new Map(); // file -> diagnostics already reported
let created = 0;
let refusedAsMarked = 0;
const neverCompiled = new Set();
const started = Date.now();

for (const set of sets) {
  const adapter = await requestAdapter(gpu);
  if (set.limits === 'adapter') {
    console.log(`adapter: ${describeAdapter(adapter)}`);
    if (showInfo) console.log(JSON.stringify(adapterReport(adapter), null, 2));
  }
  const device = await requestDevice(adapter, features, set.limits, `${path} (${set.what})`);
  const limits = device.limits;

  // The floor the engine needs must fit this device, WebGPU's defaults
  // included: otherwise it would not run on every WebGPU implementation.
  for (const [k, v] of Object.entries(floor)) {
    const have = limits[k];
    if (have === undefined) {
      fail(`limits.${k}: not a WebGPU limit name`);
    } else if (k.startsWith('min') ? have > v : have < v) {
      fail(`limits.${k}: the engine needs ${v}, a device with ${set.what} has ${have}`);
    }
  }
  for (const [i, p] of spec.pipelines.entries()) {
    for (const k of Object.keys(p.needs ?? {})) {
      if (limits[k] === undefined) fail(`pipelines[${i}] ${name(p)}: needs.${k} is not a WebGPU limit name`);
    }
  }

  // Shader modules: Tint parses, resolves and checks uniformity here.
  const modules = [];
  for (const s of spec.shaders) {
    const { module, diagnostics } = await compileModule(device, s.file, s.code);
    modules.push(diagnostics.length ? null : module);
    const key = `${s.file}\n${diagnostics.join('\n')}`;
    if (diagnostics.length && !moduleDiagnostics.has(key)) {
      moduleDiagnostics.set(key, true);
      fail(`${s.file}: Tint:\n  ${diagnostics.join('\n  ')}`);
    }
  }

  // Layouts, one per distinct bindings list, each in its own error scopes
  // (a layout over the storage-buffer limit is refused here).
  const layoutErrors = new Map();
  for (const p of spec.pipelines) {
    const key = p.bindings.join(',');
    if (layoutErrors.has(key)) continue;
    const { errors } = await scoped(device, (d) => pipelineLayout(d, p.bindings));
    layoutErrors.set(key, errors);
  }

  // Pipelines: override constants are applied and the module is compiled
  // for the backend here. A few at a time, so that Dawn's worker threads
  // compile in parallel. No error scopes here: they are a stack, which
  // interleaved awaits would mix up; createComputePipelineAsync rejects
  // with its own error instead, and anything else lands in
  // device.problems (uncaptured errors).
  const judge = async (p, i) => {
    const label = `${name(p)} [${set.what}]`;
    const over = Object.entries(p.needs ?? {}).filter(([k, v]) => limits[k] !== undefined && v > limits[k]);
    const module = modules[p.shader];
    if (!module) {
      if (!over.length) fail(`${label}: the shader module did not compile (Tint's message above)`);
      return;
    }
    const errors = [...layoutErrors.get(p.bindings.join(','))];
    if (!errors.length) {
      try {
        await device.createComputePipelineAsync(pipelineDescriptor(device, p, module, label));
      } catch (e) {
        errors.push(errorText(e));
      }
    }
    if (over.length) {
      const want = over.map(([k, v]) => `${k} ${v} > ${limits[k]}`).join(', ');
      if (errors.length === 0) {
        fail(
          `${label}: marked as needing ${want}, yet Dawn created it on this device: ` +
            `the needs mark (or the launcher's accounting behind it) is wrong`,
        );
      } else {
        refusedAsMarked++;
        if (set.limits === 'adapter') neverCompiled.add(i);
      }
      return;
    }
    if (errors.length) {
      const hint =
        set.limits === 'default'
          ? "\n  (a pipeline the launcher picks only on devices with more than WebGPU's default " +
            'limits must say so with "needs": docs/TRACE_FORMAT.md)'
          : '';
      fail(`${label}:\n  ${errors.map((e) => e.replace(/\n/g, '\n  ')).join('\n  ')}${hint}`);
    } else {
      created++;
    }
  };
  const queue = [...spec.pipelines.entries()];
  const workers = Array.from({ length: Math.max(2, os.cpus().length) }, async () => {
    while (queue.length) {
      const [i, p] = queue.shift();
      await judge(p, i);
    }
  });
  await Promise.all(workers);
  await device.queue.onSubmittedWorkDone();
  for (const problem of device.problems) fail(`[${set.what}] ${problem}`);
  closeDevice(device);
}

for (const i of neverCompiled) {
  console.log(`note: ${name(spec.pipelines[i])} needs more than this adapter has; only Tint's front end checked it`);
}
const n = spec.pipelines.length;
const secs = ((Date.now() - started) / 1000).toFixed(1);
if (failures.length) {
  console.log(`validate: ${failures.length} failure(s) in ${n} pipelines × ${sets.length} limit sets (${secs} s)`);
  process.exit(1);
}
console.log(
  `validate: ${n} pipelines × ${sets.length} limit sets OK: ${created} created, ` +
    `${refusedAsMarked} refused as their needs mark says (${secs} s)`,
);
process.exit(0);

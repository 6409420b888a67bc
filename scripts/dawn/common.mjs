// Shared pieces of validate.mjs and replay.mjs: Dawn's WebGPU through the
// npm package `webgpu` (dawn.node, with Chrome's WGSL compiler Tint), device
// requests that name the limit at fault, error capture (error scopes plus
// uncaptured errors and device loss), Tint diagnostics with file, line and
// source text, and explicit bind-group layouts from the trace format's
// binding kinds (see ../../docs/TRACE_FORMAT.md).

import fs from 'node:fs';
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);

/** Prints to stderr and exits with status 1: a bad input or setup. */
export function die(message) {
  process.stderr.write(`error: ${message}\n`);
  process.exit(1);
}

/** Reads and parses a JSON file; a missing or malformed file is fatal. */
export function readJson(path) {
  let text;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    die(`cannot read ${path}: ${e.message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    die(`${path} is not valid JSON: ${e.message}`);
  }
}

/** The WebGPU entry point (the `navigator.gpu` of a browser). */
export function makeGpu() {
  // DAWN_FLAGS: space-separated dawn.node flags, for example
  // `backend=vulkan` or `enable-dawn-features=dump_shaders` when debugging.
  const flags = (process.env.DAWN_FLAGS || '').split(/\s+/).filter(Boolean);
  return create(flags);
}

/** A fresh adapter (Dawn's adapters are consumed by requestDevice). */
export async function requestAdapter(gpu) {
  const adapter = await gpu.requestAdapter();
  if (!adapter) {
    die(
      'Dawn found no WebGPU adapter. On Debian 12 its Vulkan needs the lavapipe of ' +
        "Mesa 25 (Mesa 22's lacks shaderUniform*ArrayDynamicIndexing): run " +
        'scripts/dawn_driver.sh and eval the environment it prints (README, "A second WebGPU implementation: Dawn").',
    );
  }
  return adapter;
}

/** Every limit of a GPUSupportedLimits as a plain object. */
export function limitsObject(limits) {
  const out = {};
  for (const k in limits) {
    if (typeof limits[k] === 'number') out[k] = limits[k];
  }
  return out;
}

/** One line about the adapter, for logs. */
export function describeAdapter(adapter) {
  const i = adapter.info;
  return (
    `${i.description || i.device || '?'} (vendor ${i.vendor || '?'}, ` +
    `architecture ${i.architecture || '?'}${i.isFallbackAdapter ? ', fallback adapter' : ''})`
  );
}

/** The adapter's info, features and limits, as `validate.mjs --info` prints them. */
export function adapterReport(adapter) {
  const i = adapter.info;
  return {
    info: {
      vendor: i.vendor,
      architecture: i.architecture,
      device: i.device,
      description: i.description,
      subgroupMinSize: i.subgroupMinSize,
      subgroupMaxSize: i.subgroupMaxSize,
      isFallbackAdapter: i.isFallbackAdapter,
    },
    features: [...adapter.features].sort(),
    limits: limitsObject(adapter.limits),
  };
}

/**
 * Requests a device with `features` and `limits` (a WebGPU limit-name map,
 * or 'adapter' for every limit at the adapter's own value, or 'default' for
 * WebGPU's defaults). Names each missing feature or short limit, with both
 * values, instead of letting requestDevice fail vaguely.
 */
export async function requestDevice(adapter, features, limits, what) {
  const missing = features.filter((f) => !adapter.features.has(f));
  if (missing.length) {
    die(
      `${what}: the adapter ${describeAdapter(adapter)} lacks feature(s) ` +
        `${missing.join(', ')} (it has: ${[...adapter.features].sort().join(', ')})`,
    );
  }
  let requiredLimits = {};
  if (limits === 'adapter') {
    requiredLimits = limitsObject(adapter.limits);
  } else if (limits !== 'default') {
    const short = [];
    for (const [k, v] of Object.entries(limits)) {
      const have = adapter.limits[k];
      if (have === undefined) {
        short.push(`${k} is not a WebGPU limit Dawn knows`);
      } else if (k.startsWith('min') ? have > v : have < v) {
        short.push(`${k} is ${have}, ${k.startsWith('min') ? 'at most' : 'at least'} ${v} needed`);
      }
      requiredLimits[k] = v;
    }
    if (short.length) {
      die(`${what}: the adapter ${describeAdapter(adapter)} falls short: ${short.join('; ')}`);
    }
  }
  const device = await adapter.requestDevice({ requiredFeatures: features, requiredLimits });
  return watch(device);
}

/**
 * Collects the device's uncaptured errors and its loss in `device.problems`
 * (strings), so that a run can fail on an error no scope caught.
 */
function watch(device) {
  device.problems = [];
  device.onuncapturederror = (ev) => {
    device.problems.push(`uncaptured ${ev.error.constructor.name}: ${ev.error.message.trim()}`);
  };
  device.expectLoss = false;
  device.lost.then((info) => {
    if (!device.expectLoss) {
      device.problems.push(`device lost (${info.reason}): ${info.message}`);
    }
  });
  return device;
}

/** Destroys a device without reporting its (intended) loss. */
export function closeDevice(device) {
  device.expectLoss = true;
  device.destroy();
}

/** An exception (a GPUPipelineError, say) as one message. */
export function errorText(e) {
  return `${e.constructor.name}${e.reason ? ` (${e.reason})` : ''}: ${String(e.message).trim()}`;
}

/**
 * Runs `fn(device)` (sync or async) inside validation, internal and
 * out-of-memory error scopes. Returns `{ value, errors }`: the errors
 * (strings) any scope caught, and a thrown exception (a rejected
 * createComputePipelineAsync, say) among them.
 */
export async function scoped(device, fn) {
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('internal');
  device.pushErrorScope('validation');
  const errors = [];
  let value;
  try {
    value = await fn(device);
  } catch (e) {
    errors.push(errorText(e));
  }
  for (const kind of ['validation', 'internal', 'out-of-memory']) {
    const e = await device.popErrorScope();
    if (e) errors.push(`${kind} error: ${e.message.trim()}`);
  }
  return { value, errors };
}

/**
 * Creates the shader module for `code` and reads Tint's diagnostics.
 * Returns `{ module, diagnostics }`: one string per error or warning (each
 * with its notes and source lines, as `file:line:col: kind: text`), plus
 * any error a scope caught; empty when Tint accepted the code cleanly.
 */
export async function compileModule(device, file, code) {
  const { value: module, errors } = await scoped(device, (d) => d.createShaderModule({ label: file, code }));
  const diagnostics = [];
  if (module) {
    const lines = code.split('\n');
    const source = (n) => (n > 0 && lines[n - 1] !== undefined ? `\n      ${n} | ${lines[n - 1].trim()}` : '');
    const info = await module.getCompilationInfo();
    let current = null;
    for (const m of info.messages) {
      const where = `${file}:${m.lineNum}:${m.linePos}`;
      if (m.type === 'info') {
        // Tint's notes follow the error or warning they explain.
        if (current) current.push(`    ${where}: note: ${m.message}${source(m.lineNum)}`);
        continue;
      }
      current = [`${where}: ${m.type}: ${m.message}${source(m.lineNum)}`];
      diagnostics.push(current);
    }
  }
  const out = diagnostics.map((d) => d.join('\n'));
  // Tint's messages already hold what a scope caught for a bad module.
  if (!out.length) out.push(...errors);
  return { module, diagnostics: out };
}

/** A buffer binding's layout type for a trace binding kind. */
const BINDING_TYPES = { uniform: 'uniform', read: 'read-only-storage', read_write: 'storage' };

/** The binding kinds the trace format allows. */
export const BINDING_KINDS = Object.keys(BINDING_TYPES);

/**
 * The explicit pipeline layout for `bindings` (binding k of group 0 has
 * kind bindings[k]), cached per device by kinds.
 */
export function pipelineLayout(device, bindings) {
  device.layouts ??= new Map();
  const key = bindings.join(',');
  let entry = device.layouts.get(key);
  if (!entry) {
    const bindGroupLayout = device.createBindGroupLayout({
      label: key,
      entries: bindings.map((kind, binding) => ({
        binding,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: BINDING_TYPES[kind] },
      })),
    });
    const layout = device.createPipelineLayout({ label: key, bindGroupLayouts: [bindGroupLayout] });
    entry = { bindGroupLayout, layout };
    device.layouts.set(key, entry);
  }
  return entry;
}

/** `{"WM":8,"WN":4}` as `WM=8 WN=4` (or `no overrides`). */
export function constantsText(constants) {
  const kv = Object.entries(constants || {});
  return kv.length ? kv.map(([k, v]) => `${k}=${v}`).join(' ') : 'no overrides';
}

/** Checks one pipeline record of the JSON; returns problems (strings). */
export function checkPipelineRecord(p, i, shaderCount) {
  const bad = [];
  const at = `pipelines[${i}]`;
  if (!Number.isInteger(p.shader) || p.shader < 0 || p.shader >= shaderCount) {
    bad.push(`${at}.shader is ${JSON.stringify(p.shader)}, not a shader index below ${shaderCount}`);
  }
  if (typeof p.entry !== 'string' || !p.entry) bad.push(`${at}.entry is not a name`);
  if (p.constants !== undefined) {
    if (typeof p.constants !== 'object' || p.constants === null || Array.isArray(p.constants)) {
      bad.push(`${at}.constants is not an object`);
    } else {
      for (const [k, v] of Object.entries(p.constants)) {
        if (typeof v !== 'number' || !Number.isFinite(v)) bad.push(`${at}.constants.${k} is not a finite number`);
      }
    }
  }
  if (!Array.isArray(p.bindings) || !p.bindings.every((b) => BINDING_KINDS.includes(b))) {
    bad.push(`${at}.bindings must be a list of ${BINDING_KINDS.join(' | ')}, got ${JSON.stringify(p.bindings)}`);
  }
  return bad;
}

/** The compute pipeline descriptor for a pipeline record. */
export function pipelineDescriptor(device, p, module, label) {
  return {
    label,
    layout: pipelineLayout(device, p.bindings).layout,
    compute: { module, entryPoint: p.entry, constants: p.constants || {} },
  };
}

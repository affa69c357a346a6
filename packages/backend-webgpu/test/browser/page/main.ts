/// <reference types="@webgpu/types" />
/**
 * The browser page of src/browser.test.ts: on `navigator.gpu`, creates the WebGPU backend and
 * checks its WGSL primitives against the float64 loops of `@pelk/conformance/reference` (the
 * suite's own references; that entry imports neither vitest nor Node) and two solvers against
 * the fixtures' float64 oracles, in float32. The test calls `window.__pelkProbe()`, then
 * `window.__pelkRunChecks()` (names in ../report.ts), and reads the JSON they return.
 *
 * Tolerances: inputs are rounded to float32 first, so the references are exact for the data the
 * GPU sees; what remains is float32 rounding of O(log T) combines per output (the conformance
 * suite's scan bound, 64·ε·log2(T + 1)·scale, and 16× that for the Kalman passes).
 */
import { evaluate, type Method, type Tensor } from '@pelk/core';
import { readModelSpec } from '@pelk/models';
import * as tf from '@tensorflow/tfjs-core';
import { diagonalKalmanReference, linearRecurrence, maxAbs, maxAbsDiff, randomArray } from '@pelk/conformance/reference';
import { createWebGpuBackend } from '../../../src/runtime.js';
import type { WebGpuBackend } from '../../../src/webgpu-backend.js';
import { type BrowserCheck, PROBE, type ProbeResult, RUN_CHECKS, type RunReport } from '../report.js';

const EPS32 = 2 ** -24;
const B = 2;
const D = 3;
/** What the Node conformance suite allows float32 solvers against the fixtures. */
const FIXTURE_TOL = 1e-4;

/** Deterministic numbers uniform in `[-scale, scale)`, rounded to float32 so the GPU sees exactly these values. */
function randomF32(n: number, seed: number, scale = 1): Float64Array {
  return randomArray(n, seed, scale).map(Math.fround);
}

function scanTolerance(T: number, scale: number): number {
  return 64 * EPS32 * Math.max(1, Math.log2(T + 1)) * Math.max(1, scale);
}

/** Throws unless `|got − want| ≤ tol` everywhere; returns the error, for the detail line. */
function compare(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: number): string {
  if (got.length !== want.length) throw new Error(`${what}: ${got.length} values, expected ${want.length}`);
  const err = maxAbsDiff(got, want);
  const line = `${what}: max |err| ${err.toExponential(2)} (tol ${tol.toExponential(2)})`;
  if (!(err <= tol)) throw new Error(line);
  return line;
}

/** Uploads host arrays as float32 tensors. */
function upload(backend: WebGpuBackend, data: ArrayLike<number>, shape: readonly number[]): Tensor {
  return backend.fromArray(data, shape, 'float32');
}

/**
 * Runs one check: its own failure, GPU validation errors raised while it ran, and any tensor it
 * left alive (in pelk's count and in tfjs's) all fail it.
 */
async function runCheck(backend: WebGpuBackend, gpuErrors: string[], name: string, body: () => Promise<string>): Promise<BrowserCheck> {
  const start = performance.now();
  const tensors = backend.memory().tensors;
  const tfTensors = tf.memory().numTensors;
  const problems: string[] = [];
  let detail = '';
  try {
    detail = await body();
  } catch (err) {
    problems.push((err as Error).message ?? String(err));
  }
  await backend.gpu.device.queue.onSubmittedWorkDone();
  for (const e of gpuErrors.splice(0)) problems.push(`WebGPU error: ${e}`);
  const leaked = backend.memory().tensors - tensors;
  const tfLeaked = tf.memory().numTensors - tfTensors;
  if (leaked !== 0 || tfLeaked !== 0) problems.push(`tensors left alive: ${leaked} (pelk), ${tfLeaked} (tfjs)`);
  const ms = performance.now() - start;
  return problems.length === 0 ? { name, ok: true, detail, ms } : { name, ok: false, detail: problems.join('; '), ms };
}

async function diagonalScan(backend: WebGpuBackend, T: number, reverse: boolean): Promise<string> {
  const a = randomF32(B * T * D, 100 + T);
  const b = randomF32(B * T * D, 300 + T);
  const s0 = randomF32(B * D, 400 + T);
  const inputs = [upload(backend, a, [B, T, D]), upload(backend, b, [B, T, D]), upload(backend, s0, [B, D])];
  const out = backend.linearScanDiagonal(inputs[0], inputs[1], inputs[2], { reverse });
  const got = await backend.read(out);
  backend.dispose([...inputs, out]);
  const want = linearRecurrence(a, b, s0, B, T, D, false, reverse);
  return compare('states', got, want, scanTolerance(T, maxAbs(want)));
}

async function denseScan(backend: WebGpuBackend, T: number, reverse: boolean): Promise<string> {
  // Entries in ±0.55 keep the 3×3 products contractive, as in the conformance suite.
  const A = randomF32(B * T * D * D, 200 + T, 0.55);
  const b = randomF32(B * T * D, 300 + T);
  const s0 = randomF32(B * D, 400 + T);
  const inputs = [upload(backend, A, [B, T, D, D]), upload(backend, b, [B, T, D]), upload(backend, s0, [B, D])];
  const out = backend.linearScanDense(inputs[0], inputs[1], inputs[2], { reverse });
  const got = await backend.read(out);
  backend.dispose([...inputs, out]);
  const want = linearRecurrence(A, b, s0, B, T, D, true, reverse);
  return compare('states', got, want, scanTolerance(T, maxAbs(want)));
}

async function kalman(backend: WebGpuBackend, T: number, r: number, smooth: boolean): Promise<string> {
  const F = randomF32(B * T * D, 500 + T, 1.3);
  const b = randomF32(B * T * D, 501 + T);
  const y = randomF32(B * T * D, 502 + T, 2);
  const s0 = randomF32(B * D, 503 + T);
  const q = 1;
  const inputs = [upload(backend, F, [B, T, D]), upload(backend, b, [B, T, D]), upload(backend, y, [B, T, D]), upload(backend, s0, [B, D])];
  const [transition, bias, observation, init] = inputs;
  const out = backend.kalmanDiagonal({ transition, bias, observation, init, processVariance: q, observationVariance: r }, { smooth });
  const mean = await backend.read(out.mean);
  const variance = await backend.read(out.covariance);
  backend.dispose([...inputs, out.mean, out.covariance]);
  const ref = diagonalKalmanReference(F, b, y, s0, { B, T, D }, q, r);
  const wantMean = smooth ? ref.smoothMean : ref.filterMean;
  const wantVariance = smooth ? ref.smoothVariance : ref.filterVariance;
  return [
    compare('means', mean, wantMean, 16 * scanTolerance(T, maxAbs(wantMean))),
    compare('variances', variance, wantVariance, 16 * scanTolerance(T, maxAbs(wantVariance))),
  ].join('; ');
}

async function fixture(backend: WebGpuBackend, name: string, method: Method): Promise<string> {
  const response = await fetch(`/fixtures/${name}.json`);
  if (!response.ok) throw new Error(`GET /fixtures/${name}.json: ${response.status}`);
  const spec = readModelSpec(await response.json());
  const oracle = spec.states!.flat();
  const result = await evaluate(spec.cell, spec.inputs, {
    backend,
    method,
    dtype: 'float32',
    initialState: spec.initialState ?? undefined,
    tolerance: 1e-5,
  });
  const states = await result.read();
  result.dispose();
  if (!result.converged) throw new Error(`not converged after ${result.iterations} iterations (residual ${result.residual})`);
  const residualTol = FIXTURE_TOL * Math.max(1, maxAbs(oracle));
  if (!(result.residual <= residualTol)) throw new Error(`residual ${result.residual} > ${residualTol}`);
  return `${compare('states vs oracle', states, oracle, FIXTURE_TOL)}; ${result.iterations} iterations`;
}

/** The checks, in order: name and body (the names are the test's `it` titles). */
function plan(): [string, (backend: WebGpuBackend) => Promise<string>][] {
  const list: [string, (backend: WebGpuBackend) => Promise<string>][] = [];
  for (const T of [1, 37, 1000]) {
    for (const reverse of [false, true]) {
      list.push([`linearScanDiagonal, T=${T}, B=${B}, D=${D}${reverse ? ', reverse' : ''}`, (be) => diagonalScan(be, T, reverse)]);
    }
  }
  for (const reverse of [false, true]) {
    list.push([`linearScanDense, T=50, B=${B}, D=${D}${reverse ? ', reverse' : ''}`, (be) => denseScan(be, 50, reverse)]);
  }
  for (const smooth of [false, true]) {
    for (const r of [0.5, 100]) {
      list.push([`kalmanDiagonal ${smooth ? 'smoother' : 'filter'}, T=33, B=${B}, D=${D}, σ²=${r}`, (be) => kalman(be, 33, r, smooth)]);
    }
  }
  for (const name of ['gru-torch-small', 'elman-torch-small']) {
    for (const method of ['quasi-deer', 'quasi-elk'] as const) {
      list.push([`${name} with ${method} (float32) matches the float64 oracle`, (be) => fixture(be, name, method)]);
    }
  }
  return list;
}

/** Whether the page has a WebGPU adapter, and the names of the checks {@link runChecks} runs. */
export async function probe(): Promise<ProbeResult> {
  if (!navigator.gpu) return { available: false, reason: `navigator.gpu is missing (secure context: ${isSecureContext})` };
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) return { available: false, reason: 'navigator.gpu.requestAdapter() returned null' };
  const { vendor, architecture, description } = adapter.info;
  return { available: true, adapter: { vendor, architecture, description }, checks: plan().map(([name]) => name) };
}

/**
 * Runs every check on a fresh backend, then destroys it. Never throws: failing to create or
 * destroy the backend is reported in `error`.
 */
export async function runChecks(): Promise<RunReport> {
  let backend: WebGpuBackend;
  try {
    backend = await createWebGpuBackend();
  } catch (err) {
    return { device: '', checks: [], error: `createWebGpuBackend: ${(err as Error).message}` };
  }
  // Validation errors arrive asynchronously; runCheck attributes them to the check that ran.
  const gpuErrors: string[] = [];
  backend.gpu.device.addEventListener('uncapturederror', (e) => {
    gpuErrors.push((e as GPUUncapturedErrorEvent).error.message);
  });
  const checks: BrowserCheck[] = [];
  for (const [name, body] of plan()) checks.push(await runCheck(backend, gpuErrors, name, () => body(backend)));
  const device = backend.capabilities.device;
  try {
    await backend.destroy();
  } catch (err) {
    return { device, checks, error: `destroy: ${(err as Error).message}` };
  }
  return { device, checks };
}

Object.assign(window, { [PROBE]: probe, [RUN_CHECKS]: runChecks });

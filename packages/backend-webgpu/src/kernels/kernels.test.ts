/// <reference types="@webgpu/types" />
/**
 * The WGSL kernels against straightforward float64 loops, on whatever WebGPU adapter Node finds
 * (Dawn via the `webgpu` package; on a machine without a GPU point VK_ICD_FILENAMES at a
 * software Vulkan such as SwiftShader). Without an adapter the suite is skipped with the reason,
 * unless PELK_REQUIRE_WEBGPU=1, which turns that into a failure.
 *
 * Tolerances: inputs are rounded to float32 first, so the float64 reference is exact for the data
 * the GPU sees; what remains is float32 rounding of contractive recurrences, bounded by a modest
 * multiple of 2⁻²⁴ relative to the magnitudes involved.
 */
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { recorderFor } from '../fused/recorder.js';
import { denseScan, diagonalScan, type KernelOptions, kalmanDiagonal, reduceLevels } from './index.js';
import { diagonalAlgebra } from './diagonal-element.wgsl.js';
import { kalmanFilterAlgebra } from './kalman-filter-element.wgsl.js';
import { stagedScan, tileLayout } from './scan-kernel.wgsl.js';

const EPS32 = 2 ** -24;

async function setUp(): Promise<WebGPUBackend | string> {
  try {
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    const gpu = create([]);
    // Node has no `navigator` before v21 and a read-only one after: define ours either way.
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
    const adapter = await gpu.requestAdapter();
    if (!adapter) return 'no WebGPU adapter (without a GPU, set VK_ICD_FILENAMES to a software Vulkan ICD such as SwiftShader)';
    await import('@tensorflow/tfjs-backend-webgpu');
    if (!(await tf.setBackend('webgpu'))) return 'tfjs could not initialise its webgpu backend';
    return tf.backend() as WebGPUBackend;
  } catch (e) {
    return `WebGPU unavailable: ${(e as Error).message}`;
  }
}

const env = await setUp();
const backend = typeof env === 'string' ? null : env;
const skipReason = typeof env === 'string' ? env : '';

// Shader compilation and validation errors surface asynchronously; collect them so a broken
// kernel fails the test that ran it rather than just producing garbage.
const gpuErrors: string[] = [];
backend?.device.addEventListener('uncapturederror', (e) => {
  gpuErrors.push((e as GPUUncapturedErrorEvent).error.message);
});

afterEach(async () => {
  if (!backend) return;
  await backend.device.queue.onSubmittedWorkDone();
  const errors = gpuErrors.splice(0);
  expect(errors, 'WebGPU errors').toEqual([]);
});

afterAll(() => {
  if (!backend) return;
  const device = backend.device;
  // Dawn keeps the process alive while a device lives.
  tf.engine().removeBackend('webgpu');
  device.destroy();
});

if (!backend && process.env.PELK_REQUIRE_WEBGPU === '1') {
  describe('WebGPU kernels', () => {
    it('needs a WebGPU adapter (PELK_REQUIRE_WEBGPU=1)', () => {
      throw new Error(skipReason);
    });
  });
}

/** Deterministic float32 values uniform in [lo, hi). */
function rand(n: number, seed: number, lo = -1, hi = 1): Float64Array {
  let s = seed >>> 0;
  return Float64Array.from({ length: n }, () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
    return Math.fround(lo + (hi - lo) * u);
  });
}

// ---- float64 references ----------------------------------------------------------------------

/** Time index visited at scan step u. */
const at = (T: number, u: number, reverse: boolean) => (reverse ? T - 1 - u : u);

function diagonalReference(a: Float64Array, b: Float64Array, init: Float64Array, B: number, T: number, D: number, reverse: boolean): Float64Array {
  const out = new Float64Array(B * T * D);
  for (let bi = 0; bi < B; bi++) {
    for (let d = 0; d < D; d++) {
      let s = init[bi * D + d];
      for (let u = 0; u < T; u++) {
        const i = (bi * T + at(T, u, reverse)) * D + d;
        s = a[i] * s + b[i];
        out[i] = s;
      }
    }
  }
  return out;
}

function denseReference(A: Float64Array, b: Float64Array, init: Float64Array, B: number, T: number, D: number, reverse: boolean): Float64Array {
  const out = new Float64Array(B * T * D);
  for (let bi = 0; bi < B; bi++) {
    let s = Array.from(init.subarray(bi * D, bi * D + D));
    for (let u = 0; u < T; u++) {
      const t = at(T, u, reverse);
      const next = new Array<number>(D);
      for (let i = 0; i < D; i++) {
        let acc = b[(bi * T + t) * D + i];
        for (let j = 0; j < D; j++) acc += A[((bi * T + t) * D + i) * D + j] * s[j];
        next[i] = acc;
      }
      s = next;
      for (let i = 0; i < D; i++) out[(bi * T + t) * D + i] = s[i];
    }
  }
  return out;
}

interface Moments {
  mean: Float64Array;
  variance: Float64Array;
}

/** Sequential scalar Kalman filter and RTS smoother per (batch, channel). */
function kalmanReference(
  F: Float64Array,
  bias: Float64Array,
  y: Float64Array,
  init: Float64Array,
  q: number,
  r: number,
  B: number,
  T: number,
  D: number,
): { filtered: Moments; smoothed: Moments } {
  const n = B * T * D;
  const fm = new Float64Array(n);
  const fP = new Float64Array(n);
  const sm = new Float64Array(n);
  const sP = new Float64Array(n);
  for (let bi = 0; bi < B; bi++) {
    for (let d = 0; d < D; d++) {
      const idx = (t: number) => (bi * T + t) * D + d;
      let m = init[bi * D + d];
      let P = 0;
      for (let t = 0; t < T; t++) {
        const i = idx(t);
        const mPred = F[i] * m + bias[i];
        const PPred = F[i] * F[i] * P + q;
        const K = PPred / (PPred + r);
        m = mPred + K * (y[i] - mPred);
        P = (1 - K) * PPred;
        fm[i] = m;
        fP[i] = P;
      }
      sm[idx(T - 1)] = fm[idx(T - 1)];
      sP[idx(T - 1)] = fP[idx(T - 1)];
      for (let t = T - 2; t >= 0; t--) {
        const i = idx(t);
        const j = idx(t + 1);
        const mPred = F[j] * fm[i] + bias[j];
        const PPred = F[j] * F[j] * fP[i] + q;
        const G = (fP[i] * F[j]) / PPred;
        sm[i] = fm[i] + G * (sm[j] - mPred);
        sP[i] = fP[i] + G * G * (sP[j] - PPred);
      }
    }
  }
  return { filtered: { mean: fm, variance: fP }, smoothed: { mean: sm, variance: sP } };
}

// ---- helpers ---------------------------------------------------------------------------------

const upload = (data: Float64Array, shape: number[]) => tf.tensor(Float32Array.from(data), shape, 'float32');

/** Largest |got − want| relative to max(floor, max |want|). */
function relError(got: ArrayLike<number>, want: Float64Array, floor = 1): number {
  expect(got.length).toBe(want.length);
  let scale = floor;
  for (const w of want) scale = Math.max(scale, Math.abs(w));
  let err = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]);
    err = Number.isNaN(e) ? Number.POSITIVE_INFINITY : Math.max(err, e);
  }
  return err / scale;
}

/**
 * Runs `fn`, checking that it leaks no tensor or GPU data id (only its returned tensors are new)
 * and counting its dispatches (tfjs's programs and pelk's recorded kernels).
 */
function tracked(fn: () => tf.Tensor[]): { outs: tf.Tensor[]; dispatches: number } {
  const be = backend!;
  const recorder = recorderFor(be);
  const tensorsBefore = tf.memory().numTensors;
  const idsBefore = be.numDataIds();
  const dispatchesBefore = recorder.counters().dispatches;
  const outs = fn();
  expect(tf.memory().numTensors).toBe(tensorsBefore + outs.length);
  expect(be.numDataIds()).toBe(idsBefore + outs.length);
  return { outs, dispatches: recorder.counters().dispatches - dispatchesBefore };
}

/** Reads tensors and disposes them. */
async function readAll(ts: tf.Tensor[]): Promise<Float32Array[]> {
  const data = await Promise.all(ts.map((t) => t.data() as Promise<Float32Array>));
  tf.dispose(ts);
  return data;
}

/** Expected dispatches of one chunked scan: a reduce and a rescan per level, and the top rescan. */
const expectedDispatches = (T: number, chunk: number) => 2 * reduceLevels(T, chunk) + 1;

// ---- tests -----------------------------------------------------------------------------------

describe.skipIf(!backend)(`WebGPU kernels${backend ? '' : ` — skipped: ${skipReason}`}`, () => {
  describe('diagonalScan', () => {
    const cases: { B: number; T: number; D: number; chunk?: number }[] = [
      { B: 2, T: 1, D: 3 },
      { B: 1, T: 1, D: 1, chunk: 2 },
      { B: 2, T: 2, D: 5, chunk: 2 },
      { B: 2, T: 7, D: 5, chunk: 3 },
      { B: 3, T: 100, D: 5, chunk: 3 },
      { B: 1, T: 257, D: 1, chunk: 2 },
      { B: 2, T: 32, D: 3 },
      { B: 2, T: 33, D: 3 },
      { B: 2, T: 1025, D: 3 },
      // Tile layouts: chunk groups that straddle batch entries (D = 1, 7), a chunk that is not a
      // whole number of sub-tiles (11), one group per workgroup (33, 64), channel blocks (65, 130).
      { B: 3, T: 500, D: 1, chunk: 11 },
      { B: 2, T: 300, D: 7, chunk: 11 },
      { B: 2, T: 100, D: 16 },
      { B: 1, T: 70, D: 33, chunk: 5 },
      { B: 2, T: 90, D: 64 },
      { B: 2, T: 40, D: 65, chunk: 3 },
      { B: 1, T: 35, D: 130 },
    ];
    for (const { B, T, D, chunk } of cases) {
      for (const [reverse, scanLayout] of [[false, 'staged'], [true, 'staged'], [false, 'direct'], [true, 'direct']] as const) {
        it(`B=${B} T=${T} D=${D} chunk=${chunk ?? 'default'}${reverse ? ' reverse' : ''} ${scanLayout}`, async () => {
          const seed = B * 1000 + T * 10 + D + (reverse ? 7 : 0) + (scanLayout === 'direct' ? 3 : 0);
          const a = rand(B * T * D, seed, -0.95, 0.95);
          const b = rand(B * T * D, seed + 1);
          const init = rand(B * D, seed + 2, -2, 2);
          const ta = upload(a, [B, T, D]);
          const tb = upload(b, [B, T, D]);
          const ti = upload(init, [B, D]);
          const options: KernelOptions = { ...(chunk ? { chunk } : {}), scanLayout };
          const { outs, dispatches } = tracked(() => [diagonalScan(backend!, ta, tb, ti, reverse, options)]);
          expect(outs[0].shape).toEqual([B, T, D]);
          expect(dispatches).toBe(expectedDispatches(T, chunk ?? 32));
          const [got] = await readAll(outs);
          tf.dispose([ta, tb, ti]);
          expect(relError(got, diagonalReference(a, b, init, B, T, D, reverse))).toBeLessThan(64 * EPS32);
        });
      }
    }

    it('long sequence: B=2 T=5000 D=3, default chunk, forward and reverse, both layouts', async () => {
      const [B, T, D] = [2, 5000, 3];
      const a = rand(B * T * D, 11, -0.95, 0.95);
      const b = rand(B * T * D, 12);
      const init = rand(B * D, 13);
      const ta = upload(a, [B, T, D]);
      const tb = upload(b, [B, T, D]);
      const ti = upload(init, [B, D]);
      for (const [reverse, scanLayout] of [[false, 'staged'], [true, 'staged'], [false, 'direct'], [true, 'direct']] as const) {
        const { outs, dispatches } = tracked(() => [diagonalScan(backend!, ta, tb, ti, reverse, { scanLayout })]);
        expect(dispatches).toBe(5);
        const [got] = await readAll(outs);
        expect(relError(got, diagonalReference(a, b, init, B, T, D, reverse))).toBeLessThan(64 * EPS32);
      }
      tf.dispose([ta, tb, ti]);
    });

    it('a million steps: B=1 T=1000003 D=1, default chunk (7 dispatches), staged', async () => {
      const [B, T, D] = [1, 1_000_003, 1];
      const a = rand(T, 21, -0.99, 0.99);
      const b = rand(T, 22);
      const init = rand(1, 23);
      const ta = upload(a, [B, T, D]);
      const tb = upload(b, [B, T, D]);
      const ti = upload(init, [B, D]);
      for (const reverse of [false, true]) {
        const { outs, dispatches } = tracked(() => [diagonalScan(backend!, ta, tb, ti, reverse, { scanLayout: 'staged' })]);
        expect(dispatches).toBe(7);
        const [got] = await readAll(outs);
        expect(relError(got, diagonalReference(a, b, init, B, T, D, reverse))).toBeLessThan(64 * EPS32);
      }
      tf.dispose([ta, tb, ti]);
    });

    it('distinguishes batch entries and channels (no cross-talk)', async () => {
      // a = 1 everywhere: s_t = init + Σ b, so each (batch, channel) sum is easy to check exactly.
      const [B, T, D] = [3, 9, 2];
      const b = Float64Array.from({ length: B * T * D }, (_, i) => (i % D) + 10 * Math.floor(i / (T * D)));
      const init = Float64Array.from({ length: B * D }, (_, i) => 100 * i);
      const ta = tf.ones([B, T, D]);
      const tb = upload(b, [B, T, D]);
      const ti = upload(init, [B, D]);
      const [got] = await readAll([diagonalScan(backend!, ta, tb, ti, false, { chunk: 2 })]);
      tf.dispose([ta, tb, ti]);
      expect(Array.from(got)).toEqual(Array.from(diagonalReference(new Float64Array(B * T * D).fill(1), b, init, B, T, D, false)));
    });

    it('handles T = 0 and rejects bad shapes and chunks', async () => {
      const e = tf.zeros([2, 0, 3]);
      const i = tf.zeros([2, 3]);
      const [got] = await readAll([diagonalScan(backend!, e, e, i, false)]);
      expect(got.length).toBe(0);
      const a = tf.zeros([2, 4, 3]);
      expect(() => diagonalScan(backend!, a, e, i, false)).toThrow(/shape/);
      expect(() => diagonalScan(backend!, a, a, i, false, { chunk: 1 })).toThrow(/chunk/);
      tf.dispose([e, i, a]);
    });
  });

  describe('denseScan', () => {
    const cases: { B: number; T: number; D: number; chunk?: number; workgroupMemory?: boolean }[] = [
      { B: 2, T: 1, D: 1 },
      { B: 2, T: 1, D: 3 },
      { B: 2, T: 5, D: 1, chunk: 2 },
      { B: 2, T: 37, D: 2, chunk: 3 },
      { B: 3, T: 37, D: 3, chunk: 3 },
      { B: 2, T: 50, D: 4, chunk: 2 },
      { B: 2, T: 37, D: 3, chunk: 3, workgroupMemory: false },
      { B: 1, T: 40, D: 4, chunk: 4, workgroupMemory: false },
      { B: 2, T: 17, D: 5 },
      { B: 2, T: 300, D: 3 },
      { B: 1, T: 23, D: 12, chunk: 3 },
      { B: 2, T: 11, D: 20, chunk: 3 },
      { B: 1, T: 7, D: 65, chunk: 3 },
    ];
    for (const { B, T, D, chunk, workgroupMemory } of cases) {
      for (const reverse of [false, true]) {
        const label = `B=${B} T=${T} D=${D} chunk=${chunk ?? 'default'}${workgroupMemory === false ? ' global-memory reduce' : ''}${reverse ? ' reverse' : ''}`;
        it(label, async () => {
          const seed = 7 + B * 1000 + T * 10 + D + (reverse ? 3 : 0);
          // Entries in ±0.9/D: every row's absolute sum stays below 0.9, so the maps contract.
          const A = rand(B * T * D * D, seed, -0.9 / D, 0.9 / D);
          const b = rand(B * T * D, seed + 1);
          const init = rand(B * D, seed + 2, -2, 2);
          const tA = upload(A, [B, T, D, D]);
          const tb = upload(b, [B, T, D]);
          const ti = upload(init, [B, D]);
          const options: KernelOptions = { ...(chunk ? { chunk } : {}), ...(workgroupMemory === undefined ? {} : { denseWorkgroupMemory: workgroupMemory }) };
          const { outs, dispatches } = tracked(() => [denseScan(backend!, tA, tb, ti, reverse, options)]);
          expect(outs[0].shape).toEqual([B, T, D]);
          expect(dispatches).toBe(expectedDispatches(T, chunk ?? 16));
          const [got] = await readAll(outs);
          tf.dispose([tA, tb, ti]);
          expect(relError(got, denseReference(A, b, init, B, T, D, reverse))).toBeLessThan(64 * EPS32 * Math.max(1, D / 4));
        });
      }
    }
  });

  describe('kalmanDiagonal', () => {
    const cases: { B: number; T: number; D: number; q: number; r: number; chunk?: number }[] = [
      { B: 2, T: 1, D: 3, q: 1, r: 0.5 },
      { B: 2, T: 2, D: 1, q: 1, r: 0.5, chunk: 2 },
      { B: 2, T: 7, D: 5, q: 1, r: 0.5, chunk: 2 },
      { B: 3, T: 100, D: 3, q: 1, r: 100, chunk: 3 },
      { B: 2, T: 100, D: 5, q: 0.3, r: 0.01, chunk: 3 },
      { B: 1, T: 129, D: 2, q: 1, r: 1e6, chunk: 2 },
      { B: 2, T: 300, D: 3, q: 1, r: 2 },
      // Even positions run staged, odd ones direct: D = 70 direct, D = 1 with partial sub-tiles staged.
      { B: 1, T: 50, D: 70, q: 0.5, r: 3, chunk: 4 },
      { B: 2, T: 200, D: 1, q: 1, r: 2, chunk: 11 },
    ];
    for (const [n, { B, T, D, q, r, chunk }] of cases.entries()) {
      // Alternate the layouts (each pair of cases covers both): a Kalman kernel's first compile is slow on SwiftShader.
      const scanLayout = n % 2 === 0 ? 'staged' : 'direct';
      it(`B=${B} T=${T} D=${D} q=${q} r=${r} chunk=${chunk ?? 'default'} ${scanLayout}`, async () => {
        const seed = 31 + B * 1000 + T * 10 + D;
        const F = rand(B * T * D, seed, -1.2, 1.2);
        const bias = rand(B * T * D, seed + 1, -0.5, 0.5);
        const y = rand(B * T * D, seed + 2, -2, 2);
        const init = rand(B * D, seed + 3);
        const ref = kalmanReference(F, bias, y, init, q, r, B, T, D);
        const tF = upload(F, [B, T, D]);
        const tb = upload(bias, [B, T, D]);
        const ty = upload(y, [B, T, D]);
        const ti = upload(init, [B, D]);
        const options: KernelOptions = { ...(chunk ? { chunk } : {}), scanLayout };
        const c = chunk ?? 32;
        for (const smooth of [false, true]) {
          const { outs, dispatches } = tracked(() => {
            const m = kalmanDiagonal(backend!, tF, tb, ty, ti, q, r, smooth, options);
            return [m.mean, m.variance];
          });
          expect(dispatches).toBe(expectedDispatches(T, c) * (smooth ? 2 : 1));
          const [mean, variance] = await readAll(outs);
          const want = smooth ? ref.smoothed : ref.filtered;
          expect(relError(mean, want.mean), `${smooth ? 'smoothed' : 'filtered'} mean`).toBeLessThan(256 * EPS32);
          expect(relError(variance, want.variance, 0), `${smooth ? 'smoothed' : 'filtered'} variance`).toBeLessThan(256 * EPS32);
        }
        tf.dispose([tF, tb, ty, ti]);
      });
    }

    it('long sequence: B=1 T=4000 D=2, default chunk, staged', async () => {
      const [B, T, D, q, r] = [1, 4000, 2, 1, 10];
      const F = rand(B * T * D, 91, -1.1, 1.1);
      const bias = rand(B * T * D, 92, -0.5, 0.5);
      const y = rand(B * T * D, 93, -3, 3);
      const init = rand(B * D, 94);
      const ref = kalmanReference(F, bias, y, init, q, r, B, T, D);
      const ts = [upload(F, [B, T, D]), upload(bias, [B, T, D]), upload(y, [B, T, D]), upload(init, [B, D])];
      const { outs } = tracked(() => {
        const m = kalmanDiagonal(backend!, ts[0], ts[1], ts[2], ts[3], q, r, true, { scanLayout: 'staged' });
        return [m.mean, m.variance];
      });
      const [mean, variance] = await readAll(outs);
      tf.dispose(ts);
      expect(relError(mean, ref.smoothed.mean)).toBeLessThan(256 * EPS32);
      expect(relError(variance, ref.smoothed.variance, 0)).toBeLessThan(256 * EPS32);
    });

    it('rejects non-positive noise variances', () => {
      const x = tf.zeros([1, 2, 1]);
      const i = tf.zeros([1, 1]);
      expect(() => kalmanDiagonal(backend!, x, x, x, i, 0, 1, false)).toThrow(/q/);
      expect(() => kalmanDiagonal(backend!, x, x, x, i, 1, -1, false)).toThrow(/r/);
      tf.dispose([x, i]);
    });
  });
});

describe('tileLayout (the chunked scans’ workgroup shape)', () => {
  it('covers small D with whole chunk groups and splits large D into equal channel blocks', () => {
    const at = (D: number) => tileLayout(diagonalAlgebra, D, 16384);
    expect(at(1)).toEqual({ W: 1, blocks: 1, G: 64, lanes: 64, staged: true, S: 8 });
    expect(at(7)).toEqual({ W: 7, blocks: 1, G: 9, lanes: 63, staged: true, S: 8 });
    expect(at(33)).toEqual({ W: 33, blocks: 1, G: 1, lanes: 33, staged: true, S: 8 });
    expect(at(64)).toEqual({ W: 64, blocks: 1, G: 1, lanes: 64, staged: true, S: 8 });
    expect(at(65)).toEqual({ W: 33, blocks: 2, G: 1, lanes: 33, staged: true, S: 8 });
    expect(at(130)).toEqual({ W: 44, blocks: 3, G: 1, lanes: 44, staged: true, S: 8 });
  });

  it('stages only on a GPU and only below D = 32, unless told', () => {
    expect(stagedScan('auto', 16, false)).toBe(true);
    expect(stagedScan('auto', 32, false)).toBe(false);
    expect(stagedScan('auto', 1, true)).toBe(false);
    expect(stagedScan('staged', 64, true)).toBe(true);
    expect(stagedScan('direct', 1, false)).toBe(false);
    expect(tileLayout(diagonalAlgebra, 7, 16384, false)).toEqual({ W: 7, blocks: 1, G: 1, lanes: 64, staged: false, S: 1 });
    expect(() => stagedScan('fast' as never, 4, false)).toThrow(/scanLayout must be 'auto', 'staged' or 'direct', got "fast"/);
  });

  it('shortens the sub-tile to fit the workgroup memory, and refuses when one step does not fit', () => {
    // Kalman filter: 5 element + 2 state floats per step; 64 lanes × (8 + 1) × 7 × 4 bytes = 16,128.
    expect(tileLayout(kalmanFilterAlgebra, 1, 16384).S).toBe(8);
    expect(tileLayout(kalmanFilterAlgebra, 1, 16000).S).toBe(4);
    expect(tileLayout(kalmanFilterAlgebra, 1, 4 * 7 * 64 * 2).S).toBe(1);
    expect(() => tileLayout(kalmanFilterAlgebra, 1, 1000)).toThrow(/workgroup memory/);
  });
});

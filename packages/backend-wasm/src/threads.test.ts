/**
 * Worker threads: every kernel that splits its work across threads gives what one thread gives —
 * exactly where the split does not change the arithmetic (rows, elements, batch entries), and to
 * rounding where it does (a scan split in time adds the carried state at the end of a chunk).
 */
import { hostAdjointSweep, maxAbs, maxAbsDiff } from '@pelk/conformance';
import { type FusedCell, type RnnProgram, type Tensor, evaluate } from '@pelk/core';
import { elman, gru, lstm } from '@pelk/models';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adjointWindow } from './program-kernels.js';
import { TIME_SPLIT_THREADS, type WasmBackend, createWasmBackend } from './wasm-backend.js';

let one: WasmBackend;
let two: WasmBackend;
/** Three threads (more than this machine may have): one sequence's scan splits in time from three on. */
let three: WasmBackend;

beforeAll(async () => {
  one = await createWasmBackend({ memoryBytes: 2 ** 28, threads: 1 });
  two = await createWasmBackend({ memoryBytes: 2 ** 28, threads: 2 });
  three = await createWasmBackend({ memoryBytes: 2 ** 28, threads: TIME_SPLIT_THREADS });
});
afterAll(() => {
  one.destroy();
  two.destroy();
  three.destroy();
});

/** Deterministic values in [−scale, scale). */
function values(n: number, seed: number, scale = 1): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => scale * Math.sin(seed * 12.9898 + i * 78.233) * 0.999);
}

async function both<T>(run: (b: WasmBackend) => Promise<T> | T, many = two): Promise<[T, T]> {
  return [await run(one), await run(many)];
}

describe('threads', () => {
  it('run with the threads asked for, and say so', () => {
    expect([one.threads, two.threads]).toEqual([1, 2]);
    expect(two.capabilities.device).toMatch(/2 threads/);
  });

  for (const dtype of ['float64', 'float32'] as const) {
    it(`${dtype}: elementwise ops, sanitize, reductions: the same values and counts as one thread`, async () => {
      const n = 200_003; // above the split threshold, not a multiple of the alignment
      const x = values(n, 1, 3);
      x[7] = Number.NaN;
      x[150_001] = Number.POSITIVE_INFINITY;
      x[199_999] = 5e8;
      const y = values(n, 2);
      const [r1, r2] = await both(async (b) => {
        const tx = b.fromArray(x, [n], dtype);
        const ty = b.fromArray(y, [n], dtype);
        const sum = b.binary('add', tx, ty);
        const clean = b.sanitize(sum, 1e8);
        const out = {
          sum: Float64Array.from(await b.read(sum)),
          clean: Float64Array.from(await b.read(clean.value)),
          counts: [await clean.nonFinite, await clean.clipped],
          maxAbsDiff: await b.maxAbsDiff(clean.value, ty),
          maxAbsNaN: await b.maxAbs(sum),
          sumSq: await b.sumSquaredDiff(clean.value, ty),
        };
        b.dispose([tx, ty, sum, clean.value]);
        return out;
      });
      expect(r2.sum).toEqual(r1.sum);
      expect(r2.clean).toEqual(r1.clean);
      expect(r2.counts).toEqual([2, 1]);
      expect(r1.counts).toEqual([2, 1]);
      expect(r2.maxAbsDiff).toBe(r1.maxAbsDiff);
      expect(r2.maxAbsNaN).toBeNaN();
      expect(r1.maxAbsNaN).toBeNaN();
      expect(Math.abs(r2.sumSq - r1.sumSq)).toBeLessThanOrEqual(1e-12 * r1.sumSq);
    });

    for (const [B, T, D] of [
      [1, 40_000, 5],
      [3, 30_000, 4],
    ] as const) {
      for (const reverse of [false, true]) {
        it(`${dtype}: the diagonal scan, B=${B}, T=${T}${reverse ? ', reverse' : ''}, split ${B === 1 ? `in time on ${TIME_SPLIT_THREADS} threads (carries fixed up)` : 'by batch entry on 2 threads'}`, async () => {
          const a = values(B * T * D, 3, 1); // |a| < 1: a contractive recurrence
          const bb = values(B * T * D, 4, 1);
          const init = values(B * D, 5, 2);
          const [s1, s2] = await both(async (b) => {
            const t = [b.fromArray(a, [B, T, D], dtype), b.fromArray(bb, [B, T, D], dtype), b.fromArray(init, [B, D], dtype)];
            const s = b.linearScanDiagonal(t[0], t[1], t[2], { reverse });
            const out = Float64Array.from(await b.read(s));
            b.dispose([...t, s]);
            return out;
          }, B === 1 ? three : two);
          if (B > 1) expect(s2).toEqual(s1);
          else {
            // Different association order: within a few roundoffs of the values' scale.
            const eps = dtype === 'float64' ? 2 ** -53 : 2 ** -24;
            let d = 0;
            for (let i = 0; i < s1.length; i++) d = Math.max(d, Math.abs(s1[i] - s2[i]));
            expect(d).toBeLessThanOrEqual(64 * eps * 10);
          }
        });
      }
    }

    it(`${dtype}: the dense scan, B=3, forward and reverse, split by batch entry: the same values as one thread`, async () => {
      const [B, T, D] = [3, 2000, 6];
      const A = values(B * T * D * D, 10, 0.3);
      const bb = values(B * T * D, 11);
      const init = values(B * D, 12);
      const [s1, s2] = await both(async (b) => {
        const t = [b.fromArray(A, [B, T, D, D], dtype), b.fromArray(bb, [B, T, D], dtype), b.fromArray(init, [B, D], dtype)];
        const fwd = b.linearScanDense(t[0], t[1], t[2]);
        const rev = b.linearScanDense(t[0], t[1], t[2], { reverse: true });
        const out = [Float64Array.from(await b.read(fwd)), Float64Array.from(await b.read(rev))];
        b.dispose([...t, fwd, rev]);
        return out;
      });
      expect(s2).toEqual(s1);
    });

    it(`${dtype}: the diagonal Kalman filter and smoother, channels split across threads: the same moments as one thread`, async () => {
      const [B, T, D] = [2, 10_000, 8];
      const [F, bb, y, init] = [values(B * T * D, 13, 0.9), values(B * T * D, 14), values(B * T * D, 15, 2), values(B * D, 16)];
      const [r1, r2] = await both(async (b) => {
        const t = [b.fromArray(F, [B, T, D], dtype), b.fromArray(bb, [B, T, D], dtype), b.fromArray(y, [B, T, D], dtype), b.fromArray(init, [B, D], dtype)];
        const model = { transition: t[0], bias: t[1], observation: t[2], init: t[3], processVariance: 1, observationVariance: 0.5 };
        const out: Float64Array[] = [];
        for (const smooth of [false, true]) {
          const { mean, covariance } = b.kalmanDiagonal(model, { smooth });
          out.push(Float64Array.from(await b.read(mean)), Float64Array.from(await b.read(covariance)));
          b.dispose([mean, covariance]);
        }
        b.dispose(t);
        return out;
      });
      expect(r2).toEqual(r1);
    });

    it(`${dtype}: the dense Kalman filter and smoother, batch entries split across threads: the same moments as one thread`, async () => {
      const [B, T, D] = [3, 300, 5];
      const [F, bb, y, init] = [values(B * T * D * D, 17, 0.4), values(B * T * D, 18), values(B * T * D, 19, 2), values(B * D, 20)];
      const [r1, r2] = await both(async (b) => {
        const t = [b.fromArray(F, [B, T, D, D], dtype), b.fromArray(bb, [B, T, D], dtype), b.fromArray(y, [B, T, D], dtype), b.fromArray(init, [B, D], dtype)];
        const model = { transition: t[0], bias: t[1], observation: t[2], init: t[3], processVariance: 1, observationVariance: 0.5 };
        const out: Float64Array[] = [];
        for (const smooth of [false, true]) {
          const { mean, covariance } = b.kalmanDense(model, { smooth });
          out.push(Float64Array.from(await b.read(mean)), Float64Array.from(await b.read(covariance)));
          b.dispose([mean, covariance]);
        }
        b.dispose(t);
        return out;
      });
      expect(r2).toEqual(r1);
    });

    it(`${dtype}: fused GRU and LSTM kernels (projection, linearisation by chunks of time or batch, sweep, rollout) equal one thread's`, async () => {
      for (const [cell, B] of [
        [gru.random({ inputSize: 3, hiddenSize: 6, seed: 1 }), 1],
        [lstm.random({ inputSize: 3, hiddenSize: 5, seed: 2 }), 3],
      ] as const) {
        const T = 1000;
        const D = cell.stateSize;
        const u = values(B * T * 3, 6);
        const s = values(B * T * D, 7, 0.8);
        const s0 = values(B * D, 8, 0.8);
        const [r1, r2] = await both(async (b) => {
          const inputs = b.fromArray(u, [B, T, 3], dtype);
          const states = b.fromArray(s, [B, T, D], dtype);
          const init = b.fromArray(s0, [B, D], dtype);
          const fused = b.bindProgram(cell.program(), { dtype, inputs, batch: B, steps: T })!;
          const out: Record<string, Float64Array | number> = {};
          for (const kind of ['dense', 'diagonal'] as const) {
            const lin = fused.linearize(states, init, { kind, sumSquares: true });
            lin.advance(100); // a short window (split by batch entry), then a long one (split in time)
            lin.advance(T);
            const { residual, sumSquares } = lin.finish();
            out[`${kind} jacobian`] = Float64Array.from(await b.read(lin.jacobian));
            out[`${kind} defect`] = Float64Array.from(await b.read(lin.defect));
            out[`${kind} residual`] = await residual;
            out[`${kind} sumSquares`] = await sumSquares;
            b.dispose([lin.jacobian, lin.defect]);
          }
          const prev = b.shiftTime(states, init);
          const swept = fused.apply(prev);
          out.apply = Float64Array.from(await b.read(swept));
          const rollout = fused.rollout(init);
          rollout.advance(333);
          rollout.advance(T);
          out.rollout = Float64Array.from(await b.read(rollout.states));
          b.dispose([inputs, states, init, prev, swept, rollout.states]);
          fused.dispose();
          return out;
        });
        for (const key of Object.keys(r1)) {
          if (key.endsWith('sumSquares')) expect(Math.abs((r2[key] as number) - (r1[key] as number)), key).toBeLessThanOrEqual(1e-12 * (r1[key] as number));
          else expect(r2[key], `${cell.kind} ${key}`).toEqual(r1[key]);
        }
      }
    });
  }

  for (const dtype of ['float64', 'float32'] as const) {
    it(`${dtype}: the fused adjoint sweep, over several windows of steps per advance, gives on two threads exactly what one thread gives`, async () => {
      // Every kind, an odd number of gate rows (the GRU with H = 47), and advances longer than a
      // window (src/program-kernels.ts), with gate rows and steps enough to split across threads.
      const [B, I] = [3, 5];
      const gruProgram = gru.random({ inputSize: I, hiddenSize: 47, seed: 4 }).program();
      const programs: RnnProgram[] = [
        gruProgram,
        { ...gru.random({ inputSize: I, hiddenSize: 48, seed: 6 }).program(), resetAfter: false },
        lstm.random({ inputSize: I, hiddenSize: 32, seed: 5 }).program(),
        elman.random({ inputSize: I, hiddenSize: 40, seed: 7 }).program(),
      ];
      for (const program of programs) {
        const D = program.stateSize;
        const label = `${program.kind}${program.resetAfter === false ? ' (reset first)' : ''}`;
        const window = adjointWindow(program, B, Number.POSITIVE_INFINITY, dtype === 'float64').steps;
        const T = 2 * window + 40;
        const [u, prev, g] = [values(B * T * I, 21, 1.5), values(B * T * D, 22, 0.9), values(B * T * D, 23)];
        const [r1, r2] = await both(async (b) => {
          const owned: Tensor[] = [];
          let fused: FusedCell | undefined;
          try {
            const keep = (t: Tensor) => {
          owned.push(t);
          return t;
        };
            const inputs = keep(b.fromArray(u, [B, T, I], dtype));
            fused = b.bindProgram(program, { dtype, inputs, batch: B, steps: T })!;
            const sweep = fused.adjoint!(keep(b.fromArray(prev, [B, T, D], dtype)), keep(b.fromArray(g, [B, T, D], dtype)), { inputs: true });
            expect(sweep.advance(window + 7)).toBe(window + 7); // two windows in one advance
            expect(sweep.advance(T)).toBe(T); // then two more
            const got = sweep.finish();
            sweep.dispose();
            const all = [...got.parameters, got.inputs!, got.initialState];
            owned.push(...all);
            return await Promise.all(all.map(async (t) => Float64Array.from(await b.read(t))));
          } finally {
            fused?.dispose();
            b.dispose(owned);
          }
        });
        expect(r2, label).toEqual(r1);
        expect([one.memory().tensors, two.memory().tensors], `${label}: tensors left alive`).toEqual([0, 0]);
      }
    });
  }

  it('float64: the fused adjoint sweep gives core\'s host sweep to rounding', async () => {
    const [B, T, I] = [2, 600, 5];
    const programs: RnnProgram[] = [gru.random({ inputSize: I, hiddenSize: 47, seed: 4 }).program(), lstm.random({ inputSize: I, hiddenSize: 16, seed: 5 }).program()];
    for (const program of programs) {
      const D = program.stateSize;
      const G = (program.kind === 'gru' ? 3 : 4) * program.hiddenSize;
      const [u, prev, g] = [values(B * T * I, 31, 1.5), values(B * T * D, 32, 0.9), values(B * T * D, 33)];
      const owned: Tensor[] = [];
      let fused: FusedCell | undefined;
      let got: Float64Array[];
      try {
        const keep = (t: Tensor) => {
          owned.push(t);
          return t;
        };
        const inputs = keep(two.fromArray(u, [B, T, I], 'float64'));
        fused = two.bindProgram(program, { dtype: 'float64', inputs, batch: B, steps: T })!;
        const sweep = fused.adjoint!(keep(two.fromArray(prev, [B, T, D], 'float64')), keep(two.fromArray(g, [B, T, D], 'float64')), { inputs: true });
        sweep.advance(T);
        const r = sweep.finish();
        sweep.dispose();
        const all = [...r.parameters, r.inputs!, r.initialState];
        owned.push(...all);
        got = await Promise.all(all.map(async (t) => Float64Array.from(await two.read(t))));
      } finally {
        fused?.dispose();
        two.dispose(owned);
      }
      const ref = hostAdjointSweep(program, 'float64', prev, u, g, B, T);
      const want = [...ref.parameters, ref.inputs, ref.initialState];
      // Each gradient sums B·T products of chains of width G + I over up to T steps.
      const bound = 4 * (B * T + T * (G + I)) * 2 ** -52;
      for (const [k, w] of want.entries()) expect(maxAbsDiff(got[k], w), `${program.kind}: gradient ${k}`).toBeLessThanOrEqual(bound * maxAbs(w));
    }
  });

  it('quasi-DEER and sequential on two threads agree with one thread, and free everything', async () => {
    const cell = gru.random({ inputSize: 4, hiddenSize: 16, seed: 3 });
    const T = 5000;
    const inputs = { data: values(T * 4, 9), shape: [T, 4] };
    const [a, b] = await both(async (backend) => {
      const out: Float64Array[] = [];
      for (const method of ['sequential', 'quasi-deer'] as const) {
        const r = await evaluate(cell, inputs, { backend, method, dtype: 'float64' });
        expect(r.converged).toBe(true);
        out.push(Float64Array.from(await r.read()));
        r.dispose();
      }
      expect(backend.memory().tensors).toBe(0);
      return out;
    });
    expect(b[0]).toEqual(a[0]);
    let d = 0;
    for (let i = 0; i < a[1].length; i++) d = Math.max(d, Math.abs(a[1][i] - b[1][i]));
    expect(d).toBeLessThanOrEqual(1e-9);
  });
});

import { describe, expect, it } from 'vitest';
import { CpuBackend } from './cpu-backend.js';

/** Deterministic uniform numbers in [-1, 1). */
function rand(n: number, seed: number): Float64Array {
  let s = seed >>> 0;
  return Float64Array.from({ length: n }, () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * 2 - 1;
  });
}

describe('CpuBackend ops', () => {
  const be = new CpuBackend();

  it('broadcasts binary ops like NumPy', async () => {
    const a = be.fromArray([1, 2, 3, 4, 5, 6], [2, 3, 1], 'float64');
    const b = be.fromArray([10, 20], [1, 2], 'float64');
    const c = be.binary('mul', a, b);
    expect(c.shape).toEqual([2, 3, 2]);
    expect(Array.from(await be.read(c))).toEqual([10, 20, 20, 40, 30, 60, 40, 80, 50, 100, 60, 120]);
    const row = be.fromArray([1, -1, 2], [3], 'float64');
    const m = be.fromArray([1, 2, 3, 4, 5, 6], [2, 3], 'float64');
    expect(Array.from(await be.read(be.binary('sub', m, row)))).toEqual([0, 3, 1, 3, 6, 4]);
    expect(Array.from(await be.read(be.binary('sub', be.fill([1], 10, 'float64'), row)))).toEqual([9, 11, 8]);
    be.dispose([a, b, c, row, m]);
  });

  it('multiplies matrices in both layouts and batched', async () => {
    const a = be.fromArray([1, 2, 3, 4, 5, 6], [2, 3], 'float64');
    const w = be.fromArray([1, 0, 0, 1, 1, 1], [3, 2], 'float64');
    expect(Array.from(await be.read(be.matmul(a, w)))).toEqual([4, 5, 10, 11]);
    const wt = be.fromArray([1, 0, 1, 0, 1, 1], [2, 3], 'float64');
    expect(Array.from(await be.read(be.matmul(a, wt, true)))).toEqual([4, 5, 10, 11]);
    const batchA = be.fromArray([1, 2, 3, 4, 2, 0, 0, 2], [2, 2, 2], 'float64');
    const batchB = be.fromArray([1, 0, 0, 1, 1, 1, 1, 1], [2, 2, 2], 'float64');
    expect(Array.from(await be.read(be.matmul(batchA, batchB)))).toEqual([1, 2, 3, 4, 2, 2, 2, 2]);
  });

  it('frees everything a tidy scope created except its result', () => {
    const before = be.memory().tensors;
    const kept = be.tidy(() => {
      const x = be.fill([4], 1, 'float64');
      const y = be.unary('exp', x);
      return be.binary('add', x, y);
    });
    expect(be.memory().tensors).toBe(before + 1);
    be.dispose(kept);
    expect(be.memory().tensors).toBe(before);
  });

  it('sanitize resets NaN to 0, clips, and counts non-finite values', async () => {
    const x = be.fromArray([1, Number.NaN, Number.POSITIVE_INFINITY, -5e9, 3], [5], 'float64');
    const { value, nonFinite } = be.sanitize(x, 1e8);
    expect(Array.from(await be.read(value))).toEqual([1, 0, 1e8, -1e8, 3]);
    expect(await nonFinite).toBe(2);
  });
});

describe('CpuBackend scans match a sequential loop', () => {
  const be = new CpuBackend();
  // T values cover 1, odd, powers of two and one past them (tree boundaries).
  const cases = [1, 2, 3, 7, 8, 9, 31, 64, 65, 100];
  for (const dtype of ['float64', 'float32'] as const) {
    const tol = dtype === 'float64' ? 1e-12 : 2e-5;
    for (const T of cases) {
      for (const reverse of [false, true]) {
        it(`diagonal and dense, ${dtype}, T=${T}${reverse ? ', reverse' : ''}`, async () => {
          const B = 2;
          const D = 3;
          const a = rand(B * T * D, T);
          const A = rand(B * T * D * D, T + 1).map((v) => v * 0.6);
          const b = rand(B * T * D, T + 2);
          const s0 = rand(B * D, T + 3);
          const ta = be.fromArray(a, [B, T, D], dtype);
          const tA = be.fromArray(A, [B, T, D, D], dtype);
          const tb = be.fromArray(b, [B, T, D], dtype);
          const ts0 = be.fromArray(s0, [B, D], dtype);
          const diag = await be.read(be.linearScanDiagonal(ta, tb, ts0, { reverse }));
          const dense = await be.read(be.linearScanDense(tA, tb, ts0, { reverse }));
          for (let bi = 0; bi < B; bi++) {
            const sd = Array.from(s0.subarray(bi * D, (bi + 1) * D));
            let sD = [...sd];
            for (let k = 0; k < T; k++) {
              const t = reverse ? T - 1 - k : k;
              const row = (bi * T + t) * D;
              const nextD: number[] = [];
              for (let i = 0; i < D; i++) {
                sd[i] = a[row + i] * sd[i] + b[row + i];
                let acc = b[row + i];
                for (let j = 0; j < D; j++) acc += A[(row + i) * D + j] * sD[j];
                nextD.push(acc);
              }
              sD = nextD;
              for (let i = 0; i < D; i++) {
                expect(diag[row + i]).toBeCloseTo(sd[i], dtype === 'float64' ? 12 : 4);
                expect(Math.abs(dense[row + i] - sD[i])).toBeLessThanOrEqual(tol * (1 + Math.abs(sD[i])) * 10);
              }
            }
          }
        });
      }
    }
  }
});

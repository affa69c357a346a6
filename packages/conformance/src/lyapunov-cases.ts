/**
 * The Lyapunov cases: `estimateLyapunov` on the backend under test, against exponents known in
 * closed form (constant Jacobians), or from the Jacobians themselves (time-varying diagonal ones:
 * the empirical mean log-growth of the dominant channel). Registered by `defineConformanceSuite`
 * for every backend and dtype.
 *
 * Tolerances are the sum of two stated parts, never widened to pass:
 * - rounding ({@link roundoff}): the Jacobians rounded to the dtype, the start vectors rounded, and
 *   the chunk scan's rounding — the suite's scan bound, `64·ε·log2(L + 1)` relative to the end
 *   vector and so absolute in its log — spread over the L steps of a chunk;
 * - the estimator's bias: what is left of the start vector's component off the leading direction
 *   after pass 1's L steps of alignment, bounded per case from its spectrum.
 */
import {
  type ComputeBackend,
  type DType,
  InvalidArgumentError,
  LYAPUNOV_FLOOR,
  type LyapunovEstimate,
  type LyapunovOptions,
  ShapeError,
  estimateLyapunov,
  lyapunovVerdict,
} from '@pelk/core';
import { describe, expect, it } from 'vitest';
import { randomArray } from './reference.js';

/** What the Lyapunov cases need from the suite. */
export interface LyapunovContext {
  readonly backend: () => ComputeBackend;
  readonly dtype: DType;
}

/** The default chunk length of `estimateLyapunov`. */
const L = 32;

/** `B·W` copies of one per-step block (a diagonal `[D]` or a dense row-major `[D·D]`). */
function constant(B: number, W: number, block: readonly number[]): Float64Array {
  const out = new Float64Array(B * W * block.length);
  for (let k = 0; k < B * W; k++) out.set(block, k * block.length);
  return out;
}

/** `Q·diag(λ)·Qᵀ` with the Householder reflection `Q = I − 2wwᵀ/‖w‖²` (orthogonal, symmetric); row-major. */
function reflected(lambda: readonly number[], w: readonly number[]): { matrix: number[]; q: number[][] } {
  const D = lambda.length;
  const ww = w.reduce((s, x) => s + x * x, 0);
  const q = Array.from({ length: D }, (_, i) => Array.from({ length: D }, (_, j) => (i === j ? 1 : 0) - (2 * w[i] * w[j]) / ww));
  const matrix: number[] = [];
  for (let i = 0; i < D; i++) {
    for (let j = 0; j < D; j++) {
      let s = 0;
      for (let k = 0; k < D; k++) s += q[i][k] * lambda[k] * q[j][k];
      matrix.push(s);
    }
  }
  return { matrix, q };
}

/** Registers the Lyapunov cases (inside the suite's per-dtype `describe`). */
export function defineLyapunovCases(ctx: LyapunovContext): void {
  const { dtype } = ctx;
  const eps = () => ctx.backend().capabilities.epsilon[dtype] ?? 2 ** -24;
  /** The value as the backend holds it (the Jacobians are uploaded in the dtype). */
  const stored = (x: number) => (dtype === 'float32' ? Math.fround(x) : x);
  /** Rounding bound of an exponent with chunks of `chunk` steps (see the file comment): 2ε per step for the rounded Jacobians, ε per chunk for the rounded start vector, the scan's bound per chunk. */
  const roundoff = (chunk = L) => 2 * eps() + (eps() + 64 * eps() * Math.log2(chunk + 1)) / chunk;

  /**
   * Uploads the Jacobians, estimates, and checks the contract around the call: the input is still
   * alive afterwards (not taken over), nothing else is, and the estimate survives JSON.
   */
  const estimate = async (
    data: ArrayLike<number>,
    shape: number[],
    kind: 'dense' | 'diagonal',
    options?: LyapunovOptions,
  ): Promise<LyapunovEstimate> => {
    const backend = ctx.backend();
    const before = backend.memory();
    const jacobians = backend.fromArray(data, shape, dtype);
    const est = await estimateLyapunov(backend, jacobians, kind, options);
    expect(backend.memory().tensors, 'only the input is alive after estimateLyapunov').toBe(before.tensors + 1);
    expect((await backend.read(jacobians)).length, 'the input is still readable').toBe(data.length);
    backend.dispose(jacobians);
    expect(backend.memory().tensors, 'tensors left alive').toBe(before.tensors);
    expect(backend.memory().bytes, 'bytes left held').toBe(before.bytes);
    expect(est.jacobian).toBe(kind);
    const verdict = lyapunovVerdict(est.exponent, est.standardError, options?.horizon ?? shape[1]);
    expect(verdict.verdict).toBe(est.verdict);
    if (!Number.isNaN(est.exponent)) expect(verdict.reading).toBe(est.reading);
    if (est.verdict !== 'unknown') {
      expect(Number.isFinite(est.exponent), `exponent ${est.exponent}`).toBe(true);
      expect(JSON.parse(JSON.stringify(est))).toEqual(est);
    }
    return est;
  };

  describe('lyapunov: largest-exponent estimates from Jacobians', () => {
    it('declares the dtype (else the cases below are meaningless)', () => {
      expect(ctx.backend().capabilities.dtypes).toContain(dtype);
    });

    for (const a of [0.5, 1.01]) {
      it(`constant diagonal Jacobians a = ${a}: λ = log a, no spread`, async () => {
        // A multiple of the identity: every start vector is aligned, so no bias.
        const W = 128;
        const est = await estimate(constant(1, W, [a, a, a]), [1, W, 3], 'diagonal');
        expect(Math.abs(est.exponent - Math.log(a))).toBeLessThanOrEqual(roundoff());
        expect(est.standardError).toBeLessThanOrEqual(roundoff());
        expect(est.steps).toBe(W - L); // 4 chunks; the first one aligns
        // log 0.5·128 ≪ 0; log 1.01·128 = 1.27 > 1: errors grow by more than e over the window.
        expect(est.verdict).toBe(a < 1 ? 'predictable' : 'unpredictable');
        expect(est.reading).toMatch(a < 1 ? /^predictable \(λ ≈ −0\.69 ± \S+ per step\): / : /^unpredictable \(λ ≈ \+0\.01 ± \S+ per step\): /);
        if (a > 1) {
          // Over a 50-step sequence the same growth stays below e: not called unpredictable.
          const short = await estimate(constant(1, W, [a, a, a]), [1, W, 3], 'diagonal', { horizon: 50 });
          expect(short.verdict).toBe('marginal');
        }
      });
    }

    it('dense Q·diag(1.05, 0.3, 0.2, 0.1)·Qᵀ, Q orthogonal: λ = log 1.05', async () => {
      const lambda = [1.05, 0.3, 0.2, 0.1];
      const { matrix, q } = reflected(lambda, [1, 2, 3, 4]);
      const W = 160;
      const est = await estimate(constant(1, W, matrix), [1, W, 4, 4], 'dense');
      // Bias: pass 1 leaves the start vector's eigen-coordinates off the leading one at
      // δ_i ≤ ρ^L·|⟨u, q_i⟩| / |⟨u, q_1⟩|, ρ = 0.3/1.05, u = 1/√D; for a normal matrix the growth
      // is then off by at most ½·Σδ_i² per chunk (second order: the leading direction is
      // stationary) — here ≈ 1e-34, below any rounding. Without pass 2 the error would be
      // log|⟨u, q_1⟩| / L per step, asserted to be large to show the case discriminates.
      const u = 1 / 2;
      const lead = Math.abs(q.reduce((s, row) => s + u * row[0], 0));
      const bias = (0.5 * (lambda.length - 1) * (0.3 / 1.05) ** (2 * L)) / lead ** 2 / L;
      expect(Math.abs(Math.log(lead)) / L).toBeGreaterThan(1000 * roundoff());
      expect(Math.abs(est.exponent - Math.log(1.05))).toBeLessThanOrEqual(roundoff() + bias);
      expect(est.standardError).toBeLessThanOrEqual(roundoff());
      expect(est.verdict).toBe('unpredictable'); // 0.049·160 = 7.8 > 1
    });

    it('dense non-normal [[1.05, 2], [0, 0.5]]: λ = log 1.05, the unaligned-start bias removed', async () => {
      const [l1, l2, c] = [1.05, 0.5, 2];
      const W = 160;
      const est = await estimate(constant(1, W, [l1, c, 0, l2]), [1, W, 2, 2], 'dense');
      // Eigenvectors e1 = (1, 0), ê2 = (c, l2 − l1)/‖·‖, at an angle θ (sin θ = |ê2_y|). The unit
      // start u = (1, 1)/√2 = α0·e1 + β0·ê2. Pass 1 leaves the ratio δ = (l2/l1)^L·β0/α0; a start
      // v = e1 + x·ê2 grows by L·log l1 + log‖e1 + (l2/l1)^L·x·ê2‖ − log‖e1 + x·ê2‖, off by at most
      // 2|x| per chunk (first order: non-normal). x is δ plus the rounding of the pass-1 end
      // vector's direction (≤ the scan's relative bound) magnified by 1/sin θ.
      const e2 = [c, l2 - l1].map((v, _, a) => v / Math.hypot(a[0], a[1]));
      const sin = Math.abs(e2[1]);
      const beta0 = Math.SQRT1_2 / e2[1];
      const alpha0 = Math.SQRT1_2 - beta0 * e2[0];
      const delta = (l2 / l1) ** L * Math.abs(beta0 / alpha0);
      const directionRounding = (64 * eps() * Math.log2(L + 1)) / sin;
      const bias = (2 * (delta + directionRounding)) / L;
      // Pass 1 alone would be off by log|α0|/L ≈ 0.037 per step, about λ itself.
      expect(Math.log(Math.abs(alpha0)) / L).toBeGreaterThan(100 * (roundoff() + bias));
      expect(Math.abs(est.exponent - Math.log(l1))).toBeLessThanOrEqual(roundoff() + bias);
      expect(est.verdict).toBe('unpredictable');
    });

    it('time-varying diagonal Jacobians: the dominant channel’s mean log-growth, within the standard error of its mean', async () => {
      // Channel 0: a = ±exp(μ + σξ), ξ uniform in [−1, 1); channels 1, 2: exp(−1.5 + σξ). Every step
      // channel 0 outgrows the others by ≥ 1.55 − 2σ = 0.95, so after a chunk the start vector's
      // other components are ≤ e^{−30} and the bias (½δ² per chunk) is ≈ 1e-27: rounding only.
      const [mu, sigma, W, D] = [0.05, 0.3, 512, 3];
      const xi = randomArray(W * D, 71);
      const sign = randomArray(W, 72);
      const data = new Float64Array(W * D);
      for (let t = 0; t < W; t++) {
        data[t * D] = (sign[t] < 0 ? -1 : 1) * Math.exp(mu + sigma * xi[t * D]);
        for (let i = 1; i < D; i++) data[t * D + i] = Math.exp(-1.5 + sigma * xi[t * D + i]);
      }
      const est = await estimate(data, [1, W, D], 'diagonal');
      expect(est.steps).toBe(W - L);
      // The measured steps are L..W−1 (W is a multiple of L: nothing dropped).
      let sum = 0;
      for (let t = L; t < W; t++) sum += Math.log(Math.abs(stored(data[t * D])));
      expect(Math.abs(est.exponent - sum / (W - L))).toBeLessThanOrEqual(roundoff());
      // Statistics, not rounding: each chunk's growth is L·μ plus a sum of L terms of variance
      // σ²/3, so the standard error is σ/√(3·L·chunks) ≈ 0.0079; 15 chunks estimate it within
      // ±20% (1σ), and the estimate lies within a few standard errors of μ.
      const chunks = W / L - 1;
      const expected = sigma / Math.sqrt(3 * L * chunks);
      expect(est.standardError).toBeGreaterThan(expected / 2);
      expect(est.standardError).toBeLessThan(expected * 2);
      expect(Math.abs(est.exponent - mu)).toBeLessThanOrEqual(4 * est.standardError);
      expect(est.verdict).toBe('unpredictable');
      expect(est.reading).toMatch(/^unpredictable \(λ ≈ \+0\.0\d+ ± 0\.00\d+ per step\): parallel iterations will grow with T$/);
    });

    for (const kind of ['diagonal', 'dense'] as const) {
      it(`batch B = 2 (${kind}): the larger of the rows’ exponents`, async () => {
        const W = 96;
        const rows = [0.9, 1.02];
        const block = (a: number) => (kind === 'diagonal' ? [a, a] : [a, 0, 0, a]);
        const data = Float64Array.from([...constant(1, W, block(rows[0])), ...constant(1, W, block(rows[1]))]);
        const est = await estimate(data, kind === 'diagonal' ? [2, W, 2] : [2, W, 2, 2], kind);
        expect(Math.abs(est.exponent - Math.log(1.02))).toBeLessThanOrEqual(roundoff());
        // The other order gives the same.
        const swapped = Float64Array.from([...data.subarray(data.length / 2), ...data.subarray(0, data.length / 2)]);
        const again = await estimate(swapped, kind === 'diagonal' ? [2, W, 2] : [2, W, 2, 2], kind);
        expect(Math.abs(again.exponent - Math.log(1.02))).toBeLessThanOrEqual(roundoff());
      });
    }

    it('a zero Jacobian: the finite floor, predictable, and a JSON number', async () => {
      const cases: ['dense' | 'diagonal', number[]][] = [
        ['diagonal', [1, 64, 3]],
        ['dense', [1, 64, 2, 2]],
      ];
      for (const [kind, shape] of cases) {
        const size = shape.reduce((a, b) => a * b, 1);
        const est = await estimate(new Float64Array(size), [...shape], kind);
        expect(est.exponent, kind).toBeCloseTo(LYAPUNOV_FLOOR, 12);
        expect(est.standardError, kind).toBeLessThanOrEqual(1e-12);
        expect(est.verdict, kind).toBe('predictable');
        expect(JSON.parse(JSON.stringify(est)).exponent, kind).toBe(est.exponent);
      }
    });

    it('a zero Jacobian inside one chunk: that chunk at the floor, the next restarted from the unit vector', async () => {
      // W = 128: chunks [0, 32), [32, 64), [64, 96), [96, 128); the last three are measured. Steps
      // 40..45 are 0, so chunk 1 grows by L·floor, and its pass-1 end (0) gives chunk 2 no
      // direction: it starts from the unit vector, exact here (a multiple of the identity).
      const W = 128;
      const data = constant(1, W, [0.8, 0.8]);
      data.fill(0, 40 * 2, 46 * 2);
      const est = await estimate(data, [1, W, 2], 'diagonal');
      const want = (2 * Math.log(0.8) + LYAPUNOV_FLOOR) / 3;
      expect(Math.abs(est.exponent - want)).toBeLessThanOrEqual(roundoff());
      expect(est.standardError).toBeGreaterThan(1); // one chunk far below the others
    });

    it('NaN or ±Infinity in the Jacobians: exponent NaN, verdict unknown (also in the dropped remainder)', async () => {
      const cases: { data: Float64Array; shape: number[]; kind: 'dense' | 'diagonal'; what: string }[] = [];
      const nan = constant(1, 96, [0.5, 0.5]);
      nan[70 * 2 + 1] = Number.NaN;
      cases.push({ data: nan, shape: [1, 96, 2], kind: 'diagonal', what: 'NaN' });
      const inf = constant(1, 96, [0.5, 0.1, 0, 0.5]);
      inf[40 * 4 + 1] = Number.POSITIVE_INFINITY;
      cases.push({ data: inf, shape: [1, 96, 2, 2], kind: 'dense', what: '+Infinity' });
      const head = constant(1, 100, [0.5, 0.5]); // W = 100: steps 0..3 are dropped
      head[1 * 2] = Number.NaN;
      cases.push({ data: head, shape: [1, 100, 2], kind: 'diagonal', what: 'NaN in the dropped steps' });
      for (const { data, shape, kind, what } of cases) {
        const est = await estimate(data, shape, kind);
        expect(est.exponent, what).toBeNaN();
        expect(est.standardError, what).toBeNaN();
        expect(est.verdict, what).toBe('unknown');
        expect(est.reading, what).toMatch(/^unknown \(/);
      }
    });

    it('W not a multiple of the chunk: the remainder is dropped from the start of the window', async () => {
      // W = 100 = 4 + 3·32: steps 0..3 grow by 5 per step, the rest by 0.8. The first four are
      // the dropped remainder, so λ = log 0.8 exactly, measured over 64 steps.
      const W = 100;
      const data = constant(1, W, [0.8, 0.8]);
      data.fill(5, 0, 4 * 2);
      const est = await estimate(data, [1, W, 2], 'diagonal');
      expect(est.steps).toBe(64);
      expect(Math.abs(est.exponent - Math.log(0.8))).toBeLessThanOrEqual(roundoff());
      // A chunk option: W = 100 = 4 + 12·8, 11 chunks of 8 measured (0.8·I: no alignment bias).
      const eight = await estimate(constant(1, W, [0.8, 0, 0, 0, 0.8, 0, 0, 0, 0.8]), [1, W, 3, 3], 'dense', { chunk: 8 });
      expect(eight.steps).toBe(88);
      expect(Math.abs(eight.exponent - Math.log(0.8))).toBeLessThanOrEqual(roundoff(8));
    });

    it('short windows: shorter chunks (at least 3), and a single measured chunk has no spread', async () => {
      // W = 10: chunks of 3 (= ⌊10/3⌋), one step dropped, two chunks (6 steps) measured.
      const ten = await estimate(constant(1, 10, [0.7]), [1, 10, 1], 'diagonal');
      expect(ten.steps).toBe(6);
      expect(Math.abs(ten.exponent - Math.log(0.7))).toBeLessThanOrEqual(roundoff(3));
      expect(ten.verdict).toBe('predictable');
      for (const W of [1, 2]) {
        // One chunk of one step is measured (W = 1: from the unaligned start, exact for a scalar).
        const est = await estimate(constant(1, W, [0.7]), [1, W, 1], 'diagonal');
        expect(est.steps, `W = ${W}`).toBe(1);
        expect(Math.abs(est.exponent - Math.log(0.7)), `W = ${W}`).toBeLessThanOrEqual(roundoff(1));
        expect(est.standardError, `W = ${W}`).toBeNaN();
        expect(est.verdict, `W = ${W}`).toBe('unknown');
      }
    });

    it('growth beyond the dtype’s range within a chunk: a finite lower bound, unpredictable', async () => {
      // 20^32 ≈ 4e41 overflows float32 (max ≈ e^88.7): the chunk counts as growing by the range,
      // so λ ≥ 88.7/32 ≈ 2.77 is reported. float64 holds it: log 20.
      const range = dtype === 'float32' ? Math.log(3.4028234663852886e38) : Math.log(Number.MAX_VALUE);
      const bound = Math.min(Math.log(20), range / L);
      for (const [kind, block] of [
        ['diagonal', [20, 20]],
        ['dense', [20, 0, 0, 20]],
      ] as const) {
        const est = await estimate(constant(1, 96, block), kind === 'diagonal' ? [1, 96, 2] : [1, 96, 2, 2], kind);
        expect(Number.isFinite(est.exponent), kind).toBe(true);
        expect(est.exponent, kind).toBeGreaterThanOrEqual(bound - roundoff());
        expect(est.exponent, kind).toBeLessThanOrEqual(Math.log(20) + roundoff());
        expect(est.verdict, kind).toBe('unpredictable');
      }
    });

    it('bad arguments: typed errors, nothing allocated', async () => {
      const backend = ctx.backend();
      const J = backend.fromArray(constant(1, 8, [0.5, 0.5]), [1, 8, 2], dtype);
      const notSquare = backend.fromArray(constant(1, 16, [0.5, 0, 0]), [1, 8, 2, 3], dtype);
      const before = backend.memory().tensors;
      await expect(estimateLyapunov(backend, J, 'dense')).rejects.toBeInstanceOf(ShapeError);
      await expect(estimateLyapunov(backend, notSquare, 'dense')).rejects.toBeInstanceOf(ShapeError);
      await expect(estimateLyapunov(backend, J, 'full' as 'dense')).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(estimateLyapunov(backend, J, 'diagonal', { chunk: 0 })).rejects.toMatchObject({ field: 'options.chunk' });
      await expect(estimateLyapunov(backend, J, 'diagonal', { horizon: -1 })).rejects.toMatchObject({ field: 'options.horizon' });
      await expect(estimateLyapunov(backend, J, 'diagonal', { chunks: 8 } as LyapunovOptions)).rejects.toMatchObject({ field: 'options.chunks' });
      expect(backend.memory().tensors).toBe(before);
      backend.dispose([J, notSquare]);
    });
  });
}

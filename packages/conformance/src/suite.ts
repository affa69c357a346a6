/**
 * The conformance suite: one set of checks every `ComputeBackend` runs, with tolerances derived
 * from the backend's float precision and the float64 oracles (host loops, the shipped fixtures,
 * and sequential evaluation).
 */
import {
  type Cell,
  type ComputeBackend,
  type DType,
  type EvaluateOptions,
  type EvaluateResult,
  InvalidArgumentError,
  type Method,
  NonFiniteError,
  ResourceLimitError,
  MIN_TOLERANCE,
  ShapeError,
  type ShapedArray,
  UnknownMethodError,
  evaluate,
} from '@pelk/core';
import { CpuBackend } from '@pelk/backend-cpu';
import { lorenz96, readModelSpec } from '@pelk/models';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AR_GRU_FIXTURE, defineArGruCases, definePelkArGruCases } from './ar-gru-cases.js';
import { checkJacobians, failingCell, jacobianCases, randomGru } from './cases.js';
import { FIXTURE_NAMES, findFixture, loadFixture } from './fixtures.js';
import { defineFusedAdjointCases } from './fused-adjoint-cases.js';
import { defineFusedCases } from './fused-cases.js';
import { defineCertificateCases } from './certificate-cases.js';
import { defineGradCases } from './grad-cases.js';
import { defineMemoryCases } from './memory-cases.js';
import { defineLyapunovCases } from './lyapunov-cases.js';
import { type KalmanCase, kalmanReference, levenbergMarquardtStep } from './kalman-reference.js';
import { linearRecurrence, maxAbs, maxAbsDiff, randomArray } from './reference.js';

/** Options of {@link defineConformanceSuite}. */
export interface ConformanceOptions {
  /** Shown in test names, e.g. `'cpu'`. */
  readonly name: string;
  /** Creates the backend under test (called once, before the suite). */
  readonly createBackend: () => ComputeBackend | Promise<ComputeBackend>;
  /** Releases it after the suite (GPU devices, workers). */
  readonly destroyBackend?: (backend: ComputeBackend) => void | Promise<void>;
  /** dtypes to test; default: every dtype the backend declares. */
  readonly dtypes?: readonly DType[];
  /** Methods to test; default: all of them. */
  readonly methods?: readonly Method[];
  /**
   * Per-test time limit in ms (default 60,000). Backends that run each op with a high fixed
   * cost (tfjs's `cpu`, a software GPU) need more for the dense-ELK fixture runs.
   */
  readonly timeoutMs?: number;
  /**
   * Folders to look in, in order, for the fixtures this package does not ship (the trained AR-GRU,
   * `argru-sine-trained.json`, which carries the ELK authors' weights). They are searched before
   * the folders in the `PELK_FIXTURES` environment variable (path-delimiter separated, for runs
   * from the command line) and the default locations (this package's `fixtures/`, and
   * `../shared/fixtures` beside a pelk checkout). Strings resolve against the working directory;
   * `file:` URLs are accepted. Where no folder has a fixture, its tests are skipped and their
   * titles name the folders searched.
   *
   * @example
   * ```ts
   * defineConformanceSuite({
   *   name: 'my-backend',
   *   createBackend: () => new MyBackend(),
   *   fixturePaths: [new URL('../test-fixtures/', import.meta.url)],
   * });
   * ```
   */
  readonly fixturePaths?: readonly (string | URL)[];
  /**
   * Why the AR-GRU cases (thousands of dense-ELK and DEER steps on 2,000-step trajectories) are slow
   * on this backend. When given, they run only in the full test tier (`PELK_TEST_TIER=full`, which
   * CI sets) and are skipped otherwise, with this reason in their titles.
   */
  readonly slowArGru?: string;
}

/** The test tier: `'full'` when `PELK_TEST_TIER=full` (CI), else the fast tier `pnpm test` runs. */
export function testTier(): 'fast' | 'full' {
  return typeof process !== 'undefined' && process.env?.PELK_TEST_TIER === 'full' ? 'full' : 'fast';
}

const PARALLEL: readonly Method[] = ['deer', 'quasi-deer'];

/** The float64 reference evaluator (plain TypeScript), for bounds that need the exact trajectory. */
const float64Oracle = new CpuBackend();
const ALL_METHODS: readonly Method[] = ['sequential', 'deer', 'quasi-deer', 'elk', 'quasi-elk'];
const ELK_METHODS: readonly Method[] = ['elk', 'quasi-elk'];

/**
 * Scan tolerance: rounding of O(log T) combines per output, each with a relative error of a few
 * units of roundoff, scaled by the magnitude of the values involved.
 */
function scanTolerance(eps: number, T: number, scale: number): number {
  return 64 * eps * Math.max(1, Math.log2(T + 1)) * Math.max(1, scale);
}

/**
 * Registers the conformance tests for one backend with vitest.
 *
 * Tests that need a fixture this package does not ship (the trained AR-GRU) look for it in
 * `options.fixturePaths`, then in the folders of the `PELK_FIXTURES` environment variable, then in
 * the default locations; without it they are skipped, and the skip's title says where the suite
 * looked. Every skip in the suite carries its reason in its title or skip message.
 *
 * @example
 * ```ts
 * // my-backend.conformance.test.ts
 * import { defineConformanceSuite } from '@pelk/conformance';
 * import { MyBackend } from './my-backend.js';
 * defineConformanceSuite({ name: 'my-backend', createBackend: () => new MyBackend() });
 * // The AR-GRU fixture from the command line, without code:
 * //   PELK_FIXTURES=/path/to/fixtures npx vitest run
 * ```
 */
export function defineConformanceSuite(options: ConformanceOptions): void {
  let backend: ComputeBackend;
  const methods = options.methods ?? ALL_METHODS;
  const parallel = PARALLEL.filter((m) => methods.includes(m));
  const elkMethods = ELK_METHODS.filter((m) => methods.includes(m));
  // Looked up once, when the tests are collected: whether the cases run or skip (and why) must be
  // known then for the skip's title to carry the reason.
  const arGruFixture = findFixture(AR_GRU_FIXTURE, { fixturePaths: options.fixturePaths });

  describe(`conformance: ${options.name}`, { timeout: options.timeoutMs ?? 60_000 }, () => {
    beforeAll(async () => {
      backend = await options.createBackend();
    });
    afterAll(async () => {
      if (backend && options.destroyBackend) await options.destroyBackend(backend);
    });

    // dtypes are only known once the backend exists; the default covers both and each block
    // checks the declaration at run time.
    for (const dtype of options.dtypes ?? (['float64', 'float32'] as const)) {
      describe(dtype, () => {
        const eps = () => backend.capabilities.epsilon[dtype] ?? 2 ** -24;
        const supported = () => backend.capabilities.dtypes.includes(dtype);

        /** Evaluates, checks nothing leaked, returns the states. */
        const run = async (
          cell: Cell,
          inputs: number[][] | number[][][] | ShapedArray | null,
          opts: EvaluateOptions,
        ): Promise<{ result: EvaluateResult; states: Float64Array }> => {
          const before = backend.memory().tensors;
          const result = await evaluate(cell, inputs, { ...opts, backend, dtype });
          const states = Float64Array.from(await result.read());
          result.dispose();
          expect(backend.memory().tensors, 'tensors left alive after evaluate').toBe(before);
          return { result, states };
        };

        /**
         * The number of steps over which this backend's sequential evaluation stays within `drift`
         * of a fixture's float64 oracle. A chaotic system (Lorenz-96) amplifies rounding
         * exponentially, so comparisons with the oracle stop there.
         */
        const float32Horizon = async (spec: ReturnType<typeof readModelSpec>, drift: number): Promise<number> => {
          const D = spec.cell.stateSize;
          const oracle = Float64Array.from(spec.states!.flat());
          const seq = (
            await run(spec.cell, spec.inputs, {
              method: 'sequential',
              initialState: spec.initialState ?? undefined,
              steps: spec.cell.inputSize === 0 ? spec.steps : undefined,
            })
          ).states;
          for (let t = 0; t < spec.steps; t++) {
            if (maxAbsDiff(seq.subarray(t * D, (t + 1) * D), oracle.subarray(t * D, (t + 1) * D)) > drift) return t;
          }
          return spec.steps;
        };

        it('declares this dtype', () => {
          expect(supported(), `backend '${backend.name}' does not declare ${dtype}; remove it from options.dtypes`).toBe(true);
        });

        describe('sequence primitives match host loops', () => {
          const sizes = [1, 2, 3, 5, 8, 31, 32, 33, 255, 256, 257, 1000];
          for (const T of sizes) {
            for (const reverse of [false, true]) {
              it(`linear scans, T=${T}${reverse ? ', reverse' : ''}`, async () => {
                const B = 2;
                const D = 3;
                const a = randomArray(B * T * D, 100 + T);
                const A = randomArray(B * T * D * D, 200 + T, 0.55);
                const b = randomArray(B * T * D, 300 + T);
                const s0 = randomArray(B * D, 400 + T);
                const before = backend.memory().tensors;
                const ta = backend.fromArray(a, [B, T, D], dtype);
                const tA = backend.fromArray(A, [B, T, D, D], dtype);
                const tb = backend.fromArray(b, [B, T, D], dtype);
                const ts0 = backend.fromArray(s0, [B, D], dtype);
                const diag = backend.linearScanDiagonal(ta, tb, ts0, { reverse });
                const dense = backend.linearScanDense(tA, tb, ts0, { reverse });
                const gotDiag = await backend.read(diag);
                const gotDense = await backend.read(dense);
                backend.dispose([ta, tA, tb, ts0, diag, dense]);
                expect(backend.memory().tensors).toBe(before);
                const wantDiag = linearRecurrence(a, b, s0, B, T, D, false, reverse);
                const wantDense = linearRecurrence(A, b, s0, B, T, D, true, reverse);
                expect(maxAbsDiff(gotDiag, wantDiag)).toBeLessThanOrEqual(scanTolerance(eps(), T, maxAbs(wantDiag)));
                expect(maxAbsDiff(gotDense, wantDense)).toBeLessThanOrEqual(scanTolerance(eps(), T, maxAbs(wantDense)));
              });
            }
          }

          it('time-layout helpers: shiftTime, timeStep, stackTime', async () => {
            const x = backend.fromArray([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [2, 3, 2], dtype);
            const s0 = backend.fromArray([-1, -2, -3, -4], [2, 2], dtype);
            const shifted = backend.shiftTime(x, s0);
            expect(Array.from(await backend.read(shifted))).toEqual([-1, -2, 1, 2, 3, 4, -3, -4, 7, 8, 9, 10]);
            const step1 = backend.timeStep(x, 1);
            expect(step1.shape).toEqual([2, 2]);
            expect(Array.from(await backend.read(step1))).toEqual([3, 4, 9, 10]);
            const stacked = backend.stackTime([backend.timeStep(x, 0), step1, backend.timeStep(x, 2)]);
            expect(Array.from(await backend.read(stacked))).toEqual(Array.from(await backend.read(x)));
          });

          it('matrix layout helpers: transpose, diagEmbed, diagPart, row scaling, matvec, roll, slice, concat', async () => {
            const m = backend.fromArray([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [2, 2, 3], dtype);
            const t = backend.transpose(m);
            expect(t.shape).toEqual([2, 3, 2]);
            expect(Array.from(await backend.read(t))).toEqual([1, 4, 2, 5, 3, 6, 7, 10, 8, 11, 9, 12]);
            const v = backend.fromArray([1, 2, 3, 4], [2, 2], dtype);
            const d = backend.diagEmbed(v);
            expect(Array.from(await backend.read(d))).toEqual([1, 0, 0, 2, 3, 0, 0, 4]);
            expect(Array.from(await backend.read(backend.diagPart(d)))).toEqual([1, 2, 3, 4]);
            const w = backend.fromArray([1, 2, 3, 4], [2, 2], dtype);
            const scaled = backend.binary('mul', backend.reshape(v, [2, 2, 1]), w); // diag(v_b)·W
            expect(Array.from(await backend.read(scaled))).toEqual([1, 2, 6, 8, 3, 6, 12, 16]);
            expect(Array.from(await backend.read(backend.matvec(d, v)))).toEqual([1, 4, 9, 16]);
            expect(Array.from(await backend.read(backend.roll(backend.fromArray([1, 2, 3, 4, 5, 6], [2, 3], dtype), 1)))).toEqual([3, 1, 2, 6, 4, 5]);
            expect(Array.from(await backend.read(backend.slice(m, -1, 1, 2)))).toEqual([2, 3, 5, 6, 8, 9, 11, 12]);
            const joined = backend.concat([v, backend.fromArray([9, 9], [2, 1], dtype)], 1);
            expect(Array.from(await backend.read(joined))).toEqual([1, 2, 9, 3, 4, 9]);
          });

          it('elementwise, matmul, reductions and sanitize', async () => {
            const x = backend.fromArray([-3, -0.5, 0, 0.5, 3, 1], [2, 3], dtype);
            const near = (got: ArrayLike<number>, want: number[]) =>
              expect(maxAbsDiff(got, want)).toBeLessThanOrEqual(8 * eps() * (1 + maxAbs(want)));
            near(await backend.read(backend.unary('tanh', x)), [-3, -0.5, 0, 0.5, 3, 1].map(Math.tanh));
            near(await backend.read(backend.unary('sigmoid', x)), [-3, -0.5, 0, 0.5, 3, 1].map((v) => 1 / (1 + Math.exp(-v))));
            near(await backend.read(backend.unary('hardSigmoid', x)), [0, 0.4, 0.5, 0.6, 1, 0.7]);
            near(await backend.read(backend.unary('softplus', x)), [-3, -0.5, 0, 0.5, 3, 1].map((v) => Math.log1p(Math.exp(v))));
            const w = backend.fromArray([1, 2, 3, 4, 5, 6], [3, 2], dtype);
            near(await backend.read(backend.matmul(x, w)), [-4.5, -8, 14.5, 19]);
            near(await backend.read(backend.matmul(x, backend.fromArray([1, 3, 5, 2, 4, 6], [2, 3], dtype), true)), [-4.5, -8, 14.5, 19]);
            const row = backend.fromArray([10, 20, 30], [3], dtype);
            near(await backend.read(backend.binary('add', x, row)), [7, 19.5, 30, 10.5, 23, 31]);
            expect(await backend.maxAbs(x)).toBe(3);
            expect(await backend.maxAbsDiff(x, backend.affine(x, 1, 0.25))).toBeCloseTo(0.25, 6);
            expect(await backend.sumSquaredDiff(x, backend.affine(x, 1, 0.5))).toBeCloseTo(1.5, 6);
            const dirty = backend.fromArray([1, Number.NaN, Number.POSITIVE_INFINITY, -1e12], [4], dtype);
            const { value, nonFinite } = backend.sanitize(dirty, 1e8);
            expect(Array.from(await backend.read(value))).toEqual([1, 0, 1e8, -1e8]);
            expect(await nonFinite).toBe(2);
          });

          it('applyCorrection: sanitize(current + correction) with its counts and the step, as the separate primitives give them', async () => {
            const current = backend.fromArray([0.5, -1, 3, 0, 2, 5e7, 1], [7], dtype);
            const correction = backend.fromArray([0.25, Number.NaN, Number.POSITIVE_INFINITY, -2e8, Number.NEGATIVE_INFINITY, 1e8, -0.5], [7], dtype);
            const before = backend.memory().tensors;
            const moved = backend.applyCorrection(current, correction, 1e8);
            expect(Array.from(await backend.read(moved.value))).toEqual([0.75, 0, 1e8, -1e8, -1e8, 1e8, 0.5]);
            expect(await moved.nonFinite).toBe(3);
            expect(await moved.clipped).toBe(2);
            // |−1e8 − 2|, rounded or not to the dtype (as maxAbsDiff may).
            const step = await moved.step;
            expect(Math.abs(step - (await backend.maxAbsDiff(moved.value, current)))).toBeLessThanOrEqual(2 * eps() * step);
            expect(Math.abs(step - (1e8 + 2))).toBeLessThanOrEqual(2 * eps() * step);
            // Once its scalars are read, only the new iterate is left.
            await Promise.all([moved.nonFinite, moved.clipped]);
            expect(backend.memory().tensors).toBe(before + 1);
            // A NaN in the current iterate makes the step NaN.
            const nan = backend.fromArray([Number.NaN, 1], [2], dtype);
            const fromNan = backend.applyCorrection(nan, backend.fromArray([1, 1], [2], dtype), 1e8);
            expect(Array.from(await backend.read(fromNan.value))).toEqual([0, 2]);
            expect(await fromNan.nonFinite).toBe(1);
            expect(await fromNan.step).toBeNaN();
            expect(() => backend.applyCorrection(current, nan, 1e8)).toThrow(ShapeError);
          });

          it('tidy frees intermediates and keeps what it returns; the peak-memory mark (if kept) sees them', () => {
            backend.resetPeakMemory?.();
            const startBytes = backend.memory().bytes;
            const before = backend.memory().tensors;
            const kept = backend.tidy(() => backend.unary('exp', backend.fill([3, 3], 1, dtype)));
            expect(backend.memory().tensors).toBe(before + 1);
            backend.dispose(kept);
            expect(backend.memory().tensors).toBe(before);
            const peak = backend.memory().peakBytes;
            // Two 3×3 tensors were alive at once inside the scope.
            if (peak !== undefined) expect(peak).toBeGreaterThanOrEqual(startBytes + 2 * 9 * (dtype === 'float64' ? 8 : 4));
          });
        });

        describe('Kalman primitives match a sequential filter and RTS smoother', () => {
          /** Random model; the diagonal variant has diagonal F. Returns the tensors' data per batch entry. */
          const makeCase = (B: number, T: number, D: number, r: number, diagonal: boolean, seed: number) => {
            const Fd = randomArray(B * T * D, seed, 1.3);
            const Fm = randomArray(B * T * D * D, seed + 1, 0.7);
            const F = diagonal ? new Float64Array(B * T * D * D) : Fm;
            if (diagonal) for (let k = 0; k < B * T * D; k++) F[k * D + (k % D)] = Fd[k];
            return {
              transition: diagonal ? Fd : Fm,
              F,
              b: randomArray(B * T * D, seed + 2),
              y: randomArray(B * T * D, seed + 3, 2),
              s0: randomArray(B * D, seed + 4),
              q: 1,
              r,
            };
          };
          const entry = (c: ReturnType<typeof makeCase>, bi: number, T: number, D: number): KalmanCase => ({
            T,
            D,
            F: c.F.subarray(bi * T * D * D, (bi + 1) * T * D * D),
            b: c.b.subarray(bi * T * D, (bi + 1) * T * D),
            y: c.y.subarray(bi * T * D, (bi + 1) * T * D),
            s0: c.s0.subarray(bi * D, (bi + 1) * D),
            q: c.q,
            r: c.r,
          });
          const runKalman = async (c: ReturnType<typeof makeCase>, B: number, T: number, D: number, diagonal: boolean, smooth: boolean) => {
            const before = backend.memory().tensors;
            const tensors = [
              backend.fromArray(c.transition, diagonal ? [B, T, D] : [B, T, D, D], dtype),
              backend.fromArray(c.b, [B, T, D], dtype),
              backend.fromArray(c.y, [B, T, D], dtype),
              backend.fromArray(c.s0, [B, D], dtype),
            ];
            const [transition, bias, observation, init] = tensors;
            const model = { transition, bias, observation, init, processVariance: c.q, observationVariance: c.r };
            const out = diagonal ? backend.kalmanDiagonal(model, { smooth }) : backend.kalmanDense(model, { smooth });
            const mean = Float64Array.from(await backend.read(out.mean));
            const cov = Float64Array.from(await backend.read(out.covariance));
            backend.dispose([...tensors, out.mean, out.covariance]);
            expect(backend.memory().tensors).toBe(before);
            return { mean, cov };
          };
          // Float64: 1e-10 (ALGORITHMS.md §7 checks these formulas to ~1e-15). Float32: rounding of
          // O(log T) combines, each with small solves, relative to the magnitudes involved.
          const kalmanTol = (T: number, scale: number) => (dtype === 'float64' ? 1e-10 * Math.max(1, scale) : 16 * scanTolerance(eps(), T, scale));

          for (const diagonal of [true, false]) {
            for (const T of [1, 2, 5, 33, 100]) {
              for (const r of [0.5, 100]) {
                it(`${diagonal ? 'kalmanDiagonal' : 'kalmanDense'}, T=${T}, σ²=${r}: filter and smoother moments`, async () => {
                  const B = 2;
                  const D = 3;
                  const c = makeCase(B, T, D, r, diagonal, 500 + T);
                  for (const smooth of [false, true]) {
                    const got = await runKalman(c, B, T, D, diagonal, smooth);
                    for (let bi = 0; bi < B; bi++) {
                      const ref = kalmanReference(entry(c, bi, T, D));
                      const wantMean = smooth ? ref.smoothMean : ref.filterMean;
                      const wantCov = smooth ? ref.smoothCov : ref.filterCov;
                      const gotMean = got.mean.subarray(bi * T * D, (bi + 1) * T * D);
                      expect(maxAbsDiff(gotMean, wantMean), `${smooth ? 'smoothed' : 'filtered'} means`).toBeLessThanOrEqual(kalmanTol(T, maxAbs(wantMean)));
                      if (diagonal) {
                        const gotVar = got.cov.subarray(bi * T * D, (bi + 1) * T * D);
                        const wantVar = Float64Array.from({ length: T * D }, (_, k) => wantCov[Math.floor(k / D) * D * D + (k % D) * (D + 1)]);
                        expect(maxAbsDiff(gotVar, wantVar), 'variances').toBeLessThanOrEqual(kalmanTol(T, maxAbs(wantVar)));
                      } else {
                        const gotCov = got.cov.subarray(bi * T * D * D, (bi + 1) * T * D * D);
                        expect(maxAbsDiff(gotCov, wantCov), 'covariances').toBeLessThanOrEqual(kalmanTol(T, maxAbs(wantCov)));
                      }
                    }
                  }
                });
              }
            }
            it(`${diagonal ? 'kalmanDiagonal' : 'kalmanDense'}: the smoother mean is the exact Levenberg–Marquardt step`, async () => {
              const B = 1;
              const T = 6;
              const D = 3;
              for (const r of [0.01, 1, 1e4]) {
                const c = makeCase(B, T, D, r, diagonal, 900);
                const { mean } = await runKalman(c, B, T, D, diagonal, true);
                const want = levenbergMarquardtStep(entry(c, 0, T, D));
                // The same bound as the smoother's comparison with the sequential RTS smoother above.
                expect(maxAbsDiff(mean, want)).toBeLessThanOrEqual(kalmanTol(T, maxAbs(want)));
              }
            });
          }
        });

        describe('fixtures (independent float64 oracles)', () => {
          for (const name of FIXTURE_NAMES) {
            for (const method of methods) {
              // Each fixture and method twice: with the backend's fused cell kernels (when it has
              // them for the cell) and op by op, both against the oracle.
              for (const fused of [true, false]) {
              it(`${name} with ${method}${fused ? '' : ' (op by op)'}`, async (ctx) => {
                const spec = readModelSpec(loadFixture(name));
                const hasKernels = backend.bindProgram !== undefined && spec.cell.program?.() !== undefined;
                if (!fused && !hasKernels) {
                  ctx.skip(`the run above is already op by op: ${backend.bindProgram ? `the ${spec.cell.kind} cell has no program` : `backend '${backend.name}' has no fused kernels`}`);
                }
                const oracle = Float64Array.from(spec.states!.flat());
                const D = spec.cell.stateSize;
                const opts: EvaluateOptions = {
                  method,
                  initialState: spec.initialState ?? undefined,
                  steps: spec.cell.inputSize === 0 ? spec.steps : undefined,
                  // Chaotic Lorenz-96 in float32: the scan's rounding, amplified along the trajectory,
                  // leaves DEER a residual floor near 1.6e-4 at 1e-5 (it then reports 'stalled'); 1e-4
                  // is within reach and is the float32 default.
                  tolerance: dtype === 'float64' ? 1e-11 : name === 'lorenz96-small' ? 1e-4 : 1e-5,
                };
                const { result, states } = await run(spec.cell, spec.inputs, { ...opts, fused });
                expect(result.diagnostics.fused, 'diagnostics.fused').toBe(fused && hasKernels);
                expect(result.converged, `${result.reason}, residual ${result.residual}`).toBe(true);
                expect(result.residual).toBeLessThanOrEqual(opts.tolerance!);
                // float64: the whole trajectory. float32: compare where the oracle's own float32
                // drift allows. A chaotic system (Lorenz-96) amplifies float32 rounding
                // exponentially, so the comparison stops where the float32 sequential answer has
                // drifted 1e-5 from the oracle (a tenth of the tolerance: different rounding orders
                // then stay within 1e-4 for a while longer).
                if (dtype === 'float64') expect(maxAbsDiff(states, oracle)).toBeLessThanOrEqual(1e-9);
                else await compareFloat32(name, spec, states, oracle, D, result.residual);
              });
              }
            }
          }
        });

        /** The float32 comparison of a fixture run (see above). */
        const compareFloat32 = async (
          name: string,
          spec: ReturnType<typeof readModelSpec>,
          states: Float64Array,
          oracle: Float64Array,
          D: number,
          residual: number,
        ): Promise<void> => {
          const horizon = await float32Horizon(spec, 1e-5);
          if (name !== 'lorenz96-small') expect(horizon, 'float32 sequential drifts from the oracle').toBe(spec.steps);
          expect(horizon, 'steps compared').toBeGreaterThanOrEqual(25);
          expect(maxAbsDiff(states, oracle, horizon * D)).toBeLessThanOrEqual(1e-4);
          expect(residual).toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(oracle)));
        };

        describe('ELK and quasi-ELK', () => {
          for (const method of elkMethods) {
            for (const kalman of ['filter', 'smoother'] as const) {
              it(`${method} (${kalman}, adaptive damping) reproduces the GRU and Elman fixtures`, async () => {
                for (const name of ['gru-torch-small', 'elman-torch-small'] as const) {
                  const spec = readModelSpec(loadFixture(name));
                  const oracle = Float64Array.from(spec.states!.flat());
                  const { result, states } = await run(spec.cell, spec.inputs, {
                    method,
                    kalman,
                    initialState: spec.initialState ?? undefined,
                    tolerance: dtype === 'float64' ? 1e-11 : 1e-5,
                  });
                  expect(result.converged, name).toBe(true);
                  expect(result.history.every((h) => h.sigmaSq !== undefined && h.sigmaSq > 0)).toBe(true);
                  expect(maxAbsDiff(states, oracle), name).toBeLessThanOrEqual(dtype === 'float64' ? 1e-9 : 1e-4);
                }
              });
            }

            it(`${method}: adaptive damping starts undamped — the ${method === 'elk' ? 'DEER' : 'quasi-DEER'} step — and a damped step ends with a Jacobi sweep`, async () => {
              const { cell, inputs, initialState } = gruProblem(2, 40, 3, 5, 31, 2);
              const newton = method === 'elk' ? 'deer' : 'quasi-deer';
              for (const i of [1, 3]) {
                const deer = await run(cell, inputs, { method: newton, initialState, maxIterations: i });
                const elk = await run(cell, inputs, { method, initialState, maxIterations: i });
                // Where Newton's steps lower the merit nothing is damped: the same scans, the same iterates.
                expect(elk.result.history.map((h) => h.sigmaSq)).toEqual(Array(i).fill(Number.POSITIVE_INFINITY));
                expect(maxAbsDiff(elk.states, deer.states)).toBeLessThanOrEqual(0);
              }
              // σ² = 1e12 (λ → 0): the Kalman step is DEER's, then s'_t = f(s̃_{t−1}) — one sequential
              // step from each state of the DEER iterate s̃, evaluated here with the float64 oracle.
              const deer = await run(cell, inputs, { method: newton, initialState, maxIterations: 1 });
              const elk = await run(cell, inputs, { method, initialState, maxIterations: 1, sigmaSq: 1e12 });
              const sweep = await jacobiSweep(cell, inputs, initialState, deer.states);
              expect(maxAbsDiff(elk.states, sweep)).toBeLessThanOrEqual(dtype === 'float64' ? 1e-9 : 1e-4);
            });

            it(`${method} with fixed σ² converges on the Lorenz-96 fixture`, async () => {
              const spec = readModelSpec(loadFixture('lorenz96-small'));
              const oracle = Float64Array.from(spec.states!.flat());
              const tolerance = dtype === 'float64' ? 1e-10 : 1e-4;
              const { result, states } = await run(spec.cell, null, {
                method,
                initialState: spec.initialState ?? undefined,
                steps: spec.steps,
                sigmaSq: method === 'elk' ? 100 : 10,
                tolerance,
              });
              expect(result.converged, `${result.reason}, residual ${result.residual}`).toBe(true);
              expect(result.residual).toBeLessThanOrEqual(tolerance);
              // float32: chaotic, so compared where float32 sequential evaluation still agrees with the oracle.
              const D = spec.cell.stateSize;
              const horizon = dtype === 'float64' ? spec.steps : await float32Horizon(spec, 1e-5);
              expect(horizon, 'steps compared').toBeGreaterThanOrEqual(25);
              expect(maxAbsDiff(states, oracle, horizon * D)).toBeLessThanOrEqual(dtype === 'float64' ? 1e-8 : 1e-3);
            });
          }

          it('rejects bad damping and Kalman options with typed errors', async () => {
            const { cell, inputs } = gruProblem(1, 10, 4, 6, 3);
            for (const sigmaSq of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
              await expect(evaluate(cell, inputs, { backend, dtype, method: 'elk', sigmaSq })).rejects.toMatchObject({ field: 'options.sigmaSq' });
            }
            await expect(evaluate(cell, inputs, { backend, dtype, method: 'elk', kalman: 'rts' as never })).rejects.toMatchObject({ field: 'options.kalman' });
            const { maxTensorElements, maxTotalBytes } = backend.capabilities.limits;
            const D = 128;
            // Past one of the two limits: a T·D² Jacobian beyond the largest tensor, or ELK's estimate
            // (≥ 44 bytes per T·D² in float32, more in float64) beyond the memory budget.
            const T = Math.ceil(Math.min(maxTensorElements, maxTotalBytes / 44) / (D * D)) + 1;
            const big = randomGru(1, D, 5).cell;
            await expect(evaluate(big, { data: new Float64Array(T), shape: [T, 1] }, { backend, dtype, method: 'elk' })).rejects.toBeInstanceOf(ResourceLimitError);
          });
        });

        const slow = options.slowArGru !== undefined && testTier() === 'fast' ? `${options.slowArGru} (fast tier: PELK_TEST_TIER=full runs them, as CI does)` : undefined;
        definePelkArGruCases({ dtype, run, methods, slow });
        defineArGruCases({ dtype, run, methods, fixture: arGruFixture, slow });

        describe("method 'auto'", () => {
          it('follows the backend: sequential where it is faster, else quasi-ELK (quasi-DEER steps) on a stable model', async () => {
            const spec = readModelSpec(loadFixture('gru-torch-small'));
            const opts = { initialState: spec.initialState ?? undefined, tolerance: dtype === 'float64' ? 1e-11 : 1e-5 };
            const auto = await run(spec.cell, spec.inputs, { ...opts, method: 'auto' });
            expect(auto.result.methods[0].method).toBe(backend.capabilities.prefersSequential ? 'sequential' : 'quasi-elk');
            expect(auto.result.methods[0].reason.length).toBeGreaterThan(10);
            const parallelOnly = await run(spec.cell, spec.inputs, { ...opts, method: 'auto', allowSequential: false });
            expect(parallelOnly.result.methods.map((m) => m.method)).toEqual(['quasi-elk']);
            expect(parallelOnly.result.method).toBe('quasi-elk');
            // A stable model: quasi-DEER's steps all work, none is damped.
            expect(parallelOnly.result.history.every((h) => h.sigmaSq === Number.POSITIVE_INFINITY && h.accepted)).toBe(true);
            expect(parallelOnly.result.diagnostics.lyapunov?.verdict).toBe('predictable');
          });

          it('on a backend that runs parallel methods, reads predictability first: an unpredictable model runs sequentially, saying why', async () => {
            // CPU-like backends prefer sequential evaluation anyway; seen as a parallel backend they take the same path as a GPU.
            const parallelBackend = backend.capabilities.prefersSequential ? asParallel(backend) : backend;
            const before = backend.memory().tensors;
            const l96 = chaoticLorenz();
            const chaotic = await evaluate(l96.cell, null, { backend: parallelBackend, dtype, method: 'auto', steps: l96.steps, initialState: l96.initialState });
            expect(chaotic.methods.map((m) => m.method)).toEqual(['sequential']);
            expect(chaotic.methods[0].reason).toMatch(/unpredictable/);
            expect(chaotic.diagnostics.lyapunov?.verdict).toBe('unpredictable');
            expect(chaotic.converged).toBe(true);
            chaotic.dispose();
            const { cell, inputs, initialState } = gruProblem(1, 300, 3, 6, 7, 0.5);
            const calm = await evaluate(cell, inputs, { backend: parallelBackend, dtype, method: 'auto', initialState });
            expect(calm.methods.map((m) => m.method)).toEqual(['quasi-elk']);
            expect(calm.diagnostics.lyapunov?.verdict).toBe('predictable');
            expect(calm.converged).toBe(true);
            calm.dispose();
            expect(backend.memory().tensors).toBe(before);
          });

          it('reports the largest Lyapunov exponent: > 0 on chaotic Lorenz-96 (F = 8), < 0 on a contractive GRU; for sequential runs when asked', async () => {
            const l96 = chaoticLorenz();
            const opts = { steps: l96.steps, initialState: l96.initialState };
            const chaotic = (await run(l96.cell, null, { ...opts, method: 'sequential', lyapunov: true })).result.diagnostics.lyapunov;
            expect(chaotic?.exponent).toBeGreaterThan(0);
            expect(chaotic?.verdict).toBe('unpredictable');
            expect(chaotic?.reading).toMatch(/grow with T/);
            const { cell, inputs, initialState } = gruProblem(1, 300, 3, 6, 7, 0.5);
            const calm = (await run(cell, inputs, { method: 'quasi-deer', initialState })).result.diagnostics.lyapunov;
            expect(calm?.exponent).toBeLessThan(0);
            expect(calm?.verdict).toBe('predictable');
            expect(calm?.steps).toBeGreaterThan(100);
            expect((await run(cell, inputs, { method: 'sequential', initialState })).result.diagnostics.lyapunov).toBeUndefined();
            expect((await run(cell, inputs, { method: 'quasi-deer', initialState, lyapunov: false })).result.diagnostics.lyapunov).toBeUndefined();
            await expect(evaluate(cell, inputs, { backend, dtype, lyapunov: 'yes' as never })).rejects.toMatchObject({ field: 'options.lyapunov' });
          });
        });

        describe('cells: analytic Jacobians against central finite differences', () => {
          for (const c of jacobianCases()) {
            it(c.name, async (ctx) => {
              if (dtype === 'float32' && backend.capabilities.dtypes.includes('float64')) {
                ctx.skip('float32 central differences are too coarse to check a Jacobian; this backend checks them in float64');
              }
              await checkJacobians(backend, dtype, c.cell, c.seed);
            });
          }
        });

        describe('fused cell kernels equal the op-by-op cells', () => defineFusedCases(() => backend, dtype));
        describe('fused adjoint sweeps equal the host vector–Jacobian products', () => defineFusedAdjointCases(() => backend, dtype));

        describe('shapes: T = 1, odd T, block boundaries, batches', () => {
          // 2500 crosses the sequential solver's chunks of 1024 steps.
          for (const T of [1, 2, 7, 63, 64, 65, 257, 2500]) {
            it(`GRU, B = 3, T = ${T}: every method equals per-entry sequential evaluation`, async () => {
              const { cell, inputs, initialState } = gruProblem(3, T, 4, 6, T);
              const s0 = initialState;
              const ref = await run(cell, inputs, { method: 'sequential', initialState });
              for (const method of parallel) {
                // Solver tolerance near roundoff, so what remains is rounding: the scan's O(log T)
                // combines per step, propagated through the contraction.
                const { result, states } = await run(cell, inputs, { method, initialState, tolerance: 32 * eps() });
                expect(result.converged).toBe(true);
                expect(result.shape).toEqual([3, T, 6]);
                expect(maxAbsDiff(states, ref.states)).toBeLessThanOrEqual(scanTolerance(eps(), T, 1));
              }
              // Batch entries are independent: entry 1 alone gives the same states as in the batch.
              const single = await run(cell, { data: inputs.data.slice(T * 4, 2 * T * 4), shape: [T, 4] }, {
                method: 'sequential',
                initialState: s0.data.slice(6, 12),
              });
              expect(maxAbsDiff(single.states, ref.states.subarray(T * 6, 2 * T * 6))).toBeLessThanOrEqual(16 * eps());
              expect(maxAbsDiff(ref.states.subarray(0, T * 6), ref.states.subarray(T * 6, 2 * T * 6))).toBeGreaterThan(0);
            });
          }
        });

        describe('finite convergence (Prop. 1): after i iterations the first i states are exact', () => {
          // DEER and quasi-DEER; ELK and quasi-ELK (Kalman filter) too, damped or not: every step
          // extends the exact prefix (a damped one through its Jacobi sweep).
          const cases: { method: Method; sigmaSq?: number | 'adaptive' }[] = [
            ...parallel.map((method) => ({ method })),
            ...(['elk', 'quasi-elk'] as const)
              .filter((m) => methods.includes(m))
              .flatMap((method) => [1e-2, 1, 'adaptive' as const].map((sigmaSq) => ({ method, sigmaSq }))),
          ];
          for (const { method, sigmaSq } of cases) {
            it(`${method}${sigmaSq === undefined ? '' : `, σ² = ${sigmaSq}`}, GRU, T = 48, random initial guess`, async () => {
              const T = 48;
              const D = 5;
              const { cell, inputs, initialState } = gruProblem(1, T, 3, D, 99, 2.5);
              const ref = await run(cell, inputs, { method: 'sequential', initialState });
              const guess = { data: randomArray(T * D, 5, 3), shape: [T, D] };
              // "Exact" up to rounding: the first i states of iteration i come from the same steps as
              // sequential evaluation in this dtype, with different rounding (the scan's combines).
              // The bound: 450 roundoffs (1e-13 in float64), or 4× how far this dtype's own sequential
              // evaluation is from the float64 one — the rounding this trajectory amplifies (the
              // weights are scaled by 2.5, so it is not contractive everywhere).
              const truth = await evaluate(cell, inputs, { backend: float64Oracle, dtype: 'float64', method: 'sequential', initialState });
              const drift = maxAbsDiff(ref.states, await truth.read());
              truth.dispose();
              const exact = Math.max(450 * eps(), 4 * drift);
              for (const i of [1, 2, 3, 10, 47]) {
                // The smallest tolerance, so that no run stops before i iterations unless it is at
                // its rounding floor already.
                const { result, states } = await run(cell, inputs, {
                  method,
                  sigmaSq,
                  initialState,
                  initialGuess: guess,
                  maxIterations: i,
                  tolerance: MIN_TOLERANCE[dtype],
                });
                expect(result.iterations).toBeLessThanOrEqual(i);
                expect(maxAbsDiff(states, ref.states, i * D), `after ${i} iterations`).toBeLessThanOrEqual(exact);
              }
              const full = await run(cell, inputs, { method, sigmaSq, initialState, initialGuess: guess, maxIterations: T + 1 });
              expect(full.result.converged, `${full.result.reason} after ${full.result.iterations}`).toBe(true);
              expect(full.result.iterations).toBeLessThanOrEqual(T + 1);
            });
          }
        });

        describe('the "difficult" case: GRU weights ×100, inputs /100', () => {
          for (const method of parallel) {
            it(`${method} ends exact`, async () => {
              const { cell, inputs, initialState } = gruProblem(1, 200, 2, 4, 17, 100);
              for (let i = 0; i < inputs.data.length; i++) (inputs.data as Float64Array)[i] /= 100;
              const ref = await run(cell, inputs, { method: 'sequential', initialState });
              // The residual bound is 100× below the comparison: the error a residual leaves in the
              // states is amplified along the trajectory (measured ~10× here).
              const tolerance = dtype === 'float64' ? 1e-11 : 1e-6;
              const { result, states } = await run(cell, inputs, { method, initialState, tolerance });
              expect(result.converged, `${result.reason}, residual ${result.residual}`).toBe(true);
              expect(result.residual).toBeLessThanOrEqual(tolerance);
              expect(maxAbsDiff(states, ref.states)).toBeLessThanOrEqual(dtype === 'float64' ? 1e-9 : 1e-4);
            });
          }
        });

        describe('peak memory within the refusal estimate', () => defineMemoryCases(() => backend, dtype));

        defineCertificateCases({ backend: () => backend, dtype, run, methods });

        describe('gradients (grad)', () => defineGradCases({ backend: () => backend, dtype, methods }));

        defineLyapunovCases({ backend: () => backend, dtype });

        describe('bad input: typed errors, nothing allocated', () => {
          it('rejects shapes, values and methods', async () => {
            const { cell, inputs } = gruProblem(1, 10, 4, 6, 3);
            const before = backend.memory().tensors;
            const call = (x: unknown, o: EvaluateOptions = {}) => evaluate(cell, x as never, { backend, dtype, ...o });
            await expect(call([[1, 2, 3]])).rejects.toBeInstanceOf(ShapeError);
            await expect(call([])).rejects.toBeInstanceOf(ShapeError);
            await expect(call([[1, 2, Number.NaN, 4]])).rejects.toBeInstanceOf(NonFiniteError);
            await expect(call(inputs, { method: 'newton' as Method })).rejects.toBeInstanceOf(UnknownMethodError);
            await expect(call(inputs, { maxIterations: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
            await expect(call(inputs, { initialState: [Number.POSITIVE_INFINITY, 0, 0, 0, 0, 0] })).rejects.toBeInstanceOf(NonFiniteError);
            await expect(call(inputs, { fused: 'yes' as never })).rejects.toMatchObject({ field: 'options.fused', expected: 'a boolean' });
            expect(backend.memory().tensors).toBe(before);
          });

          it('refuses a dense problem beyond the declared limits before allocating', async () => {
            const { maxTensorElements, maxTotalBytes } = backend.capabilities.limits;
            const D = 256;
            // DEER's estimate is ≥ 12 bytes per T·D² (3 float32 values).
            const T = Math.ceil(Math.min(maxTensorElements, maxTotalBytes / 12) / (D * D)) + 1;
            const { cell } = randomGru(1, D, 5);
            const before = backend.memory().tensors;
            const err = await evaluate(cell, { data: new Float64Array(T), shape: [T, 1] }, { backend, dtype, method: 'deer' }).catch((e) => e);
            expect(err).toBeInstanceOf(ResourceLimitError);
            expect(err.field).toBe('options.method');
            expect(backend.memory().tensors).toBe(before);
          });

          it('frees everything when a run is aborted mid-way', async () => {
            const { cell, inputs } = gruProblem(1, 50, 4, 6, 3, 3);
            const before = backend.memory().tensors;
            const controller = new AbortController();
            const run = evaluate(cell, inputs, {
              backend,
              dtype,
              method: 'quasi-deer',
              maxIterations: 10,
              signal: controller.signal,
              onIteration: (i) => i.iteration === 2 && controller.abort(),
            });
            await expect(run).rejects.toMatchObject({ code: 'ABORTED' });
            expect(backend.memory().tensors).toBe(before);
          });

          it('frees everything when the cell throws mid-run, with every method', async () => {
            // Fails on its 6th call: inside an iteration (ELK: inside a candidate's linearisation).
            const inputs = { data: randomArray(40 * 3, 9), shape: [40, 3] };
            const before = backend.memory().tensors;
            for (const method of methods) {
              await expect(evaluate(failingCell(6), inputs, { backend, dtype, method }), method).rejects.toThrow('cell failed');
              expect(backend.memory().tensors, method).toBe(before);
            }
          });
        });
      });
    }
  });
}

/** A GRU problem with random weights (scaled by `scale`), inputs and initial states. */
/**
 * Lorenz-96, D = 8, F = 8 (chaotic), T = 1,000 from near its unstable equilibrium: its exponent,
 * ≈ 0.013 per step (dt = 0.01), is resolved from ~6 standard errors over the ~1,000-step window.
 */
function chaoticLorenz() {
  const D = 8;
  return {
    cell: lorenz96({ dimension: D, forcing: 8, dt: 0.01, integrator: 'rk4' }),
    steps: 1000,
    initialState: Array.from({ length: D }, (_, i) => (i === D - 1 ? 8.01 : 8)),
  };
}

/** `backend` as a backend that prefers parallel methods (what `auto` sees on a GPU). */
function asParallel(backend: ComputeBackend): ComputeBackend {
  const capabilities = { ...backend.capabilities, prefersSequential: false };
  return new Proxy(backend, {
    get(target, key) {
      if (key === 'capabilities') return capabilities;
      const value = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * One Jacobi sweep of a trajectory, in float64 on the CPU oracle: `s'_t = f(s_{t−1})` with `s_0` the
 * initial state — what every damped ELK step ends with.
 */
async function jacobiSweep(cell: Cell, inputs: ShapedArray, initialState: ShapedArray, states: Float64Array): Promise<Float64Array> {
  const b = float64Oracle;
  const D = cell.stateSize;
  const B = inputs.shape.length === 3 ? inputs.shape[0] : 1;
  const T = inputs.shape[inputs.shape.length - 2];
  const u = b.fromArray(inputs.data, [B, T, cell.inputSize], 'float64');
  const bound = cell.bind(b, { dtype: 'float64', inputs: u, batch: B, steps: T });
  try {
    const swept = b.tidy(() => bound.apply(b.shiftTime(b.fromArray(states, [B, T, D], 'float64'), b.fromArray(initialState.data, [B, D], 'float64'))));
    const out = Float64Array.from(await b.read(swept));
    b.dispose(swept);
    return out;
  } finally {
    bound.dispose();
    b.dispose(u);
  }
}

function gruProblem(B: number, T: number, I: number, D: number, seed: number, scale = 1) {
  return {
    ...randomGru(I, D, seed, scale),
    inputs: { data: randomArray(B * T * I, seed + 1), shape: B === 1 ? [T, I] : [B, T, I] },
    initialState: { data: randomArray(B * D, seed + 2, 0.5), shape: B === 1 ? [D] : [B, D] },
  };
}


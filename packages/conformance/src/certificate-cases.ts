/**
 * The certificate cases: `converged` is true only when the returned trajectory's true residual is
 * within the tolerance (and nothing was clipped or reset), a result that is not converged says why,
 * progress and abort work on every path, and the defaults converge. Registered by
 * `defineConformanceSuite` for every backend and dtype.
 */
import { CpuBackend } from '@pelk/backend-cpu';
import {
  AbortError,
  type Cell,
  type ComputeBackend,
  type DType,
  DAMPED_MIN_ITERATIONS,
  DEFAULT_TOLERANCE,
  type EvaluateOptions,
  type EvaluateResult,
  InvalidArgumentError,
  LINEARIZE_SEGMENT_STEPS,
  MIN_TOLERANCE,
  type Method,
  SEGMENT_STEPS,
  type ShapedArray,
  evaluate,
} from '@pelk/core';
import { describe, expect, it } from 'vitest';
import { cellFromSpec, randomRnn } from './cases.js';
import { maxAbs, randomArray } from './reference.js';

/** What the certificate cases need from the suite. */
export interface CertificateContext {
  readonly backend: () => ComputeBackend;
  readonly dtype: DType;
  /** Evaluates on the backend under test, checks nothing leaked, returns the states. */
  readonly run: (
    cell: Cell,
    inputs: number[][] | number[][][] | ShapedArray | null,
    opts: EvaluateOptions,
  ) => Promise<{ result: EvaluateResult; states: Float64Array }>;
  /** Methods under test. */
  readonly methods: readonly Method[];
}

const float64Oracle = new CpuBackend();

/**
 * The error amplification of a trajectory: with `r` a bound on every step's residual, the error of
 * state t is at most `r · a_t`, where `a_t = 1 + ‖J_t‖∞ a_{t−1}` (`a_0 = 0`) and `J_t` the Jacobian
 * at the exact trajectory (first order). Returns `max_t a_t` over every batch entry, computed in
 * float64 on the CPU backend, with the exact (float64 sequential) states.
 */
async function amplification(cell: Cell, inputs: ShapedArray, initialState: ShapedArray, B: number, T: number): Promise<number> {
  const b = float64Oracle;
  const truth = await evaluate(cell, inputs, { backend: b, dtype: 'float64', method: 'sequential', initialState });
  const D = cell.stateSize;
  const u = b.fromArray(Float64Array.from(inputs.data), [B, T, cell.inputSize], 'float64');
  const s0 = b.fromArray(Float64Array.from(initialState.data), [B, D], 'float64');
  const bound = cell.bind(b, { dtype: 'float64', inputs: u, batch: B, steps: T });
  try {
    const J = b.tidy(() => bound.linearize(b.shiftTime(b.reshape(truth.states, [B, T, D]), s0), 'dense').jacobian);
    const j = await b.read(J);
    b.dispose(J);
    let worst = 0;
    for (let e = 0; e < B; e++) {
      let a = 0;
      for (let t = 0; t < T; t++) {
        let norm = 0;
        for (let r = 0; r < D; r++) {
          let row = 0;
          for (let c = 0; c < D; c++) row += Math.abs(j[((e * T + t) * D + r) * D + c]);
          norm = Math.max(norm, row);
        }
        a = 1 + norm * a;
        worst = Math.max(worst, a);
      }
    }
    return worst;
  } finally {
    bound.dispose();
    b.dispose([u, s0]);
    truth.dispose();
  }
}

/** `max |a − b|` over the first `n` elements (all when omitted). */
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>, n = a.length): number {
  let m = 0;
  for (let i = 0; i < n; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Registers the certificate cases (inside the suite's per-dtype `describe`). */
export function defineCertificateCases(ctx: CertificateContext): void {
  const { dtype, run } = ctx;
  const eps = () => ctx.backend().capabilities.epsilon[dtype] ?? 2 ** -24;
  const parallel = ctx.methods.filter((m) => m !== 'sequential');

  describe('the certificate: converged ⇔ residual within tolerance, and reasons', () => {
    it('a ReLU trajectory that outgrows the clip bound: parallel methods say not converged (clipped)', async () => {
      // s_t = relu(2 s_{t−1} + 1) from 0: s_60 = 2⁶⁰ − 1 ≈ 1.15e18, far beyond the clip bound 1e8.
      const cell = cellFromSpec({
        type: 'elman',
        convention: 'torch',
        inputSize: 1,
        hiddenSize: 1,
        nonlinearity: 'relu',
        weights: { weight_ih_l0: [[0]], weight_hh_l0: [[2]], bias_ih_l0: [1], bias_hh_l0: [0] },
      });
      const T = 60;
      const inputs = { data: new Float64Array(T), shape: [T, 1] };
      const seq = await run(cell, inputs, { method: 'sequential' });
      expect(seq.result.converged).toBe(true);
      expect(seq.result.residual).toBe(0);
      expect(seq.states[T - 1]).toBeCloseTo(2 ** 60 - 1, -6);
      for (const method of parallel) {
        const { result } = await run(cell, inputs, { method });
        expect(result.converged, method).toBe(false);
        expect(result.reason, method).not.toBe('converged');
        expect(result.residual, method).toBeGreaterThan(1);
        if (method === 'deer' || method === 'quasi-deer') {
          // The clipped iterate repeats: the run ends at once, saying so.
          expect(result.reason, method).toBe('clipped');
          expect(result.diagnostics.clippedValues, method).toBeGreaterThan(0);
          expect(result.iterations, method).toBeLessThan(10);
        }
      }
    });

    it('random cells, every method: converged ⇒ residual ≤ tolerance and states within the amplified residual of sequential', async () => {
      const kinds = ['gru', 'lstm', 'elman'] as const;
      const tolerance = DEFAULT_TOLERANCE[dtype];
      let runs = 0;
      let certified = 0;
      for (let seed = 0; seed < 6; seed++) {
        const next = randomArray(4, 7000 + seed, 1);
        const kind = kinds[seed % 3];
        const B = 1 + (seed % 2);
        const T = 24 + Math.floor((next[0] + 1) * 20);
        const I = 2;
        const H = 2 + (seed % 3);
        const scale = 1 + 0.5 * (next[1] + 1); // 1 … 2: contractive to mildly expanding
        const cell = randomRnn(kind, I, H, 7100 + seed, scale);
        const D = cell.stateSize;
        const inputs = { data: randomArray(B * T * I, 7200 + seed), shape: [B, T, I] };
        const initialState = { data: randomArray(B * D, 7300 + seed, 0.5), shape: [B, D] };
        const seq = await run(cell, inputs, { method: 'sequential', initialState });
        const truth = await evaluate(cell, inputs, { backend: float64Oracle, dtype: 'float64', method: 'sequential', initialState });
        const exact = Float64Array.from(await truth.read());
        truth.dispose();
        const drift = maxDiff(seq.states, exact);
        const a = await amplification(cell, inputs, initialState, B, T);
        const scaleOf = 1 + maxAbs(exact);
        const label = `seed ${seed}: ${kind}, B=${B}, T=${T}, D=${D}, scale ${scale.toFixed(2)}`;
        for (const method of [...parallel, ...(ctx.methods.includes('sequential') ? ['auto' as const] : [])]) {
          const { result, states } = await run(cell, inputs, { method, initialState, allowSequential: false });
          expect(result.converged, `${label}, ${method}`).toBe(result.reason === 'converged');
          runs++;
          if (!result.converged) continue;
          certified++;
          expect(result.residual, `${label}, ${method}`).toBeLessThanOrEqual(tolerance);
          // Both trajectories are within a·(residual + rounding of one step) of the exact one; the
          // sequential one's rounding is measured (drift), the residual's own rounding is 16 roundoffs.
          const bound = a * (tolerance + 16 * eps() * scaleOf) + 2 * drift;
          expect(maxDiff(states, seq.states), `${label}, ${method} (amplification ${a.toFixed(1)})`).toBeLessThanOrEqual(bound);
        }
      }
      // Not vacuous: these models are within every method's reach.
      expect(certified, `${certified} of ${runs} runs converged`).toBe(runs);
    });

    it('long sequences (linearised in segments on host-memory backends) converge to the sequential answer', async () => {
      const T = LINEARIZE_SEGMENT_STEPS * 2 + 700;
      const B = 2;
      const cell = randomRnn('gru', 2, 3, 96);
      const inputs = { data: randomArray(B * T * 2, 97), shape: [B, T, 2] };
      const initialState = { data: randomArray(B * 3, 98, 0.5), shape: [B, 3] };
      const seq = await run(cell, inputs, { method: 'sequential', initialState });
      for (const method of ctx.methods.filter((m) => m === 'quasi-deer' || m === 'quasi-elk')) {
        const { result, states } = await run(cell, inputs, { method, initialState });
        expect(result.converged, `${method}: ${result.reason}, residual ${result.residual}`).toBe(true);
        // A contractive GRU (weights of scale 1): the error is a small multiple of the residual.
        expect(maxDiff(states, seq.states), method).toBeLessThanOrEqual(10 * DEFAULT_TOLERANCE[dtype]);
      }
    });

    it('refuses a tolerance below 16 unit roundoffs of the dtype', async () => {
      const cell = randomRnn('gru', 1, 2, 5);
      const inputs = { data: new Float64Array(4), shape: [4, 1] };
      const err = await evaluate(cell, inputs, { backend: ctx.backend(), dtype, tolerance: MIN_TOLERANCE[dtype] / 2 }).catch((e) => e);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect(err.field).toBe('options.tolerance');
      const ok = await run(cell, inputs, { tolerance: MIN_TOLERANCE[dtype], method: 'sequential' });
      expect(ok.result.converged).toBe(true);
    });

    it('the default iteration caps converge on short sequences (ELK methods at T = 1 and 3: T + 1 with the filter, more with the smoother)', async () => {
      for (const T of [1, 3]) {
        const cell = randomRnn('gru', 2, 3, 40 + T, 1.5);
        const inputs = { data: randomArray(T * 2, 50 + T), shape: [T, 2] };
        const seq = await run(cell, inputs, { method: 'sequential' });
        for (const method of ctx.methods.filter((m) => m === 'elk' || m === 'quasi-elk')) {
          for (const kalman of ['filter', 'smoother'] as const) {
            for (const sigmaSq of ['adaptive', 1e-2] as const) {
              const { result, states } = await run(cell, inputs, { method, kalman, sigmaSq });
              const what = `${method} (${kalman}, σ² = ${sigmaSq}), T = ${T}`;
              expect(result.converged, `${what}: ${result.reason} after ${result.iterations}`).toBe(true);
              if (kalman === 'filter') expect(result.diagnostics.maxIterations, what).toBe(T + 1);
              else expect(result.diagnostics.maxIterations, what).toBe(DAMPED_MIN_ITERATIONS);
              expect(maxDiff(states, seq.states)).toBeLessThanOrEqual(10 * DEFAULT_TOLERANCE[dtype]);
            }
          }
        }
      }
    });

    it("'auto' stays within one iteration cap for its whole chain", async () => {
      // quasi-DEER cannot converge in 3 iterations here, so auto moves on; the cap still holds.
      const cell = randomRnn('gru', 2, 4, 77, 2.5);
      const T = 64;
      const inputs = { data: randomArray(T * 2, 78), shape: [T, 2] };
      const { result } = await run(cell, inputs, { method: 'auto', allowSequential: false, maxIterations: 5 });
      expect(result.iterations).toBeLessThanOrEqual(5);
      expect(result.methods.reduce((n, m) => n + m.iterations, 0)).toBe(result.iterations);
      if (!result.converged) expect(result.reason).not.toBe('converged');
    });
  });

  describe('progress and abort on every path', () => {
    it('sequential reports progress every progressEvery steps and sees an abort requested there', async () => {
      const cell = randomRnn('gru', 2, 8, 90);
      const T = 1200;
      const inputs = { data: randomArray(T * 2, 91), shape: [T, 2] };
      const fractions: number[] = [];
      const { result } = await run(cell, inputs, { method: 'sequential', progressEvery: 200, onIteration: (i) => fractions.push(i.fraction ?? -1) });
      expect(result.converged).toBe(true);
      expect(fractions).toEqual([1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6]);
      const backend = ctx.backend();
      const before = backend.memory().tensors;
      const controller = new AbortController();
      const aborted = evaluate(cell, inputs, {
        backend,
        dtype,
        method: 'sequential',
        progressEvery: 200,
        signal: controller.signal,
        onIteration: (i) => (i.fraction ?? 0) >= 2 / 6 && controller.abort(),
      });
      await expect(aborted).rejects.toBeInstanceOf(AbortError);
      expect(backend.memory().tensors).toBe(before);
    });

    it('sequential across segments of time: reports on the same steps and continues exactly across boundaries', async (tc) => {
      if (!ctx.backend().hostData) {
        // Segments are core code, the same on every backend; 33,000 steps of per-step device ops
        // take minutes on a software GPU.
        tc.skip(`backend '${ctx.backend().name}' runs sequential steps as device ops (no host rollout); segments are checked on host-memory backends`);
      }
      const cell = randomRnn('lstm', 2, 3, 94);
      const D = cell.stateSize;
      const T = SEGMENT_STEPS * 2 + 500;
      const inputs = { data: randomArray(T * 2, 95), shape: [T, 2] };
      const fractions: number[] = [];
      const progressEvery = 5000;
      const whole = await run(cell, inputs, { method: 'sequential', progressEvery, onIteration: (i) => fractions.push(i.fraction ?? -1) });
      expect(fractions).toEqual(Array.from({ length: Math.floor((T - 1) / progressEvery) }, (_, k) => ((k + 1) * progressEvery) / T));
      // Restart from the state just before each segment boundary: the same next states.
      for (const boundary of [Math.ceil(SEGMENT_STEPS / progressEvery) * progressEvery, T - 50]) {
        const from = whole.states.slice((boundary - 1) * D, boundary * D);
        const part = await run(cell, { data: inputs.data.slice(boundary * 2, (boundary + 40) * 2), shape: [40, 2] }, { method: 'sequential', initialState: Array.from(from) });
        expect(maxDiff(part.states, whole.states.subarray(boundary * D, (boundary + 40) * D))).toBeLessThanOrEqual(16 * eps() * (1 + maxAbs(part.states)));
      }
    });

    for (const method of ['sequential', 'quasi-deer'] as const) {
      it(`${method}: an abort fired by a timer is seen promptly, with every tensor released`, async () => {
        const backend = ctx.backend();
        // Weights ×3 and the smallest tolerance: quasi-DEER needs many iterations, so the run is
        // still going when the timer fires, however fast the backend.
        const cell = randomRnn('gru', 2, 8, 92, 3);
        const T = method === 'sequential' ? 200_000 : 20_000;
        const tolerance = MIN_TOLERANCE[dtype];
        const inputs = { data: randomArray(T * 2, 93), shape: [T, 2] };
        const before = backend.memory().tensors;
        const controller = new AbortController();
        let firedAt = 0;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const arm = () => {
          timer = setTimeout(() => {
            firedAt = performance.now();
            controller.abort();
          }, 30);
        };
        // Sequential: 30 ms after the start. Parallel methods: 30 ms after the first iteration, so
        // that the abort lands inside the iterations, not in the one-time setup (uploads, and on a
        // device backend its first pipeline compilations).
        if (method === 'sequential') arm();
        const started = performance.now();
        const outcome = await evaluate(cell, inputs, {
          backend,
          dtype,
          method,
          tolerance,
          maxIterations: 10_000,
          signal: controller.signal,
          progressEvery: 2000,
          onIteration: (i) => {
            if (method !== 'sequential' && i.iteration === 1) arm();
          },
        }).catch((e) => e);
        clearTimeout(timer);
        const latency = performance.now() - firedAt;
        expect(backend.memory().tensors).toBe(before);
        // The problem is sized to outlast the timer on any backend.
        expect(outcome, `finished in ${(performance.now() - started).toFixed(0)} ms, before the timer`).toBeInstanceOf(AbortError);
        // The bound: 100 ms, or one iteration where an iteration takes longer (the event loop is
        // served between slices, segments and iterations). An iteration is timed on its own.
        let iterationMs = 0;
        if (method !== 'sequential') {
          const stamps: number[] = [];
          const probe = await evaluate(cell, inputs, { backend, dtype, method, tolerance, maxIterations: 3, onIteration: () => stamps.push(performance.now()) });
          probe.dispose();
          for (let k = 1; k < stamps.length; k++) iterationMs = Math.max(iterationMs, stamps[k] - stamps[k - 1]);
        }
        expect(latency, `abort seen ${latency.toFixed(0)} ms after the timer; one iteration takes ${iterationMs.toFixed(0)} ms`).toBeLessThanOrEqual(
          Math.max(100, 1.5 * iterationMs + 50),
        );
      });
    }
  });
}

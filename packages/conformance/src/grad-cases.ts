/**
 * The gradient cases: `grad` on the backend under test equals PyTorch autograd (BPTT through the
 * sequential recurrence, float64) on the GRU, LSTM and Elman fixtures and the "difficult" GRU, for
 * every method and every adjoint solve; a custom cell (no analytic products) gets its input and
 * initial-state gradients from its Jacobian and central differences; bad requests are refused with
 * typed errors before anything is allocated, and nothing leaks. Registered by
 * `defineConformanceSuite` for every backend and dtype.
 */
import {
  type AdjointMethod,
  type Cell,
  type ComputeBackend,
  type DType,
  evaluate,
  type GradOptions,
  type GradResult,
  grad,
  InvalidArgumentError,
  type Method,
  NotConvergedError,
  ShapeError,
  type Tensor,
} from '@pelk/core';
import { customCell, readCellSpec } from '@pelk/models';
import { describe, expect, it } from 'vitest';
import { GRAD_FIXTURE_NAMES, type GradFixture, loadGradFixture } from './fixtures.js';
import { maxAbs } from './reference.js';

/** What the gradient cases need from the suite. */
export interface GradContext {
  readonly backend: () => ComputeBackend;
  readonly dtype: DType;
  /** Methods under test. */
  readonly methods: readonly Method[];
}

const flat = (x: unknown): number[] => (Array.isArray(x) ? x.flatMap(flat) : [x as number]);

/** `max |got − want| / max |want|`: the error relative to the array's scale. */
function relativeError(got: ArrayLike<number>, want: readonly number[]): number {
  let err = 0;
  for (let k = 0; k < want.length; k++) err = Math.max(err, Math.abs(got[k] - want[k]));
  return err / maxAbs(want);
}

/**
 * The bounds (issue 15): float64 within 1e-8 relative of the oracle, float32 within 1e-3. The
 * forward tolerance is tight enough (1e-11 / 1e-5 absolute) that the trajectory's own error, which
 * the gradient inherits, stays below them.
 */
const BOUND: Record<DType, number> = { float64: 1e-8, float32: 1e-3 };
const FORWARD_TOLERANCE: Record<DType, number> = { float64: 1e-11, float32: 1e-5 };

function expectOracle(g: GradResult, fx: GradFixture, dtype: DType, label: string): void {
  const bound = BOUND[dtype];
  expect(g.adjoint.converged, `${label}: adjoint ${g.adjoint.reason}, residual ${g.adjoint.residual}`).toBe(true);
  expect(Object.keys(g.parameters).sort(), label).toEqual(Object.keys(fx.gradients.parameters).sort());
  for (const [name, want] of Object.entries(fx.gradients.parameters)) {
    expect(relativeError(g.parameters[name].data, flat(want)), `${label}: ∂L/∂${name}`).toBeLessThanOrEqual(bound);
  }
  expect(relativeError(g.inputs!.data, flat(fx.gradients.inputs)), `${label}: ∂L/∂inputs`).toBeLessThanOrEqual(bound);
  expect(relativeError(g.initialState.data, fx.gradients.initialState), `${label}: ∂L/∂s0`).toBeLessThanOrEqual(bound);
  expect(Math.abs(g.loss - fx.loss) / Math.max(1, Math.abs(fx.loss)), `${label}: loss`).toBeLessThanOrEqual(bound);
}

/** Registers the gradient cases for one backend and dtype. */
export function defineGradCases(ctx: GradContext): void {
  const { dtype } = ctx;
  const fixtures = Object.fromEntries(GRAD_FIXTURE_NAMES.map((n) => [n, loadGradFixture(n)])) as Record<(typeof GRAD_FIXTURE_NAMES)[number], GradFixture>;

  /** `grad` on the backend under test; checks that nothing leaked. */
  const run = async (fx: GradFixture, options: GradOptions, cell: Cell = readCellSpec(fx.cell)): Promise<GradResult> => {
    const backend = ctx.backend();
    const before = backend.memory().tensors;
    const g = await grad(cell, fx.inputs, fx.cotangent, {
      backend,
      dtype,
      initialState: fx.initialState,
      tolerance: FORWARD_TOLERANCE[dtype],
      lyapunov: false,
      ...options,
    });
    expect(backend.memory().tensors, 'tensors left alive after grad').toBe(before);
    return g;
  };

  describe('gradients equal PyTorch autograd', () => {
    for (const name of GRAD_FIXTURE_NAMES) {
      for (const method of ctx.methods) {
        it(`${name}, ${method}`, async () => {
          const fx = fixtures[name];
          const g = await run(fx, { method });
          expectOracle(g, fx, dtype, `${name} ${method} (adjoint ${g.adjoint.method})`);
        });
      }
    }
    for (const adjoint of ['sequential', 'dense', 'diagonal'] as const satisfies readonly AdjointMethod[]) {
      it(`every adjoint solve: ${adjoint} (gru-torch-small and the difficult GRU)`, async () => {
        for (const name of ['gru-torch-small', 'gru-difficult'] as const) {
          const fx = fixtures[name];
          const g = await run(fx, { method: 'deer', adjoint });
          expect(g.adjoint.method).toBe(adjoint);
          expectOracle(g, fx, dtype, `${name} adjoint ${adjoint}`);
          if (adjoint === 'sequential') expect(g.adjoint.iterations).toBe(1);
          else expect(g.adjoint.history.length).toBe(g.adjoint.iterations);
        }
      });
    }

    it('a forward result is reused, and its states are the trajectory differentiated', async () => {
      const fx = fixtures['lstm-torch-small'];
      const backend = ctx.backend();
      const cell = readCellSpec(fx.cell);
      const forward = await evaluate(cell, fx.inputs, { backend, dtype, method: 'quasi-deer', initialState: fx.initialState, tolerance: FORWARD_TOLERANCE[dtype] });
      try {
        const g = await run(fx, { forward }, cell);
        expect(g.forward.method).toBe('quasi-deer');
        expect(g.forward.iterations).toBe(forward.iterations);
        expect(Array.from(g.states.data)).toEqual(Array.from(await forward.read()));
        expectOracle(g, fx, dtype, 'lstm reused forward');
        // The initial state comes with the result; a different one is refused, nothing allocated.
        const before = backend.memory().tensors;
        const own = await grad(cell, fx.inputs, fx.cotangent, { backend, forward, lyapunov: false });
        expect(Array.from(own.initialState.data)).toEqual(Array.from(g.initialState.data));
        const other = fx.initialState.map((v) => v + 1);
        await expect(grad(cell, fx.inputs, fx.cotangent, { backend, forward, initialState: other })).rejects.toMatchObject({ field: 'options.initialState' });
        expect(backend.memory().tensors).toBe(before);
      } finally {
        forward.dispose();
      }
    });
  });

  it('batches: two sequences (cotangents C and 2C) give their own input and initial-state gradients and the summed weights', async () => {
    const fx = fixtures['gru-torch-small'];
    const cot = [fx.cotangent, fx.cotangent.map((row) => row.map((v) => 2 * v))];
    const backend = ctx.backend();
    const before = backend.memory().tensors;
    const g = await grad(readCellSpec(fx.cell), [fx.inputs, fx.inputs], cot, {
      backend,
      dtype,
      method: 'quasi-deer',
      initialState: [fx.initialState, fx.initialState],
      tolerance: FORWARD_TOLERANCE[dtype],
      lyapunov: false,
    });
    expect(backend.memory().tensors).toBe(before);
    expect(g.inputs!.shape).toEqual([2, fx.steps, 3]);
    expect(g.initialState.shape).toEqual([2, 8]);
    const half = (a: Float64Array, k: number) => a.subarray((k * a.length) / 2, ((k + 1) * a.length) / 2);
    for (const k of [0, 1]) {
      const scale = k + 1;
      expect(relativeError(half(g.inputs!.data, k), flat(fx.gradients.inputs).map((v) => scale * v)), `inputs, sequence ${k}`).toBeLessThanOrEqual(BOUND[dtype]);
      expect(relativeError(half(g.initialState.data, k), fx.gradients.initialState.map((v) => scale * v)), `s0, sequence ${k}`).toBeLessThanOrEqual(BOUND[dtype]);
    }
    for (const [name, want] of Object.entries(fx.gradients.parameters)) {
      expect(relativeError(g.parameters[name].data, flat(want).map((v) => 3 * v)), name).toBeLessThanOrEqual(BOUND[dtype]);
    }
  });

  it('a custom cell: input and initial-state gradients from its Jacobian and central differences', async () => {
    // The Elman fixture's cell written as a custom step: h' = tanh(h W_hhᵀ + u W_ihᵀ + b).
    const fx = fixtures['elman-torch-small'];
    const w = (fx.cell as { weights: Record<string, number[] | number[][]> }).weights;
    const H = 8;
    const I = 3;
    const weights = (b: ComputeBackend, x: Tensor) => ({
      Wih: b.fromArray(flat(w.weight_ih_l0), [H, I], x.dtype),
      Whh: b.fromArray(flat(w.weight_hh_l0), [H, H], x.dtype),
      bias: b.fromArray(flat(w.bias_ih_l0).map((v, k) => v + flat(w.bias_hh_l0)[k]), [H], x.dtype),
    });
    const cell = customCell({
      stateSize: H,
      inputSize: I,
      name: 'custom-elman',
      step: (b, s, u) =>
        b.tidy(() => {
          const { Wih, Whh, bias } = weights(b, s);
          return b.unary('tanh', b.binary('add', b.binary('add', b.matmul(s, Whh, true), b.matmul(u!, Wih, true)), bias));
        }),
      jacobian: (b, s, u) =>
        b.tidy(() => {
          const { Wih, Whh, bias } = weights(b, s);
          const h = b.unary('tanh', b.binary('add', b.binary('add', b.matmul(s, Whh, true), b.matmul(u!, Wih, true)), bias));
          const d = b.affine(b.unary('square', h), -1, 1); // [N, H]
          return b.binary('mul', b.reshape(d, [-1, H, 1]), Whh);
        }),
    });
    const g = await run(fx, { method: 'deer' }, cell);
    expect(g.adjoint.converged).toBe(true);
    expect(g.adjoint.why).toMatch(/no analytic vector–Jacobian products/);
    expect(g.parameters).toEqual({});
    // Central differences of the inputs: error ~ε^(2/3) relative (about 1e-10 in float64, 1e-5 in float32).
    const bound = dtype === 'float64' ? 1e-8 : 1e-3;
    expect(relativeError(g.inputs!.data, flat(fx.gradients.inputs))).toBeLessThanOrEqual(bound);
    expect(relativeError(g.initialState.data, fx.gradients.initialState)).toBeLessThanOrEqual(BOUND[dtype]);
  });

  describe('bad requests: typed errors, nothing allocated', () => {
    it('refuses a cotangent of the wrong shape or with non-finite values, and unknown options', async () => {
      const fx = fixtures['gru-torch-small'];
      const backend = ctx.backend();
      const cell = readCellSpec(fx.cell);
      const before = backend.memory().tensors;
      const call = (cotangent: unknown, o: Record<string, unknown> = {}) =>
        grad(cell, fx.inputs, cotangent as never, { backend, dtype, initialState: fx.initialState, ...o });
      await expect(call(fx.cotangent.slice(1))).rejects.toBeInstanceOf(ShapeError);
      await expect(call(fx.cotangent.slice(1))).rejects.toMatchObject({ field: 'cotangent', expected: 'shape [512, 8] (the states\' shape)', received: 'shape [511, 8]' });
      const bad = fx.cotangent.map((row) => [...row]);
      bad[3][2] = Number.NaN;
      await expect(call(bad)).rejects.toMatchObject({ field: 'cotangent', code: 'NON_FINITE' });
      await expect(call(fx.cotangent, { adjoint: 'reverse' })).rejects.toMatchObject({ field: 'options.adjoint' });
      await expect(call(fx.cotangent, { adjointTolerance: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(call(fx.cotangent, { adjointTolrance: 1e-9 })).rejects.toMatchObject({ field: 'options.adjointTolrance' });
      expect(backend.memory().tensors).toBe(before);
    });

    it('refuses to differentiate at an evaluation that did not converge, unless allowed', async () => {
      const fx = fixtures['gru-torch-small'];
      const backend = ctx.backend();
      const cell = readCellSpec(fx.cell);
      const before = backend.memory().tensors;
      const options = { backend, dtype, initialState: fx.initialState, method: 'quasi-deer' as const, maxIterations: 2 };
      const err = await grad(cell, fx.inputs, fx.cotangent, options).catch((e) => e);
      expect(err).toBeInstanceOf(NotConvergedError);
      expect(err.code).toBe('NOT_CONVERGED');
      expect(err.message).toMatch(/max-iterations/);
      expect(backend.memory().tensors).toBe(before);
      const forward = await evaluate(cell, fx.inputs, options);
      try {
        await expect(grad(cell, fx.inputs, fx.cotangent, { backend, dtype, initialState: fx.initialState, forward })).rejects.toBeInstanceOf(NotConvergedError);
        const g = await grad(cell, fx.inputs, fx.cotangent, { ...options, allowNonConverged: true });
        expect(g.forward.converged).toBe(false);
        expect(g.adjoint.converged).toBe(true);
      } finally {
        forward.dispose();
      }
      expect(backend.memory().tensors).toBe(before);
    });
  });
}

/**
 * Fused adjoint sweeps (`FusedCell.adjoint`) against core's host vector–Jacobian products: every
 * built-in cell with a program, in every convention and activation, swept in uneven windows on the
 * backend under test, in the binding's dtype; then the contract's typed errors and its ownership
 * (what `finish` hands over, what `dispose` frees). Through `grad`, the gradients' cases check the
 * same kernels against PyTorch.
 */
import { type CellProgram, type ComputeBackend, type DType, InvalidArgumentError, programVjp, ShapeError, type Tensor, shapeSize } from '@pelk/core';
import { expect, it } from 'vitest';
import { jacobianCases } from './cases.js';
import { arCases } from './fused-cases.js';
import { maxAbs, maxAbsDiff, randomArray } from './reference.js';

/**
 * The host reference of a fused adjoint: the reverse sweep μ_t = ḡ_t + A_{t+1}ᵀ μ_{t+1} with core's
 * analytic products, in float64, at the states `prev` entering each step (`[B, T, D]`), inputs `u`
 * (`[B, T, I]`) and cotangent `g` (`[B, T, D]`). Gradients in `programVjp(program).parameters`
 * order, `∂L/∂u` (`[B, T, I]`) and `∂L/∂s_0` (`[B, D]`).
 */
export function hostAdjointSweep(program: CellProgram, dtype: DType, prev: Float64Array, u: Float64Array, g: Float64Array, B: number, T: number) {
  const vjp = programVjp(program, dtype);
  const { stateSize: D, inputSize: I } = vjp;
  const parameters = vjp.parameters.map((q) => new Float64Array(shapeSize(q.shape)));
  const inputs = new Float64Array(B * T * I);
  const initialState = new Float64Array(B * D);
  const mu = new Float64Array(D);
  const carry = new Float64Array(D);
  for (let b = 0; b < B; b++) {
    carry.fill(0);
    for (let t = T - 1; t >= 0; t--) {
      const row = b * T + t;
      for (let j = 0; j < D; j++) mu[j] = g[row * D + j] + carry[j];
      vjp.step(prev, row * D, u, row * I, mu, 0, { state: carry, stateOffset: 0, input: inputs, inputOffset: row * I, parameters });
    }
    initialState.set(carry, b * D);
  }
  vjp.flush?.();
  return { parameters, inputs, initialState };
}

/** Registers the fused adjoint cases for one dtype (inside the suite's dtype block). */
export function defineFusedAdjointCases(getBackend: () => ComputeBackend, dtype: DType): void {
  const cases = [...jacobianCases(), ...arCases()].filter((c) => c.cell.program?.() !== undefined);
  /** The backend's fused binding with an adjoint sweep, or the reason the case cannot run. */
  const adjointOf = (backend: ComputeBackend, program: CellProgram, context: Parameters<NonNullable<ComputeBackend['bindProgram']>>[1]) => {
    if (typeof backend.bindProgram !== 'function') return `backend '${backend.name}' has no fused cell kernels (bindProgram); grad sweeps on the host`;
    const fused = backend.bindProgram(program, context);
    if (!fused) return `backend '${backend.name}' binds no fused '${program.kind}' kernel; grad sweeps on the host`;
    if (typeof fused.adjoint !== 'function') {
      fused.dispose();
      // A backend that declares adjoint kernels has them for every RNN program.
      if (backend.capabilities.fusedAdjoint === true && program.kind !== 'ar') {
        throw new Error(`backend '${backend.name}' declares capabilities.fusedAdjoint, but its fused '${program.kind}' kernel has no adjoint`);
      }
      return `backend '${backend.name}''s fused '${program.kind}' kernel has no adjoint sweep; grad sweeps on the host`;
    }
    return fused;
  };

  for (const c of cases) {
    it(`${c.name}: fused adjoint sweep, in uneven windows, equals the host vector–Jacobian products`, async (ctx) => {
      const backend = getBackend();
      const { cell } = c;
      const program = cell.program!()!;
      const [B, T] = [2, 9];
      const D = cell.stateSize;
      const I = cell.inputSize;
      const eps = backend.capabilities.epsilon[dtype] ?? 2 ** -24;
      const before = backend.memory().tensors;
      const inputs = backend.fromArray(randomArray(B * T * I, c.seed, 1.5), [B, T, I], dtype);
      const prev = backend.fromArray(randomArray(B * T * D, c.seed + 1, 0.9), [B, T, D], dtype);
      const cotangent = backend.fromArray(randomArray(B * T * D, c.seed + 3, 1), [B, T, D], dtype);
      const owned: Tensor[] = [inputs, prev, cotangent];
      const fused = adjointOf(backend, program, { dtype, inputs, batch: B, steps: T });
      try {
        if (typeof fused === 'string') return ctx.skip(fused);
        const read = async (t: Tensor) => Float64Array.from(await backend.read(t));
        const sweep = fused.adjoint!(prev, cotangent, { inputs: true });
        expect(sweep.advance(2)).toBe(2);
        expect(() => sweep.finish(), 'finish before every step is done').toThrow(InvalidArgumentError);
        expect(sweep.advance(4)).toBe(6);
        expect(sweep.advance(100)).toBe(T);
        const got = sweep.finish();
        owned.push(...got.parameters, got.initialState, ...(got.inputs ? [got.inputs] : []));
        expect(() => sweep.finish(), 'finish twice').toThrow(InvalidArgumentError);
        sweep.dispose();
        sweep.dispose(); // twice: a no-op, and the gradients stay the caller's
        const want = hostAdjointSweep(program, dtype, await read(prev), await read(inputs), await read(cotangent), B, T);
        // Each gradient sums B·T products of chains of at most T steps of width G + I.
        const G = program.kind === 'ar' ? 4 * program.inner.hiddenSize : program.kind === 'lstm' ? 4 * program.hiddenSize : 3 * program.hiddenSize;
        const bound = (w: Float64Array) => 4 * (B * T + T * (G + I) + 8) * eps * Math.max(1, maxAbs(w));
        const shapes = programVjp(program, dtype).parameters;
        expect(got.parameters.length).toBe(shapes.length);
        for (let k = 0; k < shapes.length; k++) {
          expect(got.parameters[k].shape, shapes[k].name).toEqual(shapes[k].shape);
          expect(maxAbsDiff(await read(got.parameters[k]), want.parameters[k]), shapes[k].name).toBeLessThanOrEqual(bound(want.parameters[k]));
        }
        expect(got.initialState.shape).toEqual([B, D]);
        expect(maxAbsDiff(await read(got.initialState), want.initialState), 'initial state').toBeLessThanOrEqual(bound(want.initialState));
        expect(got.inputs?.shape).toEqual([B, T, I]);
        expect(maxAbsDiff(await read(got.inputs!), want.inputs), 'inputs').toBeLessThanOrEqual(bound(want.inputs));
      } finally {
        if (typeof fused !== 'string') fused.dispose();
        backend.dispose(owned);
      }
      expect(backend.memory().tensors, 'tensors left alive').toBe(before);
    });
  }

  it('a fused adjoint refuses bad arguments with typed errors before allocating, and use after dispose', async (ctx) => {
    const backend = getBackend();
    const { cell } = cases[0];
    const program = cell.program!()!;
    const [B, T, D, I] = [2, 5, cell.stateSize, cell.inputSize];
    const inputs = backend.fromArray(randomArray(B * T * I, 1, 1), [B, T, I], dtype);
    const prev = backend.fill([B, T, D], 0, dtype);
    const wrong = backend.fill([B, T + 1, D], 0, dtype);
    const other: DType = dtype === 'float64' ? 'float32' : 'float64';
    const otherDtype = backend.capabilities.dtypes.includes(other) ? backend.fill([B, T, D], 0, other) : undefined;
    const start = backend.memory().tensors;
    const fused = adjointOf(backend, program, { dtype, inputs, batch: B, steps: T });
    try {
      if (typeof fused === 'string') return ctx.skip(fused);
      const before = backend.memory();
      expect(() => fused.adjoint!(wrong, prev, { inputs: true })).toThrow(ShapeError);
      expect(() => fused.adjoint!(wrong, prev, { inputs: true })).toThrow(/prev/);
      expect(() => fused.adjoint!(prev, wrong, { inputs: true })).toThrow(/cotangent/);
      if (otherDtype) expect(() => fused.adjoint!(prev, otherDtype, { inputs: true })).toThrow(/cotangent\.dtype/);
      expect(() => fused.adjoint!(prev, prev, { inputs: 'yes' as never })).toThrow(/options\.inputs/);
      if (otherDtype) expect(() => fused.adjoint!(otherDtype, prev, { inputs: true })).toThrow(/prev\.dtype/);
      const gone = backend.fill([B, T, D], 0, dtype);
      backend.dispose(gone);
      expect(() => fused.adjoint!(prev, gone, { inputs: false })).toThrow(InvalidArgumentError);
      expect(backend.memory().tensors, 'nothing allocated by refused calls').toBe(before.tensors);
      // Without ∂L/∂u: no input gradient comes back.
      const bare = fused.adjoint!(prev, prev, { inputs: false });
      expect(bare.advance(T)).toBe(T);
      const got = bare.finish();
      expect(got.inputs).toBeNull();
      expect(got.initialState.shape).toEqual([B, D]);
      bare.dispose();
      backend.dispose([...got.parameters, got.initialState]);
      const sweep = fused.adjoint!(prev, prev, { inputs: false });
      expect(() => sweep.advance(Number.NaN)).toThrow(/count/);
      sweep.dispose();
      expect(() => sweep.advance(1)).toThrow(/disposed/);
      const live = fused.adjoint!(prev, prev, { inputs: false });
      fused.dispose();
      expect(() => live.advance(1)).toThrow(/disposed/);
      live.dispose();
      expect(backend.memory().tensors, 'tensors left alive by the binding and its sweeps').toBe(start);
      // The binding's inputs are read by the sweep: once disposed, it is refused before allocating.
      const ownInputs = backend.fromArray(randomArray(B * T * I, 2, 1), [B, T, I], dtype);
      const second = adjointOf(backend, program, { dtype, inputs: ownInputs, batch: B, steps: T });
      if (typeof second !== 'string') {
        backend.dispose(ownInputs);
        const count = backend.memory().tensors;
        expect(() => second.adjoint!(prev, prev, { inputs: false })).toThrow(/inputs/);
        expect(backend.memory().tensors).toBe(count);
        second.dispose();
      } else backend.dispose(ownInputs);
      expect(backend.memory().tensors).toBe(start);
    } finally {
      if (typeof fused !== 'string') fused.dispose();
      backend.dispose([inputs, prev, wrong, ...(otherDtype ? [otherDtype] : [])]);
    }
  });
}

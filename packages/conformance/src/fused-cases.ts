/**
 * Fused cell kernels (`ComputeBackend.bindProgram`) against the op-by-op cell they stand in for:
 * every built-in cell with a program, in every convention and activation, linearised (dense and
 * diagonal, whole and by ranges), swept and rolled out on the backend under test. The fixtures and
 * methods themselves run both ways in the suite's fixture cases.
 */
import { type ComputeBackend, type DType, InvalidArgumentError, ShapeError, type Tensor } from '@pelk/core';
import { expect, it } from 'vitest';
import { jacobianCases } from './cases.js';
import { maxAbs, maxAbsDiff, randomArray } from './reference.js';

/** Why a backend runs no fused case, or undefined when it has fused kernels. */
function noKernels(backend: ComputeBackend): string | undefined {
  return typeof backend.bindProgram === 'function' ? undefined : `backend '${backend.name}' has no fused cell kernels (bindProgram); it evaluates op by op`;
}

/**
 * The tolerance between a fused kernel and the ops: both evaluate the same expression with
 * different rounding orders, each a dot product of `H + I` terms plus a few gate operations, so
 * their difference is within a few `(H + I)·ε` of the values' scale.
 */
function tolerance(eps: number, terms: number, scale: number): number {
  return 4 * (terms + 8) * eps * Math.max(1, scale);
}

/** Registers the fused-kernel cases for one dtype (inside the suite's dtype block). */
export function defineFusedCases(getBackend: () => ComputeBackend, dtype: DType): void {
  const cases = jacobianCases().filter((c) => c.cell.program?.() !== undefined);
  for (const c of cases) {
    it(`${c.name}: fused linearisation (dense, diagonal, in windows), sweep and rollout equal the op-by-op cell`, async (ctx) => {
      const backend = getBackend();
      const reason = noKernels(backend);
      if (reason) ctx.skip(reason);
      const { cell } = c;
      const program = cell.program!()!;
      const [B, T] = [2, 9];
      const D = cell.stateSize;
      const I = cell.inputSize;
      const eps = backend.capabilities.epsilon[dtype] ?? 2 ** -24;
      const before = backend.memory().tensors;
      const inputs = backend.fromArray(randomArray(B * T * I, c.seed, 1.5), [B, T, I], dtype);
      const states = backend.fromArray(randomArray(B * T * D, c.seed + 1, 0.9), [B, T, D], dtype);
      const init = backend.fromArray(randomArray(B * D, c.seed + 2, 0.9), [B, D], dtype);
      const context = { dtype, inputs, batch: B, steps: T };
      const bound = cell.bind(backend, context);
      const fused = backend.bindProgram!(program, context);
      expect(fused, `bindProgram returned no kernel for a '${program.kind}' program`).toBeDefined();
      const read = async (t: Tensor) => Float64Array.from(await backend.read(t));
      const check = async (label: string, got: Tensor, want: Tensor) => {
        expect(got.shape, label).toEqual(want.shape);
        const w = await read(want);
        expect(maxAbsDiff(await read(got), w), label).toBeLessThanOrEqual(tolerance(eps, program.hiddenSize + I, maxAbs(w)));
      };
      try {
        const prev = backend.shiftTime(states, init);
        for (const kind of ['dense', 'diagonal'] as const) {
          const ref = bound.linearize(prev, kind);
          const refDefect = backend.binary('sub', ref.value, states);
          // Advanced in uneven windows: steps [0, 3), [3, 7), [7, T).
          const lin = fused!.linearize(states, init, { kind, sumSquares: true });
          expect(lin.advance(3)).toBe(3);
          expect(() => lin.finish(), 'finish before the last step').toThrow(InvalidArgumentError);
          expect(lin.advance(4)).toBe(7);
          expect(lin.advance(100)).toBe(T);
          await check(`${kind}: Jacobians`, lin.jacobian, ref.jacobian);
          await check(`${kind}: defects`, lin.defect, refDefect);
          const d = await read(refDefect);
          const { residual, sumSquares } = lin.finish();
          expect(Math.abs((await residual) - maxAbs(d)), `${kind}: residual`).toBeLessThanOrEqual(tolerance(eps, program.hiddenSize + I, maxAbs(d)));
          const ss = d.reduce((sum, x) => sum + x * x, 0);
          expect(Math.abs((await sumSquares) - ss), `${kind}: sum of squares`).toBeLessThanOrEqual(tolerance(eps, program.hiddenSize + I, ss) * d.length);
          backend.dispose([lin.jacobian, lin.defect, ref.value, ref.jacobian, refDefect]);
        }
        const swept = fused!.apply(prev);
        const refSwept = bound.apply(prev);
        await check('apply', swept, refSwept);
        // Rollouts: the fused one advanced in uneven slices, the op one step by step.
        const rollout = fused!.rollout(init);
        expect(rollout.advance(4)).toBe(4);
        expect(rollout.advance(100)).toBe(T);
        const steps: Tensor[] = [];
        let s = init;
        for (let t = 0; t < T; t++) steps.push((s = bound.step(s, t)));
        const refRollout = backend.stackTime(steps);
        await check('rollout', rollout.states, refRollout);
        backend.dispose([prev, swept, refSwept, rollout.states, refRollout, ...steps]);
      } finally {
        fused?.dispose();
        fused?.dispose(); // twice: a no-op
        bound.dispose();
        backend.dispose([inputs, states, init]);
      }
      expect(backend.memory().tensors, 'tensors left alive').toBe(before);
    });
  }

  it('bindProgram refuses bad programs and contexts with typed errors before allocating; a disposed fused cell refuses use', async (ctx) => {
    const backend = getBackend();
    const reason = noKernels(backend);
    if (reason) ctx.skip(reason);
    const { cell } = cases[0];
    const program = cell.program!()!;
    const I = cell.inputSize;
    const inputs = backend.fromArray(randomArray(2 * 5 * I, 1, 1), [2, 5, I], dtype);
    const before = backend.memory();
    const bind = (p: unknown, context: unknown) => () => backend.bindProgram!(p as never, context as never);
    const good = { dtype, inputs, batch: 2, steps: 5 };
    expect(bind({ ...program, weightHh: program.weightHh.subarray(1) }, good)).toThrow(ShapeError);
    expect(bind({ ...program, weightHh: program.weightHh.subarray(1) }, good)).toThrow(/program\.weightHh/);
    expect(bind({ ...program, kind: 'transformer' }, good)).toThrow(/program\.kind/);
    expect(bind({ ...program, stateSize: program.stateSize + 1 }, good)).toThrow(InvalidArgumentError);
    expect(bind(program, { ...good, steps: 4 })).toThrow(/context\.inputs/);
    expect(bind(program, { ...good, dtype: 'int32' })).toThrow(/context\.dtype/);
    expect(bind(program, { ...good, batch: 0 })).toThrow(/context\.batch/);
    expect(backend.memory().tensors).toBe(before.tensors);
    expect(backend.memory().bytes).toBe(before.bytes);
    const fused = backend.bindProgram!(program, good)!;
    const init = backend.fill([2, cell.stateSize], 0, dtype);
    const wrongInit = backend.fill([3, cell.stateSize], 0, dtype);
    expect(() => fused.rollout(wrongInit)).toThrow(/init/);
    const states = backend.fill([2, 5, cell.stateSize], 0, dtype);
    expect(() => fused.linearize(states, wrongInit, { kind: 'diagonal' })).toThrow(/init/);
    expect(() => fused.linearize(wrongInit, init, { kind: 'diagonal' })).toThrow(/states/);
    expect(() => fused.linearize(states, init, { kind: 'full' as never })).toThrow(/options\.kind/);
    fused.dispose();
    expect(() => fused.apply(states)).toThrow(/disposed/);
    backend.dispose([inputs, init, states, wrongInit]);
    expect(backend.memory().tensors).toBe(before.tensors - 1);
  });
}

/**
 * Fused cell kernels (`ComputeBackend.bindProgram`) against the op-by-op cell they stand in for:
 * every built-in cell with a program, in every convention and activation, linearised (dense and
 * diagonal, whole and by ranges), swept and rolled out on the backend under test. The fixtures and
 * methods themselves run both ways in the suite's fixture cases.
 */
import { type ComputeBackend, type DType, InvalidArgumentError, type RnnProgram, ShapeError, type Tensor } from '@pelk/core';
import { ar, elman, gru, lstm } from '@pelk/models';
import { expect, it } from 'vitest';
import { type CellCase, cellFromSpec, jacobianCases } from './cases.js';
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

/** `ar` cells over each inner kind: I = 1 with the skip, I = H with it, and I = 2 without. */
export function arCases(): CellCase[] {
  const readout = (I: number, H: number, seed: number, skip: boolean) => ({
    weight: { data: randomArray(2 * I * H, seed, 0.6), shape: [2 * I, H] },
    bias: randomArray(2 * I, seed + 1, 0.3),
    skip,
  });
  const kerasGru = cellFromSpec({
    type: 'gru',
    convention: 'keras',
    inputSize: 1,
    hiddenSize: 4,
    resetAfter: false,
    activation: 'tanh',
    recurrentActivation: 'hardSigmoid',
    weights: { kernel: [Array.from(randomArray(12, 81, 1))], recurrentKernel: Array.from({ length: 4 }, (_, i) => Array.from(randomArray(12, 90 + i, 0.8))), bias: Array.from(randomArray(12, 95, 0.3)) },
  });
  return [
    { name: 'AR over GRU (PyTorch), I = 1, skip', cell: ar({ inner: gru.random({ inputSize: 1, hiddenSize: 5, seed: 71 }), readout: readout(1, 5, 72, true) }), seed: 2001 },
    { name: 'AR over GRU (Keras, resetAfter false, hardSigmoid), I = 1, skip', cell: ar({ inner: kerasGru as never, readout: readout(1, 4, 73, true) }), seed: 2002 },
    { name: 'AR over LSTM, I = H = 4, skip', cell: ar({ inner: lstm.random({ inputSize: 4, hiddenSize: 4, seed: 74 }), readout: readout(4, 4, 75, true) }), seed: 2003 },
    { name: 'AR over Elman, I = 2, no skip', cell: ar({ inner: elman.random({ inputSize: 2, hiddenSize: 5, seed: 76 }), readout: readout(2, 5, 77, false) }), seed: 2004 },
  ];
}

/** Registers the fused-kernel cases for one dtype (inside the suite's dtype block). */
export function defineFusedCases(getBackend: () => ComputeBackend, dtype: DType): void {
  const cases = [...jacobianCases(), ...arCases()].filter((c) => c.cell.program?.() !== undefined);
  for (const c of cases) {
    it(`${c.name}: fused linearisation (dense, diagonal, in windows), sweep and rollout equal the op-by-op cell`, async (ctx) => {
      const backend = getBackend();
      const reason = noKernels(backend);
      if (reason) ctx.skip(reason);
      const { cell } = c;
      const program = cell.program!()!;
      const H = program.kind === 'ar' ? program.inner.hiddenSize : program.hiddenSize;
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
        expect(maxAbsDiff(await read(got), w), label).toBeLessThanOrEqual(tolerance(eps, H + I, maxAbs(w)));
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
          expect(Math.abs((await residual) - maxAbs(d)), `${kind}: residual`).toBeLessThanOrEqual(tolerance(eps, H + I, maxAbs(d)));
          const ss = d.reduce((sum, x) => sum + x * x, 0);
          expect(Math.abs((await sumSquares) - ss), `${kind}: sum of squares`).toBeLessThanOrEqual(tolerance(eps, H + I, ss) * d.length);
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
    const program = cell.program!()! as RnnProgram;
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
    expect(bind({ ...program, activation: 'swish' }, good)).toThrow(/program\.activation/);
    expect(bind({ ...program, hiddenSize: 0.5 }, good)).toThrow(/program\.hiddenSize/);
    expect(bind({ ...program, resetAfter: 'yes' }, good)).toThrow(/program\.resetAfter/);
    const gone = backend.fromArray(randomArray(2 * 5 * I, 2, 1), [2, 5, I], dtype);
    backend.dispose(gone);
    const beforeGone = backend.memory();
    expect(bind(program, { ...good, inputs: gone })).toThrow(InvalidArgumentError);
    expect(backend.memory().tensors).toBe(beforeGone.tensors);
    expect(backend.memory().bytes).toBe(beforeGone.bytes);
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
    // A count that is not a number of steps is refused: no window is skipped unseen, nothing certified.
    const run = fused.linearize(states, init, { kind: 'diagonal' });
    expect(() => run.advance(Number.NaN)).toThrow(/count/);
    expect(() => run.finish()).toThrow(InvalidArgumentError);
    const rollout = fused.rollout(init);
    expect(() => rollout.advance(-1)).toThrow(/count/);
    backend.dispose([run.jacobian, run.defect, rollout.states]);
    fused.dispose();
    expect(() => fused.apply(states)).toThrow(/disposed/);
    backend.dispose([inputs, init, states, wrongInit]);
    expect(backend.memory().tensors).toBe(before.tensors - 1);
  });
}

/**
 * Memory conformance: on a backend whose `memory()` reports `peakBytes`, every method on every cell
 * family peaks at or below core's refusal estimate (`estimateEvaluationBytes`), so that "refused
 * before allocating" means what it says. On other backends the cases are visible skips.
 */
import {
  type Cell,
  type ComputeBackend,
  type DType,
  type Method,
  type Tensor,
  estimateEvaluationBytes,
  evaluate,
} from '@pelk/core';
import { ar, customCell, elman, gru, lorenz96, lstm } from '@pelk/models';
import { expect, it } from 'vitest';

/** `s' = tanh(0.9 s + 0.5·u·1ᵀ)`, written with backend ops (the custom cell of the cases). */
function customStep(b: ComputeBackend, s: Tensor, u: Tensor | null, D: number): Tensor {
  return b.unary('tanh', b.binary('add', b.affine(s, 0.9, 0), b.matmul(u!, b.fill([1, D], 0.5, s.dtype))));
}

/** One cell family of the memory cases, built at state size about `D`. */
export interface MemoryFamily {
  readonly name: string;
  make(D: number): Cell;
}

/** The cell families whose peaks the estimate must bound: every cell kind of @pelk/models. */
export const MEMORY_FAMILIES: readonly MemoryFamily[] = [
  { name: 'GRU', make: (D) => gru.random({ inputSize: 3, hiddenSize: D, seed: 1 }) },
  { name: 'LSTM', make: (D) => lstm.random({ inputSize: 3, hiddenSize: Math.max(1, D >> 1), seed: 2 }) },
  { name: 'Elman', make: (D) => elman.random({ inputSize: 3, hiddenSize: D, seed: 3 }) },
  { name: 'Lorenz-96', make: (D) => lorenz96({ dimension: Math.max(4, D) }) },
  {
    name: 'AR-GRU',
    make: (D) => {
      const H = Math.max(1, D - 1);
      const weight = Array.from({ length: 2 }, (_, r) => Array.from({ length: H }, (_, k) => 0.1 * Math.sin(r + k)));
      return ar({ inner: gru.random({ inputSize: 1, hiddenSize: H, seed: 4 }), readout: { weight, bias: [0, -1], skip: true } });
    },
  },
  {
    name: 'custom (analytic Jacobians)',
    make: (D) =>
      customCell({
        stateSize: D,
        inputSize: 1,
        step: (b, s, u) => customStep(b, s, u, D),
        diagonalJacobian: (b, s, u) => b.affine(b.unary('square', customStep(b, s, u, D)), -0.9, 0.9),
        jacobian: (b, s, u) => b.diagEmbed(b.affine(b.unary('square', customStep(b, s, u, D)), -0.9, 0.9)),
      }),
  },
  {
    name: 'custom (finite differences)',
    make: (D) => customCell({ stateSize: D, inputSize: 1, onWarning: () => {}, step: (b, s, u) => customStep(b, s, u, D) }),
  },
];

const METHODS: readonly Method[] = ['sequential', 'deer', 'quasi-deer', 'elk', 'quasi-elk', 'auto'];

/** Options of {@link defineMemoryCases}. */
export interface MemoryCaseOptions {
  /** `[B, T, D]` of the cases. Default `[2, 48, 8]`. */
  readonly size?: readonly [number, number, number];
  /** Iterations per run (the peak of an iteration repeats). Default 3. */
  readonly iterations?: number;
}

/**
 * Registers one vitest case per method × cell family: after `resetPeakMemory()`, one `evaluate`
 * must peak (`memory().peakBytes`) at or below `estimateEvaluationBytes` for its method, size,
 * dtype and cell kind, and leave no tensor behind. Backends that report no `peakBytes` (or lack
 * the dtype) get `it.skip` cases whose titles say why.
 *
 * `getBackend` may throw or return `undefined` while the backend is not created yet (e.g. in a
 * suite that creates it in `beforeAll`); the cases then decide at run time and skip with the reason.
 *
 * @example
 * ```ts
 * import { CpuBackend } from '@pelk/backend-cpu';
 * import { defineMemoryCases } from '@pelk/conformance';
 * const backend = new CpuBackend();
 * describe('memory', () => defineMemoryCases(() => backend, 'float64'));
 * ```
 */
export function defineMemoryCases(getBackend: () => ComputeBackend, dtype: DType, options: MemoryCaseOptions = {}): void {
  const [B, T, D0] = options.size ?? [2, 48, 8];
  const iterations = options.iterations ?? 3;
  const skipReason = (backend: ComputeBackend): string | undefined => {
    if (!backend.capabilities.dtypes.includes(dtype)) return `backend '${backend.name}' does not compute in ${dtype}`;
    if (typeof backend.resetPeakMemory !== 'function' || typeof backend.memory().peakBytes !== 'number') {
      return `backend '${backend.name}' does not report memory().peakBytes`;
    }
    return undefined;
  };
  let known: string | undefined | null = null; // null: the backend does not exist yet
  try {
    const backend = getBackend();
    if (backend) known = skipReason(backend);
  } catch {
    known = null;
  }
  for (const family of MEMORY_FAMILIES) {
    for (const method of METHODS) {
      const title = `${dtype}: ${method} on ${family.name} (B=${B}, T=${T}) peaks within estimateEvaluationBytes`;
      if (typeof known === 'string') {
        it.skip(`${title} — skipped: ${known}`, () => {});
        continue;
      }
      it(title, async (ctx) => {
        const backend = getBackend();
        const reason = skipReason(backend);
        if (reason) ctx.skip(reason); // throws: the case ends here, reported as skipped
        const cell = family.make(D0);
        const D = cell.stateSize;
        const I = cell.inputSize;
        const inputs = I === 0 ? null : { data: Float64Array.from({ length: B * T * I }, (_, k) => 0.5 * Math.sin(0.37 * k)), shape: [B, T, I] };
        const before = backend.memory().tensors;
        backend.resetPeakMemory!();
        const result = await evaluate(cell, inputs, {
          backend,
          dtype,
          method,
          maxIterations: iterations,
          ...(I === 0 ? { steps: T, batch: B, initialState: Array.from({ length: B }, (_, b) => Array.from({ length: D }, (_, k) => 8 + 0.01 * (k === b ? 1 : 0))) } : {}),
        });
        const peak = backend.memory().peakBytes!;
        result.dispose();
        const estimate = estimateEvaluationBytes({ method, batch: B, steps: T, stateSize: D, inputSize: I, dtype, cellKind: cell.kind });
        expect(peak).toBeGreaterThan(0);
        expect(peak, `peak ${peak} bytes vs estimate ${estimate} bytes`).toBeLessThanOrEqual(estimate);
        expect(backend.memory().tensors).toBe(before);
      });
    }
  }
}

/**
 * Memory probe: the CPU backend's `memory().peakBytes` of one `evaluate` for every method on every
 * cell family, at a few sizes and both dtypes, next to `estimateEvaluationBytes` (the refusal
 * estimate of @pelk/core, which must be an upper bound of every row).
 *
 *     node --conditions=@pelk/source --import tsx apps/bench/src/commands/memory-probe.ts [--json] [--quick]
 *
 * Prints one row per run: peak bytes, the ratio to `B·T·D` and `B·T·D²` values of the dtype, the
 * estimate and peak/estimate. Exits 1 when a peak exceeds its estimate.
 */
import { CpuBackend } from '@pelk/backend-cpu';
import { type Cell, type ComputeBackend, type DType, type Method, type Tensor, estimateEvaluationBytes, evaluate } from '@pelk/core';
import { ar, customCell, elman, gru, lorenz96, lstm } from '@pelk/models';

/** `s' = tanh(0.9 s + 0.5·u·1ᵀ)`, written with backend ops. */
function customStep(b: ComputeBackend, s: Tensor, u: Tensor | null, D: number): Tensor {
  return b.unary('tanh', b.binary('add', b.affine(s, 0.9, 0), b.matmul(u!, b.fill([1, D], 0.5, s.dtype))));
}

export interface ProbeFamily {
  readonly name: string;
  /** A cell with state size `D` (rounded to what the family allows). */
  make(D: number): Cell;
}

/** Cell families with state size about `D`. */
export const PROBE_FAMILIES: readonly ProbeFamily[] = [
  { name: 'gru', make: (D) => gru.random({ inputSize: 3, hiddenSize: D, seed: 1 }) },
  { name: 'lstm', make: (D) => lstm.random({ inputSize: 3, hiddenSize: Math.max(1, D >> 1), seed: 2 }) },
  { name: 'elman', make: (D) => elman.random({ inputSize: 3, hiddenSize: D, seed: 3 }) },
  { name: 'lorenz96', make: (D) => lorenz96({ dimension: Math.max(4, D) }) },
  {
    name: 'ar-gru',
    make: (D) => {
      const H = Math.max(1, D - 1);
      const weight = Array.from({ length: 2 }, (_, r) => Array.from({ length: H }, (_, k) => 0.1 * Math.sin(r + k)));
      return ar({ inner: gru.random({ inputSize: 1, hiddenSize: H, seed: 4 }), readout: { weight, bias: [0, -1], skip: true } });
    },
  },
  {
    name: 'custom',
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
    // No Jacobians given: batched central finite differences.
    name: 'custom-fd',
    make: (D) => customCell({ stateSize: D, inputSize: 1, onWarning: () => {}, step: (b, s, u) => customStep(b, s, u, D) }),
  },
];

export const PROBE_METHODS: readonly Method[] = ['sequential', 'deer', 'quasi-deer', 'elk', 'quasi-elk', 'auto'];

export interface ProbeRow {
  family: string;
  method: Method;
  dtype: DType;
  B: number;
  T: number;
  D: number;
  I: number;
  peakBytes: number;
  estimate: number;
}

/** Runs one evaluation on a fresh CPU backend and returns its peak. */
export async function probe(family: ProbeFamily, method: Method, dtype: DType, B: number, T: number, D0: number, iterations = 3): Promise<ProbeRow> {
  const cell = family.make(D0);
  const D = cell.stateSize;
  const I = cell.inputSize;
  const backend = new CpuBackend();
  let seed = 7;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31 - 0.5;
  };
  const inputs = I === 0 ? undefined : { data: Float64Array.from({ length: B * T * I }, rnd), shape: [B, T, I] };
  backend.resetPeakMemory();
  const result = await evaluate(cell, inputs ?? null, {
    backend,
    method,
    dtype,
    maxIterations: iterations,
    ...(I === 0
      ? { steps: T, batch: B, initialState: Array.from({ length: B }, (_, b) => Array.from({ length: D }, (_, k) => (k === b ? 8.01 : 8))) }
      : {}),
  });
  const peakBytes = backend.memory().peakBytes ?? 0;
  result.dispose();
  const estimate = estimateEvaluationBytes({ method, batch: B, steps: T, stateSize: D, inputSize: I, dtype, cellKind: cell.kind });
  return { family: family.name, method, dtype, B, T, D, I, peakBytes, estimate };
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const quick = process.argv.includes('--quick');
  const sizes: [number, number, number][] = quick
    ? [[1, 256, 8]]
    : [
        [1, 2048, 8],
        [2, 512, 16],
        [1, 1024, 32],
        [1, 256, 64],
      ];
  let failures = 0;
  const rows: ProbeRow[] = [];
  for (const dtype of ['float64', 'float32'] as DType[]) {
    for (const family of PROBE_FAMILIES) {
      for (const [B, T, D] of sizes) {
        for (const method of PROBE_METHODS) {
          const r = await probe(family, method, dtype, B, T, D);
          rows.push(r);
          const e = dtype === 'float64' ? 8 : 4;
          const td = r.B * r.T * r.D * e;
          const over = r.peakBytes > r.estimate;
          if (over) failures++;
          if (!json) {
            console.log(
              [
                dtype.padEnd(7),
                r.family.padEnd(9),
                method.padEnd(10),
                `B=${r.B} T=${r.T} D=${r.D} I=${r.I}`.padEnd(24),
                `peak ${String(r.peakBytes).padStart(10)}`,
                `${(r.peakBytes / td).toFixed(1).padStart(6)}·BTD`,
                `${(r.peakBytes / (td * r.D)).toFixed(2).padStart(6)}·BTD²`,
                `est ${String(r.estimate).padStart(10)}`,
                `${(r.peakBytes / r.estimate).toFixed(2)}${over ? '  OVER' : ''}`,
              ].join('  '),
            );
          }
        }
      }
    }
  }
  if (json) console.log(JSON.stringify(rows));
  if (failures) {
    console.error(`${failures} peaks above their estimate`);
    process.exitCode = 1;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();

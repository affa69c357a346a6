/**
 * `pelk bench --suite kernels`: what each WebAssembly kernel of `@pelk/backend-wasm` reaches, in
 * µs per step and in GMAC/s (compute kernels: multiply–adds counted from the cell's shapes) or GB/s
 * (streaming kernels: bytes read and written), on one thread and on every available one. A GRU
 * (D = H, input I) over T steps, batch 1, float32 and float64; one warm-up, median of 3.
 */
import type { DType, FusedCell, Tensor } from '@pelk/core';
import { gru } from '@pelk/models';
import { randomInputs } from '../data.js';
import { median, table } from '../harness.js';
import { type MachineDescription, machineDescription } from '../machine.js';
import { barsPlot } from '../plots.js';

/** Options of {@link runKernels}. */
export interface KernelsOptions {
  readonly quick: boolean;
  /** Thread counts to run; default 1 and the available cores. */
  readonly threads?: readonly number[];
  readonly hidden?: number;
  readonly input?: number;
  readonly quiet?: boolean;
}

/** One kernel's timing. */
export interface KernelResult {
  readonly kernel: string;
  readonly dtype: DType;
  readonly threads: number;
  readonly T: number;
  readonly medianMs: number;
  readonly usPerStep: number;
  /** Multiply–adds per second (compute kernels), in units of 10⁹. */
  readonly gmacPerSecond?: number;
  /** Bytes read and written per second (streaming kernels), in units of 10⁹. */
  readonly gbPerSecond?: number;
}

/** The JSON of the suite. */
export interface KernelsReport {
  readonly kind: 'pelk-bench-kernels';
  readonly date: string;
  readonly machine: MachineDescription;
  readonly config: { readonly T: number; readonly denseT: number; readonly H: number; readonly I: number };
  readonly results: KernelResult[];
}

/**
 * Times the kernels and returns the report.
 *
 * @example
 * ```ts
 * const report = await runKernels({ quick: true, threads: [1] });
 * ```
 */
export async function runKernels(o: KernelsOptions): Promise<KernelsReport> {
  const { createWasmBackend, availableCores } = await import('@pelk/backend-wasm');
  const H = o.hidden ?? 64;
  const I = o.input ?? 64;
  const T = o.quick ? 10_000 : 100_000;
  const denseT = T / 10;
  const threadCounts = o.threads ?? [...new Set([1, availableCores()])];
  const cell = gru.random({ inputSize: I, hiddenSize: H, seed: 1 });
  const inputs = randomInputs(1, T, I, 7).data;
  const results: KernelResult[] = [];
  let machine: MachineDescription | undefined;
  for (const threads of threadCounts) {
    const backend = await createWasmBackend({ threads, memoryBytes: 2 ** 31 });
    machine ??= machineDescription(backend);
    try {
      for (const dtype of ['float32', 'float64'] as const) {
        const e = dtype === 'float64' ? 8 : 4;
        const u = backend.fromArray(inputs, [1, T, I], dtype);
        const s0 = backend.fill([1, H], 0, dtype);
        const context = { dtype, inputs: u, batch: 1, steps: T };
        /** Median ms of `fn` (its tensors freed after each run); one warm-up. */
        const time = (fn: () => Tensor[]): number => {
          const runs: number[] = [];
          for (let r = 0; r < 4; r++) {
            const t0 = performance.now();
            const made = fn();
            const ms = performance.now() - t0;
            backend.dispose(made);
            if (r > 0) runs.push(ms);
          }
          return median(runs);
        };
        const add = (kernel: string, steps: number, ms: number, work: { macs?: number; bytes?: number }) => {
          results.push({
            kernel,
            dtype,
            threads,
            T: steps,
            medianMs: ms,
            usPerStep: (1000 * ms) / steps,
            ...(work.macs ? { gmacPerSecond: work.macs / (ms * 1e6) } : {}),
            ...(work.bytes ? { gbPerSecond: work.bytes / (ms * 1e6) } : {}),
          });
          if (!o.quiet) process.stderr.write(`kernels: ${kernel} ${dtype}, ${threads} thread(s): ${((1000 * ms) / steps).toFixed(3)} µs/step\n`);
        };
        let fused: FusedCell | undefined;
        add('input projection (GEMM)', T, time(() => {
          fused?.dispose();
          fused = backend.bindProgram(cell.program(), context)!;
          return [];
        }), { macs: T * I * 3 * H });
        const f = fused!;
        const states = f.rollout(s0);
        states.advance(T);
        add('rollout (sequential GRU)', T, time(() => {
          const r = f.rollout(s0);
          r.advance(T);
          return [r.states];
        }), { macs: T * 3 * H * H });
        const linearize = (kind: 'diagonal' | 'dense', on: Tensor, init: Tensor) => {
          const run = f.linearize(on, init, { kind });
          run.advance(on.shape[1]);
          return run;
        };
        add('linearize, diagonal Jacobian', T, time(() => {
          const l = linearize('diagonal', states.states, s0);
          return [l.jacobian, l.defect];
        }), { macs: T * 3 * H * H });
        const lin = linearize('diagonal', states.states, s0);
        add('diagonal scan', T, time(() => [backend.linearScanDiagonal(lin.jacobian, lin.defect, s0)]), { bytes: 3 * T * H * e });
        add('add (same shape)', T, time(() => [backend.binary('add', states.states, lin.defect)]), { bytes: 3 * T * H * e });
        add('sanitize', T, time(() => [backend.sanitize(states.states, 1e8).value]), { bytes: 2 * T * H * e });
        const maxMs = time(() => {
          void backend.maxAbsDiff(states.states, lin.defect);
          return [];
        });
        add('maxAbsDiff', T, maxMs, { bytes: 2 * T * H * e });
        const model = { transition: lin.jacobian, bias: lin.defect, observation: states.states, init: s0, processVariance: 1, observationVariance: 1 };
        add('Kalman filter + smoother, diagonal', T, time(() => {
          const k = backend.kalmanDiagonal(model, { smooth: true });
          return [k.mean, k.covariance];
        }), { bytes: 8 * T * H * e });
        // Dense kernels on a prefix (O(T·D²) memory).
        const prefix = backend.slice(states.states, 1, 0, denseT);
        const uDense = backend.slice(u, 1, 0, denseT);
        const fDense = backend.bindProgram(cell.program(), { dtype, inputs: uDense, batch: 1, steps: denseT })!;
        const runDense = () => {
          const run = fDense.linearize(prefix, s0, { kind: 'dense' });
          run.advance(denseT);
          return run;
        };
        add('linearize, dense Jacobian', denseT, time(() => {
          const l = runDense();
          return [l.jacobian, l.defect];
        }), { macs: denseT * 2 * 3 * H * H });
        const dense = runDense();
        add('dense scan', denseT, time(() => [backend.linearScanDense(dense.jacobian, dense.defect, s0)]), { macs: denseT * H * H });
        backend.dispose([dense.jacobian, dense.defect, prefix, uDense, lin.jacobian, lin.defect, states.states, u, s0]);
        fDense.dispose();
        f.dispose();
      }
    } finally {
      backend.destroy();
    }
  }
  return { kind: 'pelk-bench-kernels', date: new Date().toISOString(), machine: machine!, config: { T, denseT, H, I }, results };
}

/** The results as a text table. */
export function formatKernels(report: KernelsReport): string {
  const rows = report.results.map((r) => [
    r.kernel,
    r.dtype,
    String(r.threads),
    String(r.T),
    r.usPerStep.toFixed(3),
    r.gmacPerSecond === undefined ? '' : r.gmacPerSecond.toFixed(2),
    r.gbPerSecond === undefined ? '' : r.gbPerSecond.toFixed(1),
  ]);
  return table(['kernel', 'dtype', 'threads', 'T', 'µs/step', 'GMAC/s', 'GB/s'], rows);
}

/** The suite's files: JSON, the text table and a bar chart of µs per step. */
export function kernelsFiles(report: KernelsReport, text: string): Record<string, string> {
  const rows = report.results.map((r) => ({ label: `${r.kernel} ${r.dtype}, ${r.threads} thread(s)`, usPerStep: r.usPerStep }));
  return {
    'kernels.json': `${JSON.stringify(report, null, 2)}\n`,
    'kernels.txt': `${text}\n`,
    'kernels.svg': barsPlot(`WebAssembly kernels, GRU H=${report.config.H}, I=${report.config.I}: µs per step (median)`, rows),
  };
}

/**
 * `pelk bench --suite gpu`: pelk on whatever WebGPU adapter this machine has — sequential (the
 * GPU-resident rollout) against quasi-DEER, DEER and quasi-ELK on a GRU, over batch sizes, state
 * sizes and sequence lengths as far as the adapter's memory allows; the fused kernels against the
 * op-by-op path they replace; the scans alone in GB/s beside the adapter's measured copy bandwidth.
 * Every timing is a median after a warm-up, with the device work (dispatches, submissions) each
 * run queued.
 */
import { type Cell, type ComputeBackend, type Method, PelkError, evaluate } from '@pelk/core';
import { gru } from '@pelk/models';
import { randomInputs } from '../data.js';
import { median, table } from '../harness.js';
import { type TimingPoint, barsPlot, scalingTimePlot } from '../plots.js';

/** Options of {@link runGpu}. */
export interface GpuOptions {
  readonly quick: boolean;
  /** Skip a method's longer sequences once a run predicts more than this many seconds (time grows ~linearly in T). */
  readonly budgetSeconds: number;
  readonly quiet?: boolean;
  /** Overrides of the grid (tests use tiny ones). */
  readonly grid?: {
    readonly batches?: readonly number[];
    readonly sizes?: readonly number[];
    readonly lengths?: readonly number[];
    /** Timed runs after the warm-up. */
    readonly runs?: number;
    /** T of the fused-vs-op-by-op comparison (B = 1, D = 16). */
    readonly fusedSteps?: number;
    /** T of the diagonal scan (the dense scan runs a tenth of it). */
    readonly scanSteps?: number;
  };
}

/** One evaluation's timing on the GPU. */
export interface GpuRun extends TimingPoint {
  readonly iterations?: number;
  readonly converged?: boolean;
  readonly residual?: number;
  readonly fused?: boolean;
  readonly dispatchesPerIteration?: number;
  readonly submissionsPerIteration?: number;
  readonly dispatches?: number;
  readonly submissions?: number;
}

/** The fused kernels against op by op on one problem. */
export interface FusedComparison {
  readonly method: Method;
  readonly B: number;
  readonly D: number;
  readonly T: number;
  readonly fusedMsPerIteration: number;
  readonly opByOpMsPerIteration: number;
  /** `opByOp / fused`: how many times faster the fused path is. */
  readonly speedup: number;
  readonly fusedDispatchesPerIteration?: number;
  readonly opByOpDispatchesPerIteration?: number;
}

/** A scan's throughput. */
export interface ScanThroughput {
  readonly scan: 'diagonal' | 'kalman' | 'dense' | 'copy';
  /** The diagonal and Kalman scans' memory layout (see `WebGpuBackend.scanLayout`). */
  readonly layout?: 'staged' | 'direct';
  readonly B: number;
  readonly T: number;
  readonly D: number;
  readonly medianMs: number;
  /** Bytes read and written per second, in units of 10⁹. */
  readonly gbPerSecond: number;
}

/** The JSON of the suite. */
export interface GpuReport {
  readonly kind: 'pelk-bench-gpu';
  readonly date: string;
  /** The adapter as the backend describes it. */
  readonly adapter: string;
  /** The adapter's limits that bound what runs (bytes, counts). */
  readonly limits: Readonly<Record<string, number>>;
  readonly runs: GpuRun[];
  readonly fused: FusedComparison[];
  readonly scans: ScanThroughput[];
}

/** What the suite needs of the WebGPU backend beyond `ComputeBackend`. */
interface GpuBackend extends ComputeBackend {
  sync(): Promise<void>;
  readonly gpu: { device: GPUDevice };
  scanLayout: 'auto' | 'staged' | 'direct';
  destroy(): Promise<void>;
}

const LIMIT_NAMES = ['maxBufferSize', 'maxStorageBufferBindingSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupsPerDimension'] as const;

/**
 * Runs the suite on the WebGPU backend and returns the report.
 *
 * @example
 * ```ts
 * const report = await runGpu({ quick: true, budgetSeconds: 60 });
 * ```
 */
export async function runGpu(o: GpuOptions): Promise<GpuReport> {
  const { createWebGpuBackend } = await import('@pelk/backend-webgpu');
  const backend = (await createWebGpuBackend()) as unknown as GpuBackend;
  const say = (line: string) => {
    if (!o.quiet) process.stderr.write(`gpu: ${line}\n`);
  };
  try {
    const limits = Object.fromEntries(LIMIT_NAMES.map((n) => [n, backend.gpu.device.limits[n]]));
    const batches = o.grid?.batches ?? (o.quick ? [1] : [1, 16]);
    const sizes = o.grid?.sizes ?? (o.quick ? [16] : [16, 64]);
    const lengths = o.grid?.lengths ?? (o.quick ? [1_000, 10_000] : [1_000, 10_000, 100_000, 1_000_000]);
    const timedRuns = o.grid?.runs ?? (o.quick ? 1 : 3);
    const methods: Method[] = ['sequential', 'quasi-deer', 'deer', 'quasi-elk'];
    const runs: GpuRun[] = [];
    for (const B of batches) {
      for (const D of sizes) {
        const cell = gru.random({ inputSize: 8, hiddenSize: D, seed: 1 });
        for (const method of methods) {
          let predictedMs = 0;
          for (const T of lengths) {
            const base = { method, B, D, T };
            if (predictedMs > o.budgetSeconds * 1000) {
              runs.push({ ...base, medianMs: Number.NaN, refused: `skipped: predicted ${(predictedMs / 1000).toFixed(0)} s > budget ${o.budgetSeconds} s` });
              continue;
            }
            const run = await timeEvaluation(backend, cell, B, T, method, timedRuns);
            runs.push({ ...base, ...run });
            say(`${method} B=${B} D=${D} T=${T}: ${run.refused ?? `${run.medianMs.toFixed(1)} ms, ${run.iterations} iterations, ${run.dispatchesPerIteration ?? '–'} dispatches/iteration`}`);
            predictedMs = run.refused ? Number.POSITIVE_INFINITY : run.medianMs * 10;
          }
        }
      }
    }
    const fused: FusedComparison[] = [];
    const small = { B: 1, D: 16, T: o.grid?.fusedSteps ?? (o.quick ? 1_000 : 10_000) };
    const cell = gru.random({ inputSize: 8, hiddenSize: small.D, seed: 1 });
    for (const method of ['quasi-deer', 'deer'] as const) {
      const on = await timeEvaluation(backend, cell, small.B, small.T, method, timedRuns, true);
      const off = await timeEvaluation(backend, cell, small.B, small.T, method, timedRuns, false);
      if (on.refused || off.refused) continue;
      const per = (r: Partial<GpuRun> & { medianMs: number }) => r.medianMs / Math.max(1, r.iterations ?? 1);
      fused.push({
        method,
        ...small,
        fusedMsPerIteration: per(on),
        opByOpMsPerIteration: per(off),
        speedup: per(off) / per(on),
        fusedDispatchesPerIteration: on.dispatchesPerIteration,
        opByOpDispatchesPerIteration: off.dispatchesPerIteration,
      });
      say(`${method} fused vs op by op: ${(per(off) / per(on)).toFixed(2)}× (${on.dispatchesPerIteration} vs ${off.dispatchesPerIteration} dispatches/iteration)`);
    }
    const scans = await scanThroughput(backend, o.grid?.scanSteps ?? (o.quick ? 10_000 : 1_000_000));
    for (const s of scans) say(`${s.scan}${s.layout ? ` (${s.layout})` : ''} B=${s.B} T=${s.T} D=${s.D}: ${s.gbPerSecond.toFixed(2)} GB/s`);
    return { kind: 'pelk-bench-gpu', date: new Date().toISOString(), adapter: backend.capabilities.device, limits, runs, fused, scans };
  } finally {
    await backend.destroy();
  }
}

/** Median wall time of an evaluation after one warm-up; `refused` when the backend declines it (memory). */
async function timeEvaluation(
  backend: GpuBackend,
  cell: Cell,
  B: number,
  T: number,
  method: Method,
  runs: number,
  fused = true,
): Promise<Omit<GpuRun, 'method' | 'B' | 'D' | 'T'>> {
  const inputs = randomInputs(B, T, cell.inputSize, 7);
  const times: number[] = [];
  let last: Omit<GpuRun, 'method' | 'B' | 'D' | 'T' | 'medianMs'> = {};
  for (let r = 0; r <= runs; r++) {
    const t0 = performance.now();
    let result: Awaited<ReturnType<typeof evaluate>>;
    try {
      result = await evaluate(cell, inputs, { backend, method, lyapunov: false, fused });
    } catch (err) {
      if (err instanceof PelkError && (err.code === 'RESOURCE_LIMIT' || err.code === 'INVALID_ARGUMENT')) return { medianMs: Number.NaN, refused: `refused: ${err.message}` };
      throw err;
    }
    await result.read();
    const ms = performance.now() - t0;
    const device = result.diagnostics.device;
    last = {
      iterations: result.iterations,
      converged: result.converged,
      residual: result.residual,
      fused: result.diagnostics.fused,
      dispatches: device?.dispatches,
      submissions: device?.submissions,
      dispatchesPerIteration: device?.perIteration?.dispatches,
      submissionsPerIteration: device?.perIteration?.submissions,
    };
    result.dispose();
    if (r > 0) times.push(ms);
  }
  return { medianMs: median(times), ...last };
}

/** The scans alone, and a buffer copy of the same bytes as the ceiling they are measured against. */
async function scanThroughput(backend: GpuBackend, steps: number): Promise<ScanThroughput[]> {
  const out: ScanThroughput[] = [];
  const time = async (fn: () => void): Promise<number> => {
    const times: number[] = [];
    for (let r = 0; r < 4; r++) {
      await backend.sync();
      const t0 = performance.now();
      fn();
      await backend.sync();
      if (r > 0) times.push(performance.now() - t0);
    }
    return median(times);
  };
  // The same B·T·D elements with D from 64 down to 1: narrow D is where scans lose coalescing.
  const shapes = [
    { B: 1, T: steps, D: 64 },
    { B: 16, T: steps, D: 4 },
    { B: 64, T: steps, D: 1 },
  ];
  const diag = shapes[0];
  const n = diag.B * diag.T * diag.D;
  const a = backend.fill([diag.B, diag.T, diag.D], 0.5, 'float32');
  const b = backend.fill([diag.B, diag.T, diag.D], 1, 'float32');
  const init = backend.fill([diag.B, diag.D], 0, 'float32');
  try {
    for (const shape of shapes) {
      // Views of the same elements: a scan reads a and b and writes the states (3 floats each).
      const [sa, sb, si] = [backend.reshape(a, [shape.B, shape.T, shape.D]), backend.reshape(b, [shape.B, shape.T, shape.D]), backend.fill([shape.B, shape.D], 0, 'float32')];
      try {
        for (const layout of ['direct', 'staged'] as const) {
          backend.scanLayout = layout;
          const ms = await time(() => backend.dispose(backend.linearScanDiagonal(sa, sb, si)));
          out.push({ scan: 'diagonal', layout, ...shape, medianMs: ms, gbPerSecond: (3 * n * 4) / (ms * 1e6) });
          // quasi-ELK's pass: the filter reads F, b, y and writes 2 moments; the smoother reads them with F, b and writes 2.
          const msk = await time(() => {
            const m = backend.kalmanDiagonal({ transition: sa, bias: sb, observation: sb, init: si, processVariance: 1, observationVariance: 1 }, { smooth: true });
            backend.dispose([m.mean, m.covariance]);
          });
          out.push({ scan: 'kalman', layout, ...shape, medianMs: msk, gbPerSecond: (11 * n * 4) / (msk * 1e6) });
        }
      } finally {
        backend.scanLayout = 'auto';
        backend.dispose([sa, sb, si]);
      }
    }
    const dense = { B: 1, T: Math.max(1, Math.round(steps / 10)), D: 16 };
    const A = backend.fill([dense.B, dense.T, dense.D, dense.D], 0.05, 'float32');
    const bd = backend.fill([dense.B, dense.T, dense.D], 1, 'float32');
    const i0 = backend.fill([dense.B, dense.D], 0, 'float32');
    try {
      const msd = await time(() => backend.dispose(backend.linearScanDense(A, bd, i0)));
      out.push({ scan: 'dense', ...dense, medianMs: msd, gbPerSecond: ((dense.D * dense.D + 2 * dense.D) * dense.B * dense.T * 4) / (msd * 1e6) });
    } finally {
      backend.dispose([A, bd, i0]);
    }
    // The ceiling: copying the diagonal scan's bytes (read + write) buffer to buffer.
    const device = backend.gpu.device;
    const bytes = 3 * n * 4;
    const src = device.createBuffer({ size: bytes, usage: GPUBufferUsage.COPY_SRC });
    const dst = device.createBuffer({ size: bytes, usage: GPUBufferUsage.COPY_DST });
    try {
      const msc = await time(() => {
        const encoder = device.createCommandEncoder();
        encoder.copyBufferToBuffer(src, 0, dst, 0, bytes);
        device.queue.submit([encoder.finish()]);
      });
      out.push({ scan: 'copy', ...diag, medianMs: msc, gbPerSecond: (2 * bytes) / (msc * 1e6) });
    } finally {
      src.destroy();
      dst.destroy();
    }
  } finally {
    backend.dispose([a, b, init]);
  }
  return out;
}

/** The results as text tables. */
export function formatGpu(report: GpuReport): string {
  const seq = (r: GpuRun) => report.runs.find((s) => s.method === 'sequential' && s.B === r.B && s.D === r.D && s.T === r.T && !s.refused);
  const rows = report.runs.map((r) => {
    const s = seq(r);
    return [
      r.method,
      String(r.B),
      String(r.D),
      String(r.T),
      r.refused ?? r.medianMs.toFixed(1),
      r.refused ? '' : String(r.iterations ?? ''),
      r.refused ? '' : r.converged ? 'yes' : 'NO',
      r.dispatchesPerIteration === undefined ? '' : String(r.dispatchesPerIteration),
      r.submissionsPerIteration === undefined ? '' : String(r.submissionsPerIteration),
      s && !r.refused && r.method !== 'sequential' ? `${(s.medianMs / r.medianMs).toFixed(2)}×` : '',
    ];
  });
  const fused = report.fused.map((f) => [
    f.method,
    `B=${f.B} D=${f.D} T=${f.T}`,
    f.fusedMsPerIteration.toFixed(2),
    f.opByOpMsPerIteration.toFixed(2),
    `${f.speedup.toFixed(2)}×`,
    `${f.fusedDispatchesPerIteration ?? ''} vs ${f.opByOpDispatchesPerIteration ?? ''}`,
  ]);
  const scans = report.scans.map((s) => [s.layout ? `${s.scan} (${s.layout})` : s.scan, `B=${s.B} T=${s.T} D=${s.D}`, s.medianMs.toFixed(2), s.gbPerSecond.toFixed(2)]);
  return [
    `adapter: ${report.adapter}`,
    `limits: ${Object.entries(report.limits).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    '',
    table(['method', 'B', 'D', 'T', 'ms (median)', 'iterations', 'converged', 'dispatches/it', 'submissions/it', 'vs sequential'], rows),
    '',
    table(['fused vs op by op', 'problem', 'fused ms/it', 'op-by-op ms/it', 'speed-up', 'dispatches/it'], fused),
    '',
    table(['scan', 'shape', 'ms (median)', 'GB/s'], scans),
  ].join('\n');
}

/** The suite's files: JSON, text, time-vs-T plots per batch size and a bar chart of the scans. */
export function gpuFiles(report: GpuReport, text: string): Record<string, string> {
  const files: Record<string, string> = {
    'gpu.json': `${JSON.stringify(report, null, 2)}\n`,
    'gpu.txt': `${text}\n`,
  };
  for (const B of [...new Set(report.runs.map((r) => r.B))]) {
    if (report.runs.some((r) => r.B === B && !r.refused)) files[`gpu-B${B}.svg`] = scalingTimePlot(report.runs, B, report.adapter);
  }
  const bars = report.scans.map((s) => ({ label: `${s.scan}${s.layout ? ` ${s.layout}` : ''} scan B=${s.B} T=${s.T} D=${s.D}`, usPerStep: (1000 * s.medianMs) / s.T }));
  if (bars.length > 0) files['gpu-scans.svg'] = barsPlot(`WebGPU scans on ${report.adapter}: µs per step (median)`, bars);
  return files;
}

/**
 * Timing harness shared by `pelk bench` and `pelk demo`: warm-up runs, then timed runs, the median,
 * and a check of each result against the sequential answer on the same backend.
 */
import type { Cell, ComputeBackend, DType, EvaluateOptions, HostArray, IterationInfo, Method, ShapedArray } from '@pelk/core';
import { PelkError, evaluate } from '@pelk/core';

/** One measured (method, dtype, size) cell of a benchmark table. */
export interface Measurement {
  method: Method;
  dtype: DType;
  B: number;
  T: number;
  D: number;
  /** Wall times of the timed runs in ms. */
  runsMs: number[];
  medianMs: number;
  minMs: number;
  maxMs: number;
  /** Median time per sequence step, in microseconds (per batch of B sequences). */
  usPerStep: number;
  iterations: number;
  converged: boolean;
  residual: number;
  /** `max |states − sequential states|` on the same backend and dtype (0 for sequential itself). */
  maxAbsDiffVsSequential?: number;
  /** Set instead of timings when the backend refused the problem (e.g. memory), or the suite skipped it. */
  refused?: string;
  /** Peak resident set size of the process during the timed runs, MiB (sampled each iteration). */
  peakRssMiB?: number;
  /**
   * Peak bytes held by the backend during the timed runs (tensors and primitives' scratch), MiB:
   * the backend's own high-water mark where it keeps one (the CPU backend does), else live tensors
   * sampled at each iteration (a lower bound).
   */
  peakBackendMiB?: number;
}

/** Median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** `max |a − b|` over the first `min(len)` elements (NaN if any difference is NaN). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (Number.isNaN(d)) return Number.NaN;
    if (d > m) m = d;
  }
  return m;
}

/** What to time. */
export interface TimingRequest {
  readonly backend: ComputeBackend;
  readonly cell: Cell;
  readonly inputs: ShapedArray;
  readonly method: Method;
  readonly dtype: DType;
  readonly warmup: number;
  readonly runs: number;
  readonly options?: Partial<EvaluateOptions>;
  /** Reference states to compare against (the sequential run's), if any. */
  readonly reference?: HostArray;
  /** Called on every solver iteration of every run. */
  readonly onIteration?: (info: IterationInfo, run: number) => void;
}

/**
 * Runs `warmup + runs` evaluations and reports the median of the timed ones. A problem the backend
 * refuses (a typed `RESOURCE_LIMIT` error) is reported as `refused`, not thrown.
 *
 * @example
 * ```ts
 * const m = await measure({ backend, cell, inputs, method: 'quasi-deer', dtype: 'float64', warmup: 1, runs: 3 });
 * console.log(m.medianMs, m.iterations);
 * ```
 */
export async function measure(req: TimingRequest): Promise<{ measurement: Measurement; states?: HostArray }> {
  const [B, T] = req.inputs.shape.length === 3 ? req.inputs.shape : [1, req.inputs.shape[0]];
  const D = req.cell.stateSize;
  const base: Measurement = {
    method: req.method,
    dtype: req.dtype,
    B,
    T,
    D,
    runsMs: [],
    medianMs: Number.NaN,
    minMs: Number.NaN,
    maxMs: Number.NaN,
    usPerStep: Number.NaN,
    iterations: 0,
    converged: false,
    residual: Number.NaN,
  };
  let states: HostArray | undefined;
  let peakRss = 0;
  let peakBackend = 0;
  const sample = () => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    const m = req.backend.memory();
    peakBackend = Math.max(peakBackend, m.peakBytes ?? m.bytes);
  };
  for (let run = 0; run < req.warmup + req.runs; run++) {
    let result: Awaited<ReturnType<typeof evaluate>>;
    const timed = run >= req.warmup;
    if (timed) req.backend.resetPeakMemory?.();
    try {
      result = await evaluate(req.cell, req.inputs, {
        ...req.options,
        backend: req.backend,
        method: req.method,
        dtype: req.dtype,
        onIteration: (info) => {
          if (timed) sample();
          req.onIteration?.(info, run);
        },
      });
    } catch (err) {
      if (err instanceof PelkError && err.code === 'RESOURCE_LIMIT') return { measurement: { ...base, refused: err.message } };
      throw err;
    }
    if (timed) {
      sample();
      base.runsMs.push(result.diagnostics.elapsedMs);
    }
    base.iterations = result.iterations;
    base.converged = result.converged;
    base.residual = result.residual;
    if (run === req.warmup + req.runs - 1) states = await result.read();
    result.dispose();
    req.backend.trim?.();
  }
  base.medianMs = median(base.runsMs);
  base.minMs = Math.min(...base.runsMs);
  base.maxMs = Math.max(...base.runsMs);
  base.usPerStep = (base.medianMs * 1000) / T;
  base.peakRssMiB = Math.round((peakRss / 2 ** 20) * 10) / 10;
  base.peakBackendMiB = Math.round((peakBackend / 2 ** 20) * 10) / 10;
  if (req.reference && states) base.maxAbsDiffVsSequential = maxAbsDiff(states, req.reference);
  return { measurement: base, states };
}

/** Formats milliseconds for tables: `850 ms`, `12.3 s`. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  return ms < 1000 ? `${ms.toFixed(ms < 10 ? 2 : 0)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** Left-aligned text table. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k].length)));
  const line = (r: readonly string[]) => r.map((c, k) => c.padEnd(widths[k])).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

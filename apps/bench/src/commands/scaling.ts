/**
 * `pelk bench --suite scaling`: time and memory against the sequence length T and the state size D
 * for a GRU, batch 1 and 16, for every method — the ELK paper's Fig. 2 / 6 on pelk's backends.
 * Long configurations are predicted from the last one measured (time grows linearly in B·T and
 * with D² — D³ for DEER and ELK) and skipped when they would exceed the time budget; configurations the backend refuses (memory) are listed
 * as refused. Each result is checked against sequential on the same backend.
 */
import type { DType, HostArray, Method } from '@pelk/core';
import { gru } from '@pelk/models';
import { createBackend } from '../backends.js';
import { randomInputs } from '../data.js';
import { type Measurement, formatMs, measure, table } from '../harness.js';
import { type MachineDescription, machineDescription } from '../machine.js';
import { scalingMemoryPlot, scalingTimePlot } from '../plots.js';
import { ProgressLine } from '../progress.js';

/** Options of {@link runScaling}. */
export interface ScalingOptions {
  readonly backend: string;
  readonly quick: boolean;
  readonly dtype: DType;
  /** Largest predicted wall time of one configuration (warm-up + timed runs), seconds. */
  readonly budgetSeconds: number;
  readonly quiet?: boolean;
  /** Replaces the grid (tests use a tiny one). */
  readonly grid?: ScalingGrid;
}

/** The suite's grid. */
export interface ScalingGrid {
  readonly steps: readonly number[];
  readonly hidden: readonly number[];
  readonly batch: readonly number[];
  readonly methods: readonly Method[];
  readonly warmup: number;
  readonly runs: number;
}

/** The JSON the suite writes. */
export interface ScalingReport {
  readonly kind: 'pelk-scaling';
  readonly date: string;
  readonly machine: MachineDescription;
  readonly dtype: DType;
  readonly grid: ScalingGrid;
  readonly budgetSeconds: number;
  readonly results: Measurement[];
}

/** Quick: well under a minute here. Full: the paper's grid up to T = 1,000,000 where the budget allows. */
export function scalingGrid(quick: boolean): ScalingGrid {
  return quick
    ? { steps: [500, 2000], hidden: [4, 8], batch: [1, 4], methods: ['sequential', 'quasi-deer', 'deer', 'quasi-elk', 'elk'], warmup: 1, runs: 1 }
    : {
        steps: [1_000, 10_000, 100_000, 1_000_000],
        hidden: [8, 16, 32, 64],
        batch: [1, 16],
        methods: ['sequential', 'quasi-deer', 'deer', 'quasi-elk', 'elk'],
        warmup: 1,
        runs: 3,
      };
}

/**
 * Runs the suite and returns its report (the CLI writes JSON, SVG and HTML).
 *
 * @example
 * ```ts
 * const report = await runScaling({ backend: 'cpu', quick: true, dtype: 'float64', budgetSeconds: 60 });
 * ```
 */
export async function runScaling(o: ScalingOptions): Promise<ScalingReport> {
  const backend = await createBackend(o.backend);
  const grid = o.grid ?? scalingGrid(o.quick);
  const results: Measurement[] = [];
  const log = (line: string) => {
    if (!o.quiet) process.stderr.write(`${line}\n`);
  };
  // Per method: the last measured (or predicted) seconds per run at some (B, T, D), to predict the
  // next configuration — linear in B·T, and in D² (D³ for the dense methods, whose work is O(T·D³)).
  const seen = new Map<Method, { work: number; seconds: number }>();
  const work = (method: Method, B: number, T: number, D: number) => B * T * D ** (method === 'deer' || method === 'elk' ? 3 : 2);
  for (const B of grid.batch) {
    for (const D of grid.hidden) {
      const cell = gru.random({ inputSize: 4, hiddenSize: D, seed: 1 });
      // Per method, for this (B, D): the T at which the backend refused it.
      const last = new Map<Method, { refusedAt: number }>();
      for (const T of grid.steps) {
        const inputs = randomInputs(B, T, 4, 7);
        let reference: HostArray | undefined;
        for (const method of grid.methods) {
          const refusedAt = last.get(method)?.refusedAt;
          const base = { method, dtype: o.dtype, B, T, D, runsMs: [], medianMs: Number.NaN, minMs: Number.NaN, maxMs: Number.NaN, usPerStep: Number.NaN, iterations: 0, converged: false, residual: Number.NaN };
          if (refusedAt !== undefined) {
            results.push({ ...base, refused: `skipped: refused (memory) at T=${refusedAt}` });
            continue;
          }
          const prior = seen.get(method);
          const predicted = prior ? ((prior.seconds * work(method, B, T, D)) / prior.work) * (grid.warmup + grid.runs) : 0;
          if (predicted > o.budgetSeconds) {
            results.push({ ...base, refused: `skipped: predicted ${Math.round(predicted)} s > budget ${o.budgetSeconds} s` });
            continue;
          }
          const progress = new ProgressLine(`${method} B=${B} D=${D} T=${T}`, o.quiet);
          const { measurement, states } = await measure({
            backend,
            cell,
            inputs,
            method,
            dtype: o.dtype,
            warmup: grid.warmup,
            runs: grid.runs,
            reference,
            options: method === 'sequential' ? {} : { maxIterations: 1000 },
            onIteration: (info, run) => progress.update(run, grid.warmup + grid.runs, info),
          });
          progress.done();
          if (method === 'sequential' && states) {
            reference = states;
            measurement.maxAbsDiffVsSequential = 0;
          }
          results.push(measurement);
          if (measurement.refused) last.set(method, { refusedAt: T });
          else seen.set(method, { work: work(method, B, T, D), seconds: measurement.medianMs / 1000 });
          log(
            `B=${B} D=${D} T=${T} ${method}: ${measurement.refused ? 'refused (memory)' : `${formatMs(measurement.medianMs)}, ${measurement.iterations} it`}`,
          );
        }
      }
    }
  }
  return { kind: 'pelk-scaling', date: new Date().toISOString(), machine: machineDescription(backend), dtype: o.dtype, grid, budgetSeconds: o.budgetSeconds, results };
}

/** The results as a text table. */
export function formatScaling(report: ScalingReport): string {
  const rows = report.results.map((m) => [
    String(m.B),
    String(m.D),
    String(m.T),
    m.method,
    m.refused ? m.refused.slice(0, 48) : formatMs(m.medianMs),
    m.refused ? '' : m.usPerStep.toFixed(2),
    m.refused ? '' : String(m.iterations),
    m.refused ? '' : m.converged ? 'yes' : 'NO',
    m.maxAbsDiffVsSequential === undefined ? '—' : m.maxAbsDiffVsSequential.toExponential(1),
    m.peakBackendMiB === undefined ? '' : String(m.peakBackendMiB),
    m.peakRssMiB === undefined ? '' : String(m.peakRssMiB),
  ]);
  return table(['B', 'D', 'T', 'method', 'median', 'µs/step', 'iters', 'conv.', 'max|Δ| vs seq', 'peak backend MiB', 'peak RSS MiB'], rows);
}

/** The suite's files: JSON, the text table, time-vs-T plots per batch size and a memory-vs-D plot. */
export function scalingFiles(report: ScalingReport, text: string): Record<string, string> {
  const subtitle = `${report.machine.backend}, ${report.dtype}`;
  const files: Record<string, string> = {
    'scaling.json': `${JSON.stringify(report, null, 2)}\n`,
    'scaling.txt': `${text}\n`,
    'scaling-memory.svg': scalingMemoryPlot(report.results, subtitle),
  };
  for (const B of report.grid.batch) files[`scaling-time-B${B}.svg`] = scalingTimePlot(report.results, B, subtitle);
  return files;
}

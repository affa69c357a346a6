/**
 * `pelk bench`: times sequential, quasi-DEER and DEER on a GRU with warm-ups and medians, checks
 * each result against the sequential answer, prints a table and optionally writes JSON.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { type AdjointMethod, type DType, type HostArray, type Method, evaluate, grad } from '@pelk/core';
import { gru } from '@pelk/models';
import { createBackend } from '../backends.js';
import { randomInputs } from '../data.js';
import { type Measurement, formatMs, measure, table } from '../harness.js';
import { type MachineDescription, machineDescription } from '../machine.js';
import { barsPlot } from '../plots.js';
import { ProgressLine } from '../progress.js';
import { type PeerRow, runTorchGru } from '../torch-peer.js';

/** Options of {@link runBench}. */
export interface BenchOptions {
  readonly backend: string;
  readonly steps: number;
  readonly hidden: number;
  readonly input: number;
  readonly batch: number;
  readonly methods: readonly Method[];
  readonly dtypes: readonly DType[];
  readonly warmup: number;
  readonly runs: number;
  /** DEER's T when it differs (its dense scan costs O(T·D³)); default: `steps`. */
  readonly deerSteps?: number;
  readonly json?: string;
  readonly quiet?: boolean;
  /** Also time `torch.nn.GRU` (float32, batch 1) on the same weights and inputs. Default true. */
  readonly torch?: boolean;
}

/** The JSON `--json` writes. */
export interface BenchReport {
  readonly kind: 'pelk-bench';
  readonly date: string;
  readonly machine: MachineDescription;
  readonly config: Omit<BenchOptions, 'json' | 'quiet'>;
  readonly results: Measurement[];
  /** Peer implementations on the same problem (float32, batch 1). */
  readonly peers?: PeerRow[];
  /** The adjoint (`grad`) of each converged quasi-DEER evaluation, against one forward iteration. */
  readonly adjoint?: AdjointRow[];
}

/** One adjoint timing: `grad` at a converged quasi-DEER trajectory (its forward solve reused). */
export interface AdjointRow {
  readonly dtype: DType;
  readonly adjoint: Exclude<AdjointMethod, 'auto'>;
  /** Whether the backend's fused adjoint kernels ran the sequential sweep (`result.adjoint.fused`). */
  readonly fused: boolean;
  readonly T: number;
  /** Median wall time of the adjoint solve and the gradients' pass (`result.adjoint.elapsedMs`). */
  readonly medianMs: number;
  /** Median wall time of the whole `grad` call (reading the trajectory back included). */
  readonly callMs: number;
  readonly iterations: number;
  readonly converged: boolean;
  /** One forward quasi-DEER iteration: the median, over the runs, of an evaluation's time over its iterations. */
  readonly forwardIterationMs: number;
  /** The adjoint's cost in forward iterations: the median, over the runs, of its time over the same run's forward iteration. */
  readonly forwardIterations: number;
  /** The smallest and largest of those ratios. */
  readonly forwardIterationsRange: readonly [number, number];
}

/**
 * Runs the GRU benchmark and returns its report.
 *
 * @example
 * ```ts
 * const report = await runBench({ backend: 'cpu', steps: 10_000, hidden: 64, input: 8, batch: 1,
 *   methods: ['sequential', 'quasi-deer'], dtypes: ['float64'], warmup: 1, runs: 3 });
 * ```
 */
export async function runBench(o: BenchOptions): Promise<BenchReport> {
  const backend = await createBackend(o.backend);
  const cell = gru.random({ inputSize: o.input, hiddenSize: o.hidden, seed: 1 });
  const results: Measurement[] = [];
  const log = (line: string) => {
    if (!o.quiet) process.stderr.write(`${line}\n`);
  };
  log(`pelk bench: GRU D=${o.hidden}, input ${o.input}, B=${o.batch}, T=${o.steps} on ${backend.name} (${backend.capabilities.device})`);
  // Sizes the backend cannot hold are bad input here: probe each parallel method (the backend
  // refuses before allocating, or the probe runs one iteration) before any long run starts.
  for (const dtype of o.dtypes) {
    for (const method of o.methods.filter((m) => m !== 'sequential')) {
      const T = method === 'deer' && o.deerSteps ? o.deerSteps : o.steps;
      const probe = await evaluate(cell, randomInputs(o.batch, T, o.input, 7), { backend, method, dtype, maxIterations: 1 });
      probe.dispose();
    }
  }
  let float32Reference: HostArray | undefined;
  for (const dtype of o.dtypes) {
    const references = new Map<number, HostArray>();
    // Sequential first: it is the reference for the others.
    const ordered = [...o.methods].sort((a, b) => Number(b === 'sequential') - Number(a === 'sequential'));
    for (const method of ordered) {
      const T = method === 'deer' && o.deerSteps ? o.deerSteps : o.steps;
      const inputs = randomInputs(o.batch, T, o.input, 7);
      let reference = references.get(T);
      if (!reference && method !== 'sequential') {
        const seq = await measure({ backend, cell, inputs, method: 'sequential', dtype, warmup: 0, runs: 1 });
        reference = seq.states;
        if (reference) references.set(T, reference);
      }
      const progress = new ProgressLine(`${method} ${dtype} T=${T}`, o.quiet);
      const { measurement, states } = await measure({
        backend,
        cell,
        inputs,
        method,
        dtype,
        warmup: o.warmup,
        runs: o.runs,
        reference,
        onIteration: (info, run) => progress.update(run, o.warmup + o.runs, info),
      });
      progress.done();
      if (method === 'sequential' && states) {
        references.set(T, states);
        measurement.maxAbsDiffVsSequential = 0;
      }
      results.push(measurement);
    }
    if (dtype === 'float32') float32Reference = references.get(o.steps);
  }
  const adjoint: AdjointRow[] = [];
  if (o.methods.includes('quasi-deer')) {
    for (const dtype of o.dtypes) {
      const forward = results.find((m) => m.method === 'quasi-deer' && m.dtype === dtype && !m.refused && m.converged);
      if (forward) adjoint.push(...(await timeAdjoint(backend, cell, o, dtype, log)));
    }
  }
  const peers: PeerRow[] = [];
  if ((o.torch ?? true) && o.batch === 1) {
    log('torch.nn.GRU (float32, same weights and inputs)');
    const weights = (cell.toSpec() as { weights: unknown }).weights;
    peers.push(runTorchGru(weights, randomInputs(1, o.steps, o.input, 7).data, o.steps, o.input, o.hidden, o.warmup, o.runs, float32Reference));
  }
  const report: BenchReport = {
    kind: 'pelk-bench',
    date: new Date().toISOString(),
    machine: machineDescription(backend),
    config: {
      backend: o.backend,
      steps: o.steps,
      hidden: o.hidden,
      input: o.input,
      batch: o.batch,
      methods: o.methods,
      dtypes: o.dtypes,
      warmup: o.warmup,
      runs: o.runs,
      deerSteps: o.deerSteps,
      torch: o.torch,
    },
    results,
    peers,
    adjoint,
  };
  if (o.json) {
    const tmp = `${o.json}.tmp-${process.pid}`;
    writeFileSync(tmp, `${JSON.stringify(report, null, 2)}\n`);
    renameSync(tmp, o.json);
  }
  return report;
}

/**
 * Times `grad` at a converged quasi-DEER trajectory of the benchmark's GRU: the default adjoint
 * (the sequential sweep) and the exact diagonal iteration. Each run pairs a
 * fresh quasi-DEER evaluation (default options, timed per iteration) with the adjoints at its
 * trajectory, so that the ratio compares times taken moments apart on a machine whose speed
 * drifts; the rows report medians over `runs` after `warmup`.
 */
async function timeAdjoint(
  backend: Awaited<ReturnType<typeof createBackend>>,
  cell: ReturnType<typeof gru.random>,
  o: BenchOptions,
  dtype: DType,
  log: (line: string) => void,
): Promise<AdjointRow[]> {
  const inputs = randomInputs(o.batch, o.steps, o.input, 7);
  const cotangent = randomInputs(o.batch, o.steps, o.hidden, 11);
  const methods = ['sequential', 'diagonal'] as const;
  const timed = methods.map(() => ({ solves: [] as number[], calls: [] as number[], ratios: [] as number[], last: undefined as Awaited<ReturnType<typeof grad>> | undefined }));
  const forwardIterationMs: number[] = [];
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  for (let run = 0; run < o.warmup + o.runs; run++) {
    log(`adjoint ${dtype} T=${o.steps}: run ${run + 1}/${o.warmup + o.runs}`);
    const began = performance.now();
    const forward = await evaluate(cell, inputs, { backend, method: 'quasi-deer', dtype });
    try {
      const iterationMs = (performance.now() - began) / forward.iterations;
      if (run >= o.warmup) forwardIterationMs.push(iterationMs);
      for (const [k, method] of methods.entries()) {
        const start = performance.now();
        const g = await grad(cell, inputs, cotangent, { backend, forward, adjoint: method, dtype });
        timed[k].last = g;
        if (run < o.warmup) continue;
        timed[k].calls.push(performance.now() - start);
        timed[k].solves.push(g.adjoint.elapsedMs);
        timed[k].ratios.push(g.adjoint.elapsedMs / iterationMs);
      }
    } finally {
      forward.dispose();
    }
  }
  return methods.map((method, k) => {
    const { solves, calls, ratios, last } = timed[k];
    return {
      dtype,
      adjoint: method,
      fused: last!.adjoint.fused,
      T: o.steps,
      medianMs: median(solves),
      callMs: median(calls),
      iterations: last!.adjoint.iterations,
      converged: last!.adjoint.converged,
      forwardIterationMs: median(forwardIterationMs),
      forwardIterations: median(ratios),
      forwardIterationsRange: [Math.min(...ratios), Math.max(...ratios)],
    };
  });
}

/** The suite's files: JSON, the text table, and a bar chart of µs per step. */
export function gruFiles(report: BenchReport, text: string): Record<string, string> {
  const rows = report.results
    .filter((m) => !m.refused)
    .map((m) => ({ label: `${m.method} ${m.dtype} (T=${m.T.toLocaleString('en-US')})`, usPerStep: m.usPerStep }));
  return {
    'gru.json': `${JSON.stringify(report, null, 2)}\n`,
    'gru.txt': `${text}\n`,
    'gru.svg': barsPlot(`GRU D=${report.config.hidden}, B=${report.config.batch}: µs per step (median), backend ${report.machine.backend}`, rows),
  };
}

/** The results as a text table. */
export function formatBench(report: BenchReport): string {
  const rows = report.results.map((m) =>
    m.refused
      ? [m.method, m.dtype, String(m.T), 'refused', '', '', '', m.refused.split(':').slice(1).join(':').trim().slice(0, 60)]
      : [
          m.method,
          m.dtype,
          String(m.T),
          formatMs(m.medianMs),
          m.usPerStep.toFixed(2),
          String(m.iterations),
          m.converged ? 'yes' : 'NO',
          m.maxAbsDiffVsSequential === undefined ? '—' : m.maxAbsDiffVsSequential.toExponential(1),
        ],
  );
  const main = table(['method', 'dtype', 'T', 'median', 'µs/step', 'iters', 'converged', 'max|Δ| vs seq'], rows);
  const peers = (report.peers ?? []).map((p) =>
    p.skipped
      ? [p.implementation, String(p.T), 'skipped', '', p.skipped]
      : [p.implementation, String(p.T), formatMs(p.medianMs!), p.usPerStep!.toFixed(2), Number.isNaN(p.maxAbsDiffVsPelk) ? '—' : p.maxAbsDiffVsPelk!.toExponential(1)],
  );
  const adjoint = (report.adjoint ?? []).map((a) => [
    a.fused ? `${a.adjoint} (fused)` : a.adjoint,
    a.dtype,
    String(a.T),
    formatMs(a.medianMs),
    formatMs(a.callMs),
    String(a.iterations),
    a.converged ? 'yes' : 'NO',
    `${a.forwardIterations.toFixed(2)} (${a.forwardIterationsRange.map((r) => r.toFixed(2)).join('–')})`,
  ]);
  const sections = [main];
  if (adjoint.length > 0) {
    sections.push(
      `adjoint (grad) at the converged quasi-DEER trajectory, in forward iterations of the same run (median, range; one = ${formatMs(report.adjoint![0].forwardIterationMs)}):\n${table(['adjoint', 'dtype', 'T', 'median solve', 'grad call', 'iters', 'converged', 'forward iterations'], adjoint)}`,
    );
  }
  if (peers.length > 0) sections.push(`peers (float32, batch 1, same weights and inputs):\n${table(['implementation', 'T', 'median', 'µs/step', 'max|Δ| vs pelk seq f32'], peers)}`);
  return sections.join('\n\n');
}

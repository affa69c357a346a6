/**
 * `pelk bench --suite stability`: the ELK paper's stability experiments (Fig. 4, 7, 8). On the
 * trained AR-GRU and on Lorenz-96, how many iterations DEER, quasi-DEER, ELK and quasi-ELK (Kalman
 * filter and smoother steps) need, for a sweep of fixed σ² and for adaptive damping; JSON results
 * and SVG plots of the residual against the iteration and of iterations against σ².
 *
 * One stopping rule for every column: a run counts as converged when `evaluate` certifies it
 * (`result.converged` at tolerance 1e-9: the returned trajectory's true residual
 * `max_t ‖s_t − f(s_{t−1})‖∞` ≤ 1e-9 in float64, no value clipped or reset, the cap not reached),
 * and its iteration count is the number of iterations it ran to get there.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Cell, type ComputeBackend, type KalmanMode, type Method, type ShapedArray, type StopReason, evaluate } from '@pelk/core';
import { lorenz96, readModelSpec } from '@pelk/models';
import { createBackend } from '../backends.js';
import { randomInputs } from '../data.js';
import { maxAbsDiff, table } from '../harness.js';
import { iterationsVsSigmaPlot, residualPlot } from '../plots.js';
import { ProgressLine } from '../progress.js';

/** Options of {@link runStability}. */
export interface StabilityOptions {
  readonly backend: string;
  /** Small sizes and sweep (a few minutes); otherwise T = 2,000 and 10,000 for the AR-GRU. */
  readonly quick: boolean;
  readonly quiet?: boolean;
  /** Path of `argru-sine-trained.json` (default: `../shared/fixtures` beside the repository). */
  readonly fixture?: string;
}

/** One problem of the suite: a cell, its drivers, its initial state and the sequential answer. */
interface Problem {
  readonly name: string;
  readonly cell: Cell;
  readonly inputs: ShapedArray | number[][] | null;
  readonly steps: number;
  readonly initialState: number[];
  readonly oracle: Float64Array;
}

/** One solver run. */
export interface StabilityRun {
  problem: string;
  method: Method;
  kalman?: KalmanMode;
  /** Fixed σ², or 'adaptive'. */
  sigmaSq?: number | 'adaptive';
  iterations: number;
  /** `result.converged`: the certificate at the suite's tolerance (see {@link stoppingRule}). */
  converged: boolean;
  /** `result.reason`: why the run stopped (`'converged'`, `'max-iterations'`, `'stalled'`, …). */
  reason?: StopReason;
  /** `result.residual`: the true residual of the returned trajectory. */
  residual?: number;
  ms: number;
  /** `max |s − s_sequential|` at the end. */
  error: number;
  /** Residual of the iterate each iteration produced (`history[i].residual`). */
  residuals: number[];
}

/** The JSON the suite writes. */
export interface StabilityReport {
  readonly kind: 'pelk-stability';
  readonly date: string;
  readonly backend: string;
  readonly quick: boolean;
  readonly maxIterations: number;
  readonly tolerance: number;
  /** The one stopping rule behind every iteration count of the report, in words. */
  readonly stoppingRule?: string;
  readonly runs: StabilityRun[];
  /** Per problem and ELK variant: the best fixed σ² and how adaptive damping compares. */
  readonly summary: StabilitySummary[];
}

/** Adaptive vs the best fixed σ² for one (problem, method, kalman). */
export interface StabilitySummary {
  problem: string;
  method: Method;
  kalman: KalmanMode;
  bestSigmaSq: number | null;
  bestIterations: number | null;
  adaptiveIterations: number | null;
  /** adaptive / best (≤ 1.5 is the goal); null when either did not converge. */
  ratio: number | null;
}

/**
 * The suite's one stopping rule, in words: every column (DEER, quasi-DEER, ELK and quasi-ELK, fixed
 * and adaptive σ²) counts the iterations to `evaluate`'s certificate at the same tolerance.
 */
export function stoppingRule(tolerance: number, maxIterations: number): string {
  return (
    `iterations until evaluate() certifies convergence (result.converged: the returned trajectory's true residual ` +
    `max_t ‖s_t − f(s_{t−1})‖∞ ≤ ${tolerance} in float64, no value clipped or reset), every method, zero initial guess, cap ${maxIterations}`
  );
}

const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const DEFAULT_FIXTURE = join(REPO_ROOT, '..', 'shared', 'fixtures', 'argru-sine-trained.json');
const LORENZ_FIXTURE = join(REPO_ROOT, 'packages', 'conformance', 'fixtures', 'lorenz96-small.json');

async function sequential(backend: ComputeBackend, cell: Cell, inputs: Problem['inputs'], steps: number, initialState: number[]) {
  const r = await evaluate(cell, inputs, { backend, method: 'sequential', initialState, steps: cell.inputSize ? undefined : steps });
  const states = Float64Array.from(await r.read());
  r.dispose();
  return states;
}

/** The AR-GRU problems (the fixture's T = 2,000, and T = 10,000 with seeded drivers) and Lorenz-96. */
async function problems(backend: ComputeBackend, o: StabilityOptions, log: (s: string) => void): Promise<Problem[]> {
  const out: Problem[] = [];
  const fixture = o.fixture ?? DEFAULT_FIXTURE;
  if (existsSync(fixture)) {
    const spec = readModelSpec(JSON.parse(readFileSync(fixture, 'utf8')));
    const s0 = spec.initialState ?? [];
    out.push({ name: 'argru-T2000', cell: spec.cell, inputs: spec.inputs, steps: spec.steps, initialState: s0, oracle: Float64Array.from(spec.states!.flat()) });
    if (!o.quick) {
      // Longer runs: standard-normal drivers from a fixed seed, the sequential answer as oracle.
      const drivers = randomInputs(1, 10_000, 1, 2024);
      out.push({ name: 'argru-T10000', cell: spec.cell, inputs: drivers, steps: 10_000, initialState: s0, oracle: await sequential(backend, spec.cell, drivers, 10_000, s0) });
    }
  } else {
    log(`stability: ${fixture} not found — the trained AR-GRU carries the ELK authors' weights and is not in the repository; skipping it`);
  }
  const l96 = lorenz96({ dimension: 5, forcing: 8, dt: 0.01, integrator: 'rk4' });
  const s0 = readModelSpec(JSON.parse(readFileSync(LORENZ_FIXTURE, 'utf8'))).initialState ?? [8, 8, 8, 8, 8.01];
  const T = 1000;
  out.push({ name: `lorenz96-T${T}`, cell: l96, inputs: null, steps: T, initialState: s0, oracle: await sequential(backend, l96, null, T, s0) });
  return out;
}

/**
 * Runs the suite and returns its report; {@link stabilityFiles} gives its JSON and its plots
 * (residual vs iteration, iterations vs σ², per problem).
 *
 * @example
 * ```ts
 * const report = await runStability({ backend: 'cpu', quick: true });
 * ```
 */
export async function runStability(o: StabilityOptions): Promise<StabilityReport> {
  const backend = await createBackend(o.backend);
  const log = (line: string) => {
    if (!o.quiet) process.stderr.write(`${line}\n`);
  };
  const maxIterations = o.quick ? 1000 : 3000;
  const tolerance = 1e-9;
  const sweep = o.quick ? [10, 1e2, 1e4, 1e6] : [1, 10, 1e2, 1e3, 1e4, 1e6];
  const runs: StabilityRun[] = [];
  for (const p of await problems(backend, o, log)) {
    const configs: { method: Method; kalman?: KalmanMode; sigmaSq?: number | 'adaptive' }[] = [{ method: 'deer' }, { method: 'quasi-deer' }];
    for (const method of ['elk', 'quasi-elk'] as const) {
      for (const kalman of ['filter', 'smoother'] as const) {
        // The smoother's sweep is long and mostly stalls (see the README); quick mode runs it adaptive only.
        const sigmas: (number | 'adaptive')[] = kalman === 'smoother' && o.quick ? ['adaptive'] : ['adaptive', ...sweep];
        for (const sigmaSq of sigmas) configs.push({ method, kalman, sigmaSq });
      }
    }
    for (const c of configs) {
      const label = `${p.name} ${c.method}${c.kalman ? ` ${c.kalman}` : ''}${c.sigmaSq !== undefined ? ` σ²=${c.sigmaSq}` : ''}`;
      const progress = new ProgressLine(label, o.quiet);
      const started = performance.now();
      const r = await evaluate(p.cell, p.inputs, {
        backend,
        method: c.method,
        kalman: c.kalman,
        sigmaSq: c.sigmaSq,
        initialState: p.initialState,
        steps: p.cell.inputSize ? undefined : p.steps,
        tolerance,
        maxIterations,
        onIteration: (info) => {
          if (info.iteration % 50 === 0) progress.update(0, 1, info);
        },
      });
      const ms = performance.now() - started;
      const states = await r.read();
      runs.push({
        problem: p.name,
        method: c.method,
        kalman: c.kalman,
        sigmaSq: c.sigmaSq,
        iterations: r.iterations,
        converged: r.converged,
        reason: r.reason,
        residual: r.residual,
        ms: Math.round(ms),
        error: maxAbsDiff(states, p.oracle),
        residuals: r.history.map((h) => h.residual),
      });
      r.dispose();
      progress.done();
      log(`${label}: ${r.iterations} iterations, ${r.converged ? 'converged' : `NOT converged (${r.reason})`}, residual ${r.residual.toExponential(1)}, ${Math.round(ms)} ms`);
    }
  }
  const report: StabilityReport = {
    kind: 'pelk-stability',
    date: new Date().toISOString(),
    backend: `${backend.name} (${backend.capabilities.device})`,
    quick: o.quick,
    maxIterations,
    tolerance,
    stoppingRule: stoppingRule(tolerance, maxIterations),
    runs,
    summary: summarize(runs),
  };
  return report;
}

function summarize(runs: StabilityRun[]): StabilitySummary[] {
  const out: StabilitySummary[] = [];
  for (const problem of [...new Set(runs.map((r) => r.problem))]) {
    for (const method of ['elk', 'quasi-elk'] as const) {
      for (const kalman of ['filter', 'smoother'] as const) {
        const mine = runs.filter((r) => r.problem === problem && r.method === method && r.kalman === kalman);
        const fixed = mine.filter((r) => typeof r.sigmaSq === 'number' && r.converged).sort((a, b) => a.iterations - b.iterations);
        const adaptive = mine.find((r) => r.sigmaSq === 'adaptive');
        const best = fixed[0];
        const adaptiveIterations = adaptive?.converged ? adaptive.iterations : null;
        out.push({
          problem,
          method,
          kalman,
          bestSigmaSq: best ? (best.sigmaSq as number) : null,
          bestIterations: best ? best.iterations : null,
          adaptiveIterations,
          ratio: best && adaptiveIterations !== null ? Math.round((adaptiveIterations / best.iterations) * 100) / 100 : null,
        });
      }
    }
  }
  return out;
}

/** The suite's files: JSON, and per problem the residual and σ²-sweep plots. */
export function stabilityFiles(report: StabilityReport): Record<string, string> {
  const files: Record<string, string> = { 'stability.json': `${JSON.stringify(report, null, 1)}\n`, 'stability.txt': `${formatStability(report)}\n` };
  for (const problem of [...new Set(report.runs.map((r) => r.problem))]) {
    const runs = report.runs.filter((r) => r.problem === problem);
    files[`stability-${problem}.svg`] = residualPlot(problem, runs, report.summary, report.tolerance);
    files[`stability-sweep-${problem}.svg`] = iterationsVsSigmaPlot(problem, runs, report.maxIterations, report.tolerance);
  }
  return files;
}

/** The summary as a text table. */
export function formatStability(report: StabilityReport): string {
  const swept = (s: StabilitySummary) => report.runs.some((r) => r.problem === s.problem && r.method === s.method && r.kalman === s.kalman && typeof r.sigmaSq === 'number');
  const rows = report.summary.map((s) => [
    s.problem,
    `${s.method} (${s.kalman})`,
    s.bestSigmaSq === null ? (swept(s) ? 'none converged' : 'not swept') : `σ²=${s.bestSigmaSq}: ${s.bestIterations}`,
    s.adaptiveIterations === null ? notConverged(report.runs.find((r) => r.problem === s.problem && r.method === s.method && r.kalman === s.kalman && r.sigmaSq === 'adaptive')) : String(s.adaptiveIterations),
    s.ratio === null ? '—' : `${s.ratio}×`,
  ]);
  const dense = report.runs
    .filter((r) => r.method === 'deer' || r.method === 'quasi-deer')
    .map((r) => [r.problem, r.method, '', r.converged ? String(r.iterations) : notConverged(r), '']);
  return [
    `Stopping rule (every column): ${report.stoppingRule ?? stoppingRule(report.tolerance, report.maxIterations)}.`,
    '',
    table(['problem', 'method', `best fixed σ² (iterations, cap ${report.maxIterations})`, 'adaptive', 'adaptive / best'], [...dense, ...rows]),
  ].join('\n');
}

/** `NOT converged (max-iterations, 1000)`: why a run has no certificate, and after how many iterations. */
function notConverged(r: StabilityRun | undefined): string {
  if (!r) return 'NOT converged';
  return `NOT converged (${r.reason ? `${r.reason}, ` : ''}${r.iterations})`;
}

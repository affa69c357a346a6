/**
 * `pelk bench --suite stability`: the ELK paper's stability experiments (Fig. 4, 7, 8), and an
 * out-of-sample check of the adaptive damping. The problems come in two sets, kept apart in the
 * JSON, the text and the plots:
 *
 * - **tuning**: the problems `ADAPTIVE_DAMPING` (in `@pelk/core`) was chosen on — the trained
 *   AR-GRU (T = 2,000, the fixture) and Lorenz-96 (D = 5, F = 8, T = 1,000; quick: 400) — with a
 *   sweep of fixed σ² (Kalman filter step) and the smoother with adaptive damping;
 * - **held-out**: problems it was not tuned on — random GRU, LSTM and Elman (tanh) cells at three
 *   recurrent gains (contractive, hot, past the edge), Lorenz-96 at D ∈ {5, 8, 16} × F ∈ {2, 8},
 *   and the AR-GRU at T = 10,000 with seeded drivers (with a σ² sweep).
 *
 * On every problem: sequential (the oracle), DEER, quasi-DEER, and ELK and quasi-ELK (Kalman
 * filter) with adaptive damping, each capped at T + 1 iterations. A targets section, computed from
 * the runs per set, says whether adaptive damping holds up out of sample (see {@link STABILITY_TARGETS}).
 *
 * One stopping rule for every column: a run counts as converged when `evaluate` certifies it
 * (`result.converged` at tolerance 1e-9: the returned trajectory's true residual
 * `max_t ‖s_t − f(s_{t−1})‖∞` ≤ 1e-9 in float64, no value clipped or reset, the cap not reached),
 * and its iteration count is the number of iterations it ran to get there.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AbortError,
  type Cell,
  type ComputeBackend,
  type EvaluateResult,
  type KalmanMode,
  type Method,
  type ShapedArray,
  type StopReason,
  evaluate,
} from '@pelk/core';
import { elman, gru, lorenz96, lstm, readModelSpec } from '@pelk/models';
import { createBackend } from '../backends.js';
import { randomInputs } from '../data.js';
import { maxAbsDiff, table } from '../harness.js';
import { iterationsVsSigmaPlot, residualPlot, stabilityOverviewPlot } from '../plots.js';
import { ProgressLine } from '../progress.js';

/** The two problem sets: the problems the adaptive damping was tuned on, and the ones it was not. */
export type StabilitySet = 'tuning' | 'held-out';

/** Both sets, in the order the suite runs and reports them. */
export const STABILITY_SETS: readonly StabilitySet[] = ['tuning', 'held-out'];

/** Options of {@link runStability}. */
export interface StabilityOptions {
  readonly backend: string;
  /** Small sizes, a subset of the held-out problems and a shorter sweep (a few minutes). */
  readonly quick: boolean;
  readonly quiet?: boolean;
  /** Path of `argru-sine-trained.json` (default: `../shared/fixtures` beside the repository). */
  readonly fixture?: string;
  /** Which problems to run (default `'all'`). */
  readonly set?: StabilitySet | 'all';
  /** Replaces the problem list of {@link stabilityProblems} (tests use tiny ones). */
  readonly problems?: readonly StabilityProblemSpec[];
  /** Replaces the fixed σ² of the sweep. */
  readonly sweep?: readonly number[];
  /**
   * Wall-clock limit of one solver run, seconds (default 600; quick: 120): a run still going then
   * is stopped and reported as not converged, `reason: 'time-budget'`. A safety net that keeps the
   * suite's run time bounded when a method needs far more iterations than it should.
   */
  readonly runBudgetSeconds?: number;
}

interface ProblemSpecBase {
  readonly set: StabilitySet;
  /** T, the sequence length. */
  readonly steps: number;
  /** Sweep fixed σ² (ELK and quasi-ELK, Kalman filter step) on this problem. */
  readonly sweep?: boolean;
}

/**
 * A trained AR-GRU: the ELK authors' (the external fixture's weights, `model: 'authors'`, run when the
 * fixture is found) or the repository's own, trained by `pnpm pelk train ar-sine` (`model: 'pelk'`,
 * shipped with @pelk/conformance).
 */
export interface ArgruProblemSpec extends ProblemSpecBase {
  readonly kind: 'argru';
  readonly model: 'authors' | 'pelk';
  /** Seed of standard-normal drivers; omitted: the fixture's own drivers (then T is the fixture's). */
  readonly driversSeed?: number;
}

/**
 * A random GRU, LSTM or Elman (tanh) cell from `@pelk/models` (`gru.random` etc.), driven by
 * standard-normal inputs `randomInputs(1, T, I, RNN_INPUT_SEED)`.
 */
export interface RnnProblemSpec extends ProblemSpecBase {
  readonly kind: 'gru' | 'lstm' | 'elman';
  /** H (the LSTM's state is [h, c], D = 2H). */
  readonly hiddenSize: number;
  readonly inputSize: number;
  /**
   * Recurrent gain g: every weight is uniform in [−g/√H, g/√H) (`scale = g/√H`; PyTorch's default
   * initialisation is g = 1). g ≤ 1 counts as contractive, g ≥ 4 as past the edge, between as hot.
   */
  readonly gain: number;
  /** Weight seed. */
  readonly seed: number;
}

/** Lorenz-96 (RK4, dt = 0.01), autonomous. */
export interface Lorenz96ProblemSpec extends ProblemSpecBase {
  readonly kind: 'lorenz96';
  readonly dimension: number;
  /** F: 8 is chaotic, 2 is weakly forced (no chaos). */
  readonly forcing: number;
  /** s_0; default [F, …, F, F + 0.01]. */
  readonly initialState?: readonly number[];
}

/** One problem of the suite, as data: {@link stabilityProblems} lists the default ones. */
export type StabilityProblemSpec = ArgruProblemSpec | RnnProblemSpec | Lorenz96ProblemSpec;

/** What kind of dynamics a problem has, as far as it is known before running. */
export type StabilityRegime = 'trained' | 'contractive' | 'hot' | 'past the edge' | 'weakly forced' | 'chaotic' | 'unclassified';

/** `result.diagnostics.lyapunov` as read from a run (non-finite numbers as null). */
export interface StabilityLyapunov {
  /** Largest Lyapunov exponent, natural log per step. */
  readonly exponent: number | null;
  readonly standardError: number | null;
  readonly steps?: number;
  readonly jacobian?: string;
  readonly verdict?: string;
  readonly reading?: string;
}

/** A problem as run: what it is, its set, its cap and its Lyapunov estimate. */
export interface StabilityProblem {
  readonly name: string;
  readonly set: StabilitySet;
  readonly kind: StabilityProblemSpec['kind'];
  readonly regime: StabilityRegime;
  /** In words, e.g. "random GRU, H = 24, I = 4, g = 2.5 (weights ±g/√H)". */
  readonly description: string;
  /** T. */
  readonly steps: number;
  /** D. */
  readonly stateSize: number;
  readonly gain?: number;
  readonly forcing?: number;
  /** Cap of its method runs: T + 1. */
  readonly maxIterations: number;
  /** Whether fixed σ² were swept on it. */
  readonly swept: boolean;
  /** The sign its Lyapunov exponent should have (target (c)): chaotic Lorenz-96 > 0, contractive RNNs < 0. */
  readonly expectedLyapunov?: 'positive' | 'negative';
  /** The Lyapunov estimate of a run (`diagnostics.lyapunov`); null when no run carried one. */
  readonly lyapunov: StabilityLyapunov | null;
  /** Which run it was read from, e.g. "deer". */
  readonly lyapunovFrom?: string;
}

/** One solver run. */
export interface StabilityRun {
  problem: string;
  /** The problem's set (absent in reports written before the sets existed). */
  set?: StabilitySet;
  method: Method;
  kalman?: KalmanMode;
  /** Fixed σ², or 'adaptive'. */
  sigmaSq?: number | 'adaptive';
  iterations: number;
  /** `result.converged`: the certificate at the suite's tolerance (see {@link stoppingRule}). */
  converged: boolean;
  /**
   * `result.reason`: why the run stopped (`'converged'`, `'max-iterations'`, `'stalled'`, …), or
   * `'time-budget'` when the suite stopped it (see {@link StabilityOptions.runBudgetSeconds}).
   */
  reason?: StopReason | 'time-budget';
  /** `result.residual`: the true residual of the returned trajectory. */
  residual?: number;
  /** The run's iteration cap. */
  maxIterations?: number;
  ms: number;
  /** `max |s − s_sequential|` at the end (for the fixture's AR-GRU: against its reference states). */
  error: number;
  /** `result.diagnostics.nonFiniteResets`: NaN/Inf values reset over the run. */
  nonFiniteResets?: number;
  /** `result.diagnostics.clippedValues`: values clipped to ±clip over the run. */
  clippedValues?: number;
  /** `result.diagnostics.lyapunov`, when the result carries one. */
  lyapunov?: StabilityLyapunov;
  /** Residual of the iterate each iteration produced (`history[i].residual`). */
  residuals: number[];
}

/** Adaptive vs the best fixed σ² for one (problem, method, kalman). */
export interface StabilitySummary {
  problem: string;
  /** The problem's set (absent in reports written before the sets existed). */
  set?: StabilitySet;
  method: Method;
  kalman: KalmanMode;
  bestSigmaSq: number | null;
  bestIterations: number | null;
  adaptiveIterations: number | null;
  /** adaptive / best (≤ {@link STABILITY_TARGETS}`.adaptiveVsBestFixed` is the target); null when either did not converge. */
  ratio: number | null;
}

/** One problem's (or run's) part in a target. */
export interface StabilityTargetCheck {
  readonly problem: string;
  /** What was measured, e.g. "elk 17 / deer 5 = 3.4". */
  readonly detail: string;
  /** The measured ratio, iteration count or exponent; null when there is none (did not converge, no estimate). */
  readonly value: number | null;
  /** Whether it meets the target; null when it cannot be judged (e.g. no Lyapunov estimate, no fixed σ² converged). */
  readonly met: boolean | null;
}

/** One target, for one set of problems. */
export interface StabilityTarget {
  /** The issue's label: (a) ELK / DEER, (a) quasi-ELK / quasi-DEER, (b) within T + 1, (c) Lyapunov sign, (d) adaptive / best fixed σ². */
  readonly id: 'a' | 'a-quasi' | 'b' | 'c' | 'd';
  readonly set: StabilitySet;
  /** The target in words, with its bound. */
  readonly target: string;
  /** false when some check fails it; true when every check that could be judged meets it; null when none could. */
  readonly met: boolean | null;
  /** The problems (or, for (b), the runs) it applies to; for (b) only the failures are listed. */
  readonly checks: StabilityTargetCheck[];
  /** For (b): how many runs were checked. */
  readonly checked?: number;
}

/** The JSON the suite writes. */
export interface StabilityReport {
  readonly kind: 'pelk-stability';
  readonly date: string;
  readonly backend: string;
  readonly quick: boolean;
  /** The largest iteration cap of any run (each run's own is `runs[].maxIterations`: T + 1, see {@link stoppingRule}). */
  readonly maxIterations: number;
  readonly tolerance: number;
  /** The one stopping rule behind every iteration count of the report, in words. */
  readonly stoppingRule?: string;
  /** The sets that ran. */
  readonly sets?: StabilitySet[];
  /** Every problem that ran, tuning ones first. */
  readonly problems?: StabilityProblem[];
  readonly runs: StabilityRun[];
  /** Per swept problem and ELK variant: the best fixed σ² and how adaptive damping compares. */
  readonly summary: StabilitySummary[];
  /** The targets, per set, computed from the runs. */
  readonly targets?: StabilityTarget[];
}

/** The targets' bounds. */
export const STABILITY_TARGETS = {
  /** (a) ELK adaptive / DEER and quasi-ELK adaptive / quasi-DEER iterations, where the DEER variant converged clean. */
  adaptiveVsDeer: 1.25,
  /** (d) adaptive / best fixed σ² iterations, where σ² was swept. */
  adaptiveVsBestFixed: 1.3,
} as const;

/** Cap of the fixed-σ² runs on held-out problems (they also stop at the best count found so far). */
export const HELD_OUT_SWEEP_CAP = 3000;

/** Seed of the held-out RNNs' inputs (`randomInputs(1, T, I, seed)`). */
export const RNN_INPUT_SEED = 7;

/**
 * The suite's one stopping rule, in words: every column (DEER, quasi-DEER, ELK and quasi-ELK, fixed
 * and adaptive σ²) counts the iterations to `evaluate`'s certificate at the same tolerance.
 */
export function stoppingRule(tolerance: number): string {
  return (
    `iterations until evaluate() certifies convergence (result.converged: the returned trajectory's true residual ` +
    `max_t ‖s_t − f(s_{t−1})‖∞ ≤ ${tolerance} in float64, no value clipped or reset), every method, zero initial guess, ` +
    `cap T + 1 (fixed σ² on held-out problems: from the largest σ² down, each capped at ${HELD_OUT_SWEEP_CAP} and at the best count so far)`
  );
}

const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const DEFAULT_FIXTURE = join(REPO_ROOT, '..', 'shared', 'fixtures', 'argru-sine-trained.json');
const LORENZ_FIXTURE = join(REPO_ROOT, 'packages', 'conformance', 'fixtures', 'lorenz96-small.json');
/** The repository's own AR-GRU (`pnpm pelk train ar-sine`). */
const PELK_ARGRU_FIXTURE = join(REPO_ROOT, 'packages', 'conformance', 'fixtures', 'argru-sine-pelk.json');

/** Gains g of the held-out RNNs: contractive, hot (the issue's hot GRU: DEER in ~6 iterations), past the edge. */
const GAINS = { contractive: 0.5, hot: 2.5, edge: 5 } as const;

/**
 * The default problem list. Sizes keep the full suite at about 20–25 minutes on a 2-core CPU in
 * float64: T = 3,000 for the contractive and hot RNNs (D = 24), T = 500 past the edge (where every
 * method may need ~T iterations, and dense ELK costs O(T·D³) per iteration), Lorenz-96 at
 * T = 1,500 / 1,000 / 500 for D = 5 / 8 / 16. Quick: the tuning problems (Lorenz-96 at T = 400) and
 * eight held-out ones, the hot GRU at T = 3,000 and the others at T ≤ 500.
 */
export function stabilityProblems(quick: boolean): StabilityProblemSpec[] {
  const tuningState = readModelSpec(JSON.parse(readFileSync(LORENZ_FIXTURE, 'utf8'))).initialState ?? [8, 8, 8, 8, 8.01];
  const tuning: StabilityProblemSpec[] = [
    { kind: 'argru', model: 'authors', set: 'tuning', steps: 2000, sweep: true },
    { kind: 'lorenz96', set: 'tuning', dimension: 5, forcing: 8, steps: quick ? 400 : 1000, initialState: tuningState, sweep: true },
  ];
  const rnn = (kind: RnnProblemSpec['kind'], gain: number, steps: number): RnnProblemSpec => ({
    kind,
    set: 'held-out',
    // The LSTM's state is [h, c]: H = 12 gives the same D = 24 as the others.
    hiddenSize: kind === 'lstm' ? 12 : 24,
    inputSize: 4,
    gain,
    seed: 1,
    steps,
  });
  const l96 = (dimension: number, forcing: number, steps: number): Lorenz96ProblemSpec => ({ kind: 'lorenz96', set: 'held-out', dimension, forcing, steps });
  // The repository's own AR-GRU: always present, and held out (the damping was tuned on the authors').
  const own: ArgruProblemSpec = { kind: 'argru', model: 'pelk', set: 'held-out', steps: 2000, sweep: true };
  if (quick) {
    return [
      ...tuning,
      own,
      rnn('gru', GAINS.contractive, 500),
      // The issue's hot GRU at its own size: DEER converges in a handful of iterations.
      rnn('gru', GAINS.hot, 3000),
      rnn('gru', GAINS.edge, 300),
      rnn('lstm', GAINS.hot, 500),
      rnn('elman', GAINS.contractive, 500),
      rnn('elman', GAINS.edge, 200),
      l96(8, 2, 300),
      l96(8, 8, 300),
    ];
  }
  const rnns = (['gru', 'lstm', 'elman'] as const).flatMap((kind) => [rnn(kind, GAINS.contractive, 3000), rnn(kind, GAINS.hot, 3000), rnn(kind, GAINS.edge, 500)]);
  // D = 5, F = 8 is the tuning problem's system; held out here with another initial state and T.
  const lorenz = [l96(5, 2, 1500), l96(5, 8, 1500), l96(8, 2, 1000), l96(8, 8, 1000), l96(16, 2, 500), l96(16, 8, 500)];
  return [...tuning, own, ...rnns, ...lorenz, { kind: 'argru', model: 'authors', set: 'held-out', steps: 10_000, driversSeed: 2024, sweep: true }];
}

/** A problem's name in the JSON, the tables and the plot files, e.g. `gru-H24-g2.5-T3000`. */
export function stabilityProblemName(p: StabilityProblemSpec): string {
  if (p.kind === 'argru') return `argru${p.model === 'pelk' ? '-pelk' : ''}-T${p.steps}`;
  if (p.kind === 'lorenz96') return `lorenz96-D${p.dimension}-F${p.forcing}-T${p.steps}`;
  return `${p.kind}-H${p.hiddenSize}-g${p.gain}-T${p.steps}`;
}

function regimeOf(p: StabilityProblemSpec): StabilityRegime {
  if (p.kind === 'argru') return 'trained';
  if (p.kind === 'lorenz96') return p.forcing >= 8 ? 'chaotic' : p.forcing <= 2 ? 'weakly forced' : 'unclassified';
  return p.gain <= 1 ? 'contractive' : p.gain < 4 ? 'hot' : 'past the edge';
}

/** A problem ready to run: its cell, drivers and initial state. */
interface LoadedProblem {
  readonly info: Omit<StabilityProblem, 'lyapunov' | 'lyapunovFrom'>;
  readonly cell: Cell;
  readonly inputs: ShapedArray | number[][] | null;
  readonly initialState: number[];
  /** The fixture's reference states, where there are some (else the sequential run is the oracle). */
  readonly reference?: Float64Array;
}

function loadProblem(p: StabilityProblemSpec, fixture: string): LoadedProblem | string {
  const name = stabilityProblemName(p);
  const regime = regimeOf(p);
  const common = {
    name,
    set: p.set,
    kind: p.kind,
    regime,
    steps: p.steps,
    maxIterations: p.steps + 1,
    swept: Boolean(p.sweep),
    ...(regime === 'chaotic' ? { expectedLyapunov: 'positive' as const } : regime === 'contractive' ? { expectedLyapunov: 'negative' as const } : {}),
  };
  if (p.kind === 'argru') {
    const path = p.model === 'pelk' ? PELK_ARGRU_FIXTURE : fixture;
    if (!existsSync(path)) return `${path} not found — the ELK authors' trained AR-GRU is not in the repository (give it with --fixture); skipping ${name}`;
    const spec = readModelSpec(JSON.parse(readFileSync(path, 'utf8')));
    const own = p.driversSeed === undefined;
    if (own && p.steps !== spec.steps) return `${name}: the fixture's drivers are ${spec.steps} steps long; give driversSeed for T = ${p.steps}`;
    return {
      info: {
        ...common,
        description: `${p.model === 'pelk' ? "AR-GRU trained by pelk (pnpm pelk train ar-sine)" : "trained AR-GRU (ELK paper, the authors' weights)"}, D = ${spec.cell.stateSize}, ${own ? "the fixture's drivers" : `standard-normal drivers (seed ${p.driversSeed})`}`,
        stateSize: spec.cell.stateSize,
      },
      cell: spec.cell,
      // Standard-normal drivers from a fixed seed for other lengths, the sequential answer as oracle.
      inputs: own ? spec.inputs : randomInputs(1, p.steps, 1, p.driversSeed!),
      initialState: spec.initialState ?? [],
      reference: own ? Float64Array.from(spec.states!.flat()) : undefined,
    };
  }
  if (p.kind === 'lorenz96') {
    const F = p.forcing;
    const cell = lorenz96({ dimension: p.dimension, forcing: F, dt: 0.01, integrator: 'rk4' });
    const initialState = p.initialState ? [...p.initialState] : Array.from({ length: p.dimension }, (_, i) => (i === p.dimension - 1 ? F + 0.01 : F));
    return {
      info: {
        ...common,
        description: `Lorenz-96, D = ${p.dimension}, F = ${F}, RK4 dt = 0.01, s_0 = ${p.initialState ? `[${p.initialState.map((x) => x.toFixed(2)).join(', ')}]` : '[F, …, F, F + 0.01]'}`,
        stateSize: p.dimension,
        forcing: F,
      },
      cell,
      inputs: null,
      initialState,
    };
  }
  const H = p.hiddenSize;
  const options = { inputSize: p.inputSize, hiddenSize: H, seed: p.seed, scale: p.gain / Math.sqrt(H) };
  const cell = p.kind === 'gru' ? gru.random(options) : p.kind === 'lstm' ? lstm.random(options) : elman.random({ ...options, nonlinearity: 'tanh' });
  const label = { gru: 'GRU', lstm: 'LSTM', elman: 'Elman (tanh)' }[p.kind];
  return {
    info: {
      ...common,
      description: `random ${label}, H = ${H}, I = ${p.inputSize}, g = ${p.gain} (weights ±g/√H, seed ${p.seed}), inputs N(0, 1) seed ${RNN_INPUT_SEED}`,
      stateSize: cell.stateSize,
      gain: p.gain,
    },
    cell,
    inputs: randomInputs(1, p.steps, p.inputSize, RNN_INPUT_SEED),
    initialState: [],
  };
}

/** Reads `diagnostics.lyapunov` defensively: older cores report none, and its shape may grow. */
function readLyapunov(diagnostics: unknown): StabilityLyapunov | undefined {
  const l = (diagnostics as { lyapunov?: unknown } | undefined)?.lyapunov as Record<string, unknown> | undefined;
  if (!l || typeof l !== 'object' || typeof l.exponent !== 'number') return undefined;
  const finite = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : null);
  return {
    exponent: finite(l.exponent),
    standardError: finite(l.standardError),
    ...(typeof l.steps === 'number' ? { steps: l.steps } : {}),
    ...(typeof l.jacobian === 'string' ? { jacobian: l.jacobian } : {}),
    ...(typeof l.verdict === 'string' ? { verdict: l.verdict } : {}),
    ...(typeof l.reading === 'string' ? { reading: l.reading } : {}),
  };
}

/** A run's configuration. */
interface RunConfig {
  readonly method: Method;
  readonly kalman?: KalmanMode;
  readonly sigmaSq?: number | 'adaptive';
}

/** `elk filter σ²=100`, `deer`: a run's name in logs, tables and plots. */
export function runName(r: RunConfig): string {
  if (!r.kalman) return r.method;
  return `${r.method} ${r.kalman} ${r.sigmaSq === 'adaptive' ? 'adaptive' : `σ²=${r.sigmaSq}`}`;
}

/** The method runs on every problem: the five the targets are about; tuning problems add the smoother. */
function methodRuns(set: StabilitySet): RunConfig[] {
  const runs: RunConfig[] = [
    { method: 'sequential' },
    { method: 'deer' },
    { method: 'quasi-deer' },
    { method: 'elk', kalman: 'filter', sigmaSq: 'adaptive' },
    { method: 'quasi-elk', kalman: 'filter', sigmaSq: 'adaptive' },
  ];
  if (set === 'tuning') runs.push({ method: 'elk', kalman: 'smoother', sigmaSq: 'adaptive' }, { method: 'quasi-elk', kalman: 'smoother', sigmaSq: 'adaptive' });
  return runs;
}

/**
 * Runs the suite and returns its report; {@link stabilityFiles} gives its JSON, its text and its
 * plots (residual vs iteration per problem, iterations vs σ² per swept problem, an overview per set).
 *
 * @example
 * ```ts
 * const report = await runStability({ backend: 'cpu', quick: true, set: 'held-out' });
 * ```
 */
export async function runStability(o: StabilityOptions): Promise<StabilityReport> {
  const backend = await createBackend(o.backend);
  const log = (line: string) => {
    if (!o.quiet) process.stderr.write(`${line}\n`);
  };
  const tolerance = 1e-9;
  const sweep = o.sweep ?? (o.quick ? [10, 1e2, 1e4, 1e6] : [1, 10, 1e2, 1e3, 1e4, 1e6]);
  const budgetMs = (o.runBudgetSeconds ?? (o.quick ? 120 : 600)) * 1000;
  const sets = o.set === undefined || o.set === 'all' ? [...STABILITY_SETS] : [o.set];
  const specs = (o.problems ?? stabilityProblems(o.quick)).filter((p) => sets.includes(p.set));
  const runs: StabilityRun[] = [];
  const problems: StabilityProblem[] = [];
  for (const set of sets) {
    for (const spec of specs.filter((p) => p.set === set)) {
      const loaded = loadProblem(spec, o.fixture ?? DEFAULT_FIXTURE);
      if (typeof loaded === 'string') {
        log(`stability: ${loaded}`);
        continue;
      }
      const p = loaded.info;
      log(`stability: [${set}] ${p.name}: ${p.description}, T = ${p.steps}, cap ${p.maxIterations}`);
      const mine: StabilityRun[] = [];
      let oracle = loaded.reference;
      const solve = async (c: RunConfig, cap: number) => {
        const { run, states } = await solveOnce(backend, loaded, c, { cap, tolerance, budgetMs, quiet: o.quiet, oracle });
        mine.push(run);
        runs.push(run);
        log(`${p.name} ${runName(c)}: ${describeRun(run)}`);
        // Without reference states, the sequential run (the first) is the oracle of the others.
        if (c.method === 'sequential' && !oracle) oracle = states;
        return run;
      };
      for (const c of methodRuns(set)) await solve(c, p.maxIterations);
      if (spec.sweep) {
        for (const method of ['elk', 'quasi-elk'] as const) {
          if (set === 'tuning') {
            // The whole curve, for the iterations-vs-σ² plot.
            for (const sigmaSq of sweep) await solve({ method, kalman: 'filter', sigmaSq }, p.maxIterations);
          } else {
            // Only the best fixed σ² matters here (target (d)): from the least damping down, each run
            // capped at the best count so far.
            let best = Math.min(p.maxIterations, HELD_OUT_SWEEP_CAP);
            for (const sigmaSq of [...sweep].sort((a, b) => b - a)) {
              const r = await solve({ method, kalman: 'filter', sigmaSq }, best);
              if (r.converged) best = Math.min(best, r.iterations);
            }
          }
        }
      }
      problems.push({ ...p, ...pickLyapunov(mine) });
    }
  }
  const summary = summarize(runs, problems);
  return {
    kind: 'pelk-stability',
    date: new Date().toISOString(),
    backend: `${backend.name} (${backend.capabilities.device})`,
    quick: o.quick,
    maxIterations: Math.max(0, ...runs.map((r) => r.maxIterations ?? 0)),
    tolerance,
    stoppingRule: stoppingRule(tolerance),
    sets,
    problems,
    runs,
    summary,
    targets: stabilityTargets(problems, runs, summary),
  };
}

/** One solver run (stopped by the time budget if need be) and its states. */
async function solveOnce(
  backend: ComputeBackend,
  p: LoadedProblem,
  c: RunConfig,
  o: { cap: number; tolerance: number; budgetMs: number; quiet?: boolean; oracle?: Float64Array },
): Promise<{ run: StabilityRun; states?: Float64Array }> {
  const label = `${p.info.name} ${runName(c)}`;
  const progress = new ProgressLine(label, o.quiet);
  const seen: number[] = [];
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), o.budgetMs);
  const started = performance.now();
  let r: EvaluateResult | undefined;
  try {
    r = await evaluate(p.cell, p.inputs, {
      backend,
      method: c.method,
      kalman: c.kalman,
      sigmaSq: c.sigmaSq,
      initialState: p.initialState.length ? p.initialState : undefined,
      steps: p.cell.inputSize ? undefined : p.info.steps,
      tolerance: o.tolerance,
      ...(c.method === 'sequential' ? {} : { maxIterations: o.cap }),
      signal: abort.signal,
      onIteration: (info) => {
        if (c.method !== 'sequential') seen.push(info.residual);
        if (c.method === 'sequential' || info.iteration % 50 === 0) progress.update(0, 1, info);
      },
    });
  } catch (err) {
    if (!(err instanceof AbortError)) throw err;
  } finally {
    clearTimeout(timer);
    progress.done();
  }
  const ms = Math.round(performance.now() - started);
  const base = { problem: p.info.name, set: p.info.set, method: c.method, kalman: c.kalman, sigmaSq: c.sigmaSq, maxIterations: c.method === 'sequential' ? 1 : o.cap, ms };
  if (!r) {
    return { run: { ...base, iterations: seen.length, converged: false, reason: 'time-budget', residual: seen.at(-1) ?? Number.NaN, error: Number.NaN, residuals: seen } };
  }
  const states = Float64Array.from(await r.read());
  const lyapunov = readLyapunov(r.diagnostics);
  const run: StabilityRun = {
    ...base,
    iterations: r.iterations,
    converged: r.converged,
    reason: r.reason,
    residual: r.residual,
    // The sequential run is the oracle where there are no reference states; without either, no error.
    error: o.oracle ? maxAbsDiff(states, o.oracle) : c.method === 'sequential' ? 0 : Number.NaN,
    nonFiniteResets: r.diagnostics.nonFiniteResets,
    clippedValues: r.diagnostics.clippedValues,
    ...(lyapunov ? { lyapunov } : {}),
    residuals: c.method === 'sequential' ? [] : r.history.map((h) => h.residual),
  };
  r.dispose();
  backend.trim?.();
  return { run, states };
}

/** The problem's Lyapunov estimate: from the first converged run computed on dense Jacobians, else any converged run, else any. */
function pickLyapunov(runs: readonly StabilityRun[]): Pick<StabilityProblem, 'lyapunov' | 'lyapunovFrom'> {
  const carrying = runs.filter((r) => r.lyapunov);
  const from =
    carrying.find((r) => r.converged && r.lyapunov!.jacobian === 'dense') ?? carrying.find((r) => r.converged) ?? carrying[0];
  return from ? { lyapunov: from.lyapunov!, lyapunovFrom: runName(from) } : { lyapunov: null };
}

/** One line per run for the log. */
function describeRun(r: StabilityRun): string {
  const status = r.converged ? 'converged' : `NOT converged (${r.reason})`;
  const dirty = (r.clippedValues ?? 0) + (r.nonFiniteResets ?? 0) > 0 ? `, ${r.clippedValues} clipped / ${r.nonFiniteResets} reset on the way` : '';
  return `${r.iterations} iterations, ${status}, residual ${(r.residual ?? Number.NaN).toExponential(1)}${dirty}, ${r.ms} ms`;
}

function summarize(runs: StabilityRun[], problems: readonly StabilityProblem[]): StabilitySummary[] {
  const out: StabilitySummary[] = [];
  for (const p of problems.filter((q) => q.swept)) {
    for (const method of ['elk', 'quasi-elk'] as const) {
      for (const kalman of ['filter', 'smoother'] as const) {
        const mine = runs.filter((r) => r.problem === p.name && r.method === method && r.kalman === kalman);
        if (mine.length === 0) continue;
        const fixed = mine.filter((r) => typeof r.sigmaSq === 'number' && r.converged).sort((a, b) => a.iterations - b.iterations);
        const adaptive = mine.find((r) => r.sigmaSq === 'adaptive');
        const best = fixed[0];
        const adaptiveIterations = adaptive?.converged ? adaptive.iterations : null;
        out.push({
          problem: p.name,
          set: p.set,
          method,
          kalman,
          bestSigmaSq: best ? (best.sigmaSq as number) : null,
          bestIterations: best ? best.iterations : null,
          adaptiveIterations,
          ratio: best && adaptiveIterations !== null ? round2(adaptiveIterations / best.iterations) : null,
        });
      }
    }
  }
  return out;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/** Converged with no value clipped or reset along the way ("clean"). */
function clean(r: StabilityRun | undefined): boolean {
  return Boolean(r?.converged && r.nonFiniteResets === 0 && r.clippedValues === 0);
}

/** false if any check fails, else true if any was judged, else null. */
function overall(checks: readonly StabilityTargetCheck[]): boolean | null {
  if (checks.some((c) => c.met === false)) return false;
  return checks.some((c) => c.met === true) ? true : null;
}

/**
 * The targets, per set: (a) ELK adaptive / DEER and quasi-ELK adaptive / quasi-DEER iterations
 * ≤ 1.25 where the DEER variant converged clean; (b) every method (Kalman filter) converged within
 * T + 1; (c) the Lyapunov exponent > 0 on chaotic Lorenz-96 and < 0 on contractive RNNs;
 * (d) adaptive / best fixed σ² ≤ 1.3 where σ² was swept.
 */
export function stabilityTargets(problems: readonly StabilityProblem[], runs: readonly StabilityRun[], summary: readonly StabilitySummary[]): StabilityTarget[] {
  const out: StabilityTarget[] = [];
  const find = (problem: string, c: RunConfig) => runs.find((r) => r.problem === problem && r.method === c.method && r.kalman === c.kalman && r.sigmaSq === c.sigmaSq);
  for (const set of STABILITY_SETS) {
    const mine = problems.filter((p) => p.set === set);
    if (mine.length === 0) continue;
    for (const [id, dense, damped] of [
      ['a', 'deer', 'elk'],
      ['a-quasi', 'quasi-deer', 'quasi-elk'],
    ] as const) {
      const checks: StabilityTargetCheck[] = [];
      for (const p of mine) {
        const reference = find(p.name, { method: dense });
        if (!clean(reference)) continue;
        const adaptive = find(p.name, { method: damped, kalman: 'filter', sigmaSq: 'adaptive' });
        if (!adaptive?.converged) {
          checks.push({ problem: p.name, detail: `${damped} ${adaptive ? notConverged(adaptive) : 'not run'}, ${dense} ${reference!.iterations}`, value: null, met: false });
          continue;
        }
        const ratio = round2(adaptive.iterations / reference!.iterations);
        checks.push({ problem: p.name, detail: `${damped} ${adaptive.iterations} / ${dense} ${reference!.iterations} = ${ratio}`, value: ratio, met: ratio <= STABILITY_TARGETS.adaptiveVsDeer });
      }
      out.push({ id, set, target: `${damped} adaptive / ${dense} iterations ≤ ${STABILITY_TARGETS.adaptiveVsDeer} where ${dense} converged clean (nothing clipped or reset)`, met: overall(checks), checks });
    }
    const targeted = runs.filter((r) => r.set === set && r.kalman !== 'smoother' && (r.sigmaSq === undefined || r.sigmaSq === 'adaptive'));
    const failures = targeted
      .filter((r) => !r.converged || r.iterations > problemOf(mine, r).steps + 1)
      .map((r) => ({
        problem: r.problem,
        detail: `${runName(r)}: ${r.converged ? `${r.iterations} iterations > T + 1` : notConverged(r)}`,
        value: r.converged ? r.iterations : null,
        met: false,
      }));
    out.push({ id: 'b', set, target: 'every method (sequential, deer, quasi-deer, elk and quasi-elk adaptive with the Kalman filter) converged within T + 1 iterations', met: targeted.length ? failures.length === 0 : null, checks: failures, checked: targeted.length });
    const signs: StabilityTargetCheck[] = mine
      .filter((p) => p.expectedLyapunov)
      .map((p) => {
        const want = p.expectedLyapunov === 'positive' ? '> 0' : '< 0';
        const x = p.lyapunov?.exponent ?? null;
        if (x === null) return { problem: p.name, detail: `no estimate (expected ${want})`, value: null, met: null };
        return { problem: p.name, detail: `${formatLyapunov(p.lyapunov)} (expected ${want}, ${p.regime})`, value: x, met: p.expectedLyapunov === 'positive' ? x > 0 : x < 0 };
      });
    out.push({ id: 'c', set, target: 'Lyapunov exponent > 0 on chaotic Lorenz-96 (F ≥ 8), < 0 on contractive RNNs (g ≤ 1)', met: overall(signs), checks: signs });
    const ratios: StabilityTargetCheck[] = summary
      .filter((s) => s.set === set && s.kalman === 'filter')
      .map((s) => {
        const adaptive = find(s.problem, { method: s.method, kalman: 'filter', sigmaSq: 'adaptive' });
        if (s.adaptiveIterations === null) return { problem: s.problem, detail: `${s.method} adaptive ${notConverged(adaptive)}`, value: null, met: false };
        if (s.ratio === null) return { problem: s.problem, detail: `${s.method} adaptive ${s.adaptiveIterations}; no fixed σ² converged within its cap`, value: null, met: null };
        return { problem: s.problem, detail: `${s.method} adaptive ${s.adaptiveIterations} / σ²=${s.bestSigmaSq} ${s.bestIterations} = ${s.ratio}`, value: s.ratio, met: s.ratio <= STABILITY_TARGETS.adaptiveVsBestFixed };
      });
    out.push({ id: 'd', set, target: `adaptive / best fixed σ² iterations ≤ ${STABILITY_TARGETS.adaptiveVsBestFixed} where σ² was swept (Kalman filter)`, met: overall(ratios), checks: ratios });
  }
  return out;
}

function problemOf(problems: readonly StabilityProblem[], r: StabilityRun): StabilityProblem {
  return problems.find((p) => p.name === r.problem)!;
}

/** The suite's files: JSON, text, an overview per set, and per problem the residual (and, where swept, σ²) plots. */
export function stabilityFiles(report: StabilityReport): Record<string, string> {
  const files: Record<string, string> = { 'stability.json': `${JSON.stringify(report, null, 1)}\n`, 'stability.txt': `${formatStability(report)}\n` };
  const problems = problemsOf(report);
  for (const set of STABILITY_SETS) {
    const mine = problems.filter((p) => p.set === set);
    if (mine.length) files[`stability-overview-${set}.svg`] = stabilityOverviewPlot(set, mine, report.runs);
  }
  for (const p of problems) {
    const runs = report.runs.filter((r) => r.problem === p.name);
    files[`stability-${p.set}-${p.name}.svg`] = residualPlot(p.name, runs, report.summary, report.tolerance, p.set);
    const fixed = runs.filter((r) => typeof r.sigmaSq === 'number');
    if (fixed.length) {
      const cap = Math.max(...fixed.map((r) => r.maxIterations ?? p.maxIterations));
      files[`stability-sweep-${p.set}-${p.name}.svg`] = iterationsVsSigmaPlot(p.name, runs, cap, report.tolerance, p.set);
    }
  }
  return files;
}

/** The report's problems; for reports written before they were recorded, one per problem of the runs. */
function problemsOf(report: StabilityReport): StabilityProblem[] {
  if (report.problems) return report.problems;
  return [...new Set(report.runs.map((r) => r.problem))].map((name) => {
    const set = report.runs.find((r) => r.problem === name)?.set ?? 'tuning';
    return { name, set, kind: 'argru', regime: 'unclassified', description: name, steps: report.maxIterations - 1, stateSize: 0, maxIterations: report.maxIterations, swept: true, lyapunov: null };
  });
}

const SET_TITLES: Record<StabilitySet, string> = {
  tuning: 'Tuning problems (ADAPTIVE_DAMPING was chosen on these)',
  'held-out': 'Held-out problems (not used in tuning)',
};

/** The report as text: per set, a table of iterations per method and problem and the σ² sweep summary; then the targets. */
export function formatStability(report: StabilityReport): string {
  const problems = problemsOf(report);
  const lines = [`Stopping rule (every column): ${report.stoppingRule ?? stoppingRule(report.tolerance)}.`];
  for (const set of STABILITY_SETS) {
    const mine = problems.filter((p) => p.set === set);
    if (mine.length === 0) continue;
    lines.push('', `${SET_TITLES[set]}:`, '', overviewTable(mine, report.runs));
    const sweeps = report.summary.filter((s) => mine.some((p) => p.name === s.problem));
    if (sweeps.length) lines.push('', sweepTable(sweeps, report.runs));
  }
  if (report.runs.some((r) => r.converged && (r.clippedValues ?? 0) + (r.nonFiniteResets ?? 0) > 0)) {
    lines.push('', '† converged, but values were clipped or reset along the way (not "clean").');
  }
  if (report.targets?.length) lines.push('', formatTargets(report.targets));
  return lines.join('\n');
}

/** Iterations per method (columns) and problem (rows), with the Lyapunov estimate. */
function overviewTable(problems: readonly StabilityProblem[], runs: readonly StabilityRun[]): string {
  const all: RunConfig[] = [
    { method: 'deer' },
    { method: 'quasi-deer' },
    { method: 'elk', kalman: 'filter', sigmaSq: 'adaptive' },
    { method: 'quasi-elk', kalman: 'filter', sigmaSq: 'adaptive' },
    { method: 'elk', kalman: 'smoother', sigmaSq: 'adaptive' },
    { method: 'quasi-elk', kalman: 'smoother', sigmaSq: 'adaptive' },
  ];
  const columns = all.filter((c) => runs.some((r) => problems.some((p) => p.name === r.problem) && r.method === c.method && r.kalman === c.kalman && r.sigmaSq === c.sigmaSq));
  const cell = (p: StabilityProblem, c: RunConfig) => {
    const r = runs.find((x) => x.problem === p.name && x.method === c.method && x.kalman === c.kalman && x.sigmaSq === c.sigmaSq);
    if (!r) return '';
    if (!r.converged) return notConverged(r);
    return `${r.iterations}${(r.clippedValues ?? 0) + (r.nonFiniteResets ?? 0) > 0 ? '†' : ''}`;
  };
  const rows = problems.map((p) => [p.name, p.regime, String(p.stateSize), String(p.steps), ...columns.map((c) => cell(p, c)), formatLyapunov(p.lyapunov)]);
  return table(['problem', 'regime', 'D', 'T', ...columns.map((c) => (c.kalman ? `${c.method} ${c.kalman === 'filter' ? '' : 'smoother '}adaptive` : c.method)), 'Lyapunov λ per step'], rows);
}

/** Adaptive against the best fixed σ², per swept problem and ELK variant. */
function sweepTable(summary: readonly StabilitySummary[], runs: readonly StabilityRun[]): string {
  const swept = (s: StabilitySummary) => runs.some((r) => r.problem === s.problem && r.method === s.method && r.kalman === s.kalman && typeof r.sigmaSq === 'number');
  const rows = summary.map((s) => [
    s.problem,
    `${s.method} (${s.kalman})`,
    s.bestSigmaSq === null ? (swept(s) ? 'none converged' : 'not swept') : `σ²=${s.bestSigmaSq}: ${s.bestIterations}`,
    s.adaptiveIterations === null ? notConverged(runs.find((r) => r.problem === s.problem && r.method === s.method && r.kalman === s.kalman && r.sigmaSq === 'adaptive')) : String(s.adaptiveIterations),
    s.ratio === null ? '—' : `${s.ratio}×`,
  ]);
  return table(['problem', 'method', 'best fixed σ² (iterations)', 'adaptive', 'adaptive / best'], rows);
}

const TARGET_LABELS: Record<StabilityTarget['id'], string> = { a: '(a)', 'a-quasi': '(a)', b: '(b)', c: '(c)', d: '(d)' };

function verdict(met: boolean | null): string {
  return met === null ? 'n/a' : met ? 'met' : 'NOT met';
}

/** The targets section: per set, one line per target (met / NOT met / n/a) and one per check with its numbers. */
export function formatTargets(targets: readonly StabilityTarget[]): string {
  const lines = ['Targets (computed from the runs above):'];
  for (const set of STABILITY_SETS) {
    const mine = targets.filter((t) => t.set === set);
    if (mine.length === 0) continue;
    lines.push(`  ${set} problems:`);
    for (const t of mine) {
      const scope =
        t.id === 'b'
          ? ` — ${t.checks.length} of ${t.checked ?? 0} runs failed`
          : t.checks.length === 0
            ? ' — applies to no problem here'
            : '';
      lines.push(`    ${TARGET_LABELS[t.id]} ${t.target}: ${verdict(t.met)}${scope}`);
      const width = Math.max(0, ...t.checks.map((c) => c.problem.length));
      for (const c of t.checks) lines.push(`          ${c.problem.padEnd(width)}  ${c.detail}  ${verdict(c.met)}`);
    }
  }
  return lines.join('\n');
}

/** `+0.91 ± 0.02 (unpredictable)`, or `—` without an estimate. */
function formatLyapunov(l: StabilityLyapunov | null | undefined): string {
  if (!l || l.exponent === null) return '—';
  const x = `${l.exponent >= 0 ? '+' : '−'}${Math.abs(l.exponent).toPrecision(2)}`;
  const se = l.standardError === null ? '' : ` ± ${l.standardError.toPrecision(1)}`;
  return `${x}${se}${l.verdict ? ` (${l.verdict})` : ''}`;
}

/** `NOT converged (max-iterations, 1000)`: why a run has no certificate, and after how many iterations. */
function notConverged(r: StabilityRun | undefined): string {
  if (!r) return 'NOT converged';
  if (r.converged) return `${r.iterations} iterations`;
  return `NOT converged (${r.reason ? `${r.reason}, ` : ''}${r.iterations})`;
}

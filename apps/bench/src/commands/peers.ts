/**
 * `pelk bench --suite peers`: pelk against the recurrent layers JavaScript users run today —
 * `tf.layers.gru` from TensorFlow.js — with the same weights and inputs (the layer's weights are
 * imported with `gru.keras`), on the same tfjs backend: for each of tfjs `wasm` and `cpu`,
 * tf.layers.gru against pelk's sequential, quasi-DEER and DEER on `@pelk/backend-tfjs-node` with that
 * tfjs backend, plus pelk on its CPU backend for reference; the trajectories are checked to agree.
 * It also splits one quasi-DEER and one DEER iteration on each tfjs backend into its parts (cell,
 * Jacobian, scan). TensorFlow.js is loaded only when this suite runs.
 */
import type { BoundCell, ComputeBackend, Method, ShapedArray } from '@pelk/core';
import { gru } from '@pelk/models';
import { createBackend } from '../backends.js';
import { randomInputs } from '../data.js';
import { type Measurement, maxAbsDiff, measure, median, table } from '../harness.js';
import { type MachineDescription, machineDescription } from '../machine.js';
import { barsPlot } from '../plots.js';

/** Options of {@link runPeers}. */
export interface PeersOptions {
  readonly quick: boolean;
  readonly quiet?: boolean;
  /** Sequence lengths; default [200] (quick) or [1,000, 10,000]. */
  readonly steps?: readonly number[];
  /** tfjs backends to compare on; default ['wasm', 'cpu']. */
  readonly tfjsBackends?: readonly ('wasm' | 'cpu')[];
  /** pelk methods on the tfjs backends; default sequential, quasi-deer, deer. */
  readonly methods?: readonly Method[];
}

/** One implementation's timing. */
export interface PeerResult {
  /** e.g. `tf.layers.gru`, `pelk quasi-deer` or `pelk sequential (pelk cpu backend)`. */
  readonly implementation: string;
  /** The tfjs backend it ran on (`wasm`, `cpu`), or `pelk-cpu` for pelk's own CPU backend. */
  readonly on: string;
  readonly T: number;
  readonly D: number;
  readonly medianMs: number;
  readonly runs: number;
  readonly usPerStep: number;
  /** Solver iterations (pelk's parallel methods). */
  readonly iterations?: number;
  /** `max |states − tf.layers.gru states|` (float32). */
  readonly maxAbsDiffVsLayer: number;
  /** How many times faster than `tf.layers.gru` on the same tfjs backend and T (pelk-cpu rows: see `versus`). */
  speedupVsLayer?: number;
  /** pelk-cpu rows: the tfjs backend of the layer they are compared with (wasm when it ran). */
  versus?: string;
  /** Refusal message when the backend cannot hold the problem, or why the run was skipped. */
  readonly refused?: string;
}

/** Where one solver iteration's time goes on a tfjs backend (ms, medians). */
export interface IterationProfile {
  readonly on: string;
  readonly T: number;
  readonly method: 'quasi-deer' | 'deer';
  /** The cell alone: `f(s_{t−1})` for all t. */
  readonly cellMs: number;
  /** Cell and Jacobian together (`linearize`) minus the cell alone. */
  readonly jacobianMs: number;
  /** The linear-recurrence scan. */
  readonly scanMs: number;
  /** Why the profile could not be taken (e.g. the wasm heap could not hold it). */
  readonly error?: string;
}

/** The JSON the suite writes. */
export interface PeersReport {
  readonly kind: 'pelk-peers';
  readonly date: string;
  readonly machine: MachineDescription;
  readonly tfjsVersion: string;
  readonly results: PeerResult[];
  readonly profiles: IterationProfile[];
}

/** A run predicted (or found) to take longer than this is timed once, without a full-length warm-up. */
const LONG_RUN_MS = 20_000;
/** A pelk run predicted from the previous length to take longer than this is skipped and listed. */
const SKIP_RUN_MS = 300_000;

/**
 * Times tf.layers.gru and pelk on one GRU (D = 64, input 8, float32) on each tfjs backend, after a
 * warm-up, median of the timed runs.
 *
 * @example
 * ```ts
 * const report = await runPeers({ quick: true });
 * ```
 */
export async function runPeers(o: PeersOptions): Promise<PeersReport> {
  const tf = await import('@tensorflow/tfjs');
  await import('@tensorflow/tfjs-backend-wasm');
  const log = (line: string) => {
    if (!o.quiet) process.stderr.write(`${line}\n`);
  };
  const D = 64;
  const I = 8;
  const Ts = o.steps ?? (o.quick ? [200] : [1000, 10_000]);
  const runs = o.quick ? 1 : 3;
  const methods = o.methods ?? (['sequential', 'quasi-deer', 'deer'] as const);
  const results: PeerResult[] = [];
  const profiles: IterationProfile[] = [];
  // Seeded weights (normal, scaled like Glorot initialisation), set on every layer.
  const scaled = (rows: number, cols: number, seed: number, scale: number) => Float32Array.from(randomInputs(1, rows, cols, seed).data, (v) => v * scale);
  const weights = {
    kernel: scaled(I, 3 * D, 11, Math.sqrt(2 / (I + 3 * D))),
    recurrentKernel: scaled(D, 3 * D, 12, Math.sqrt(2 / (4 * D))),
    bias: scaled(1, 3 * D, 13, 0.1),
  };
  // pelk with the layer's weights: tf.layers.gru is Keras' GRU with resetAfter false and hardSigmoid gates.
  const cell = gru.keras({
    kernel: { data: weights.kernel, shape: [I, 3 * D] },
    recurrentKernel: { data: weights.recurrentKernel, shape: [D, 3 * D] },
    bias: { data: weights.bias, shape: [3 * D] },
    resetAfter: false,
    activation: 'tanh',
    recurrentActivation: 'hardSigmoid',
  });

  /** Times tf.layers.gru on the active tfjs backend; returns the median and the states. */
  async function timeLayer(tfBackend: string, T: number, inputs: ShapedArray): Promise<{ ms: number; runs: number; states: Float32Array }> {
    const layer = tf.layers.gru({ units: D, returnSequences: true, inputShape: [null, I], name: `peer_gru_${tfBackend}_${T}` });
    const input = tf.tensor3d(Float32Array.from(inputs.data), [1, T, I]);
    // Builds the layer (and warms tfjs's kernels up) on a short prefix.
    const warm = tf.slice(input, [0, 0, 0], [1, Math.min(T, 50), I]);
    tf.dispose([layer.apply(warm) as import('@tensorflow/tfjs').Tensor, warm]);
    const w = [tf.tensor2d(weights.kernel, [I, 3 * D]), tf.tensor2d(weights.recurrentKernel, [D, 3 * D]), tf.tensor1d(weights.bias)];
    layer.setWeights(w);
    tf.dispose(w);
    const times: number[] = [];
    let states: Float32Array = new Float32Array(0);
    for (let run = 0; run < 1 + runs; run++) {
      const t0 = performance.now();
      const y = layer.apply(input) as import('@tensorflow/tfjs').Tensor;
      states = (await y.data()) as Float32Array;
      const ms = performance.now() - t0;
      y.dispose();
      // The first full run is a warm-up, unless it is long: then it is the one measurement.
      if (run > 0 || ms > LONG_RUN_MS) times.push(ms);
      if (ms > LONG_RUN_MS) break;
    }
    input.dispose();
    layer.dispose();
    tf.disposeVariables(); // variable names are global in tfjs: free them before the next layer
    return { ms: median(times), runs: times.length, states };
  }

  let cpuBackend: ComputeBackend | undefined;
  const msPerStep = new Map<string, number>();
  for (const T of Ts) {
    const inputs = randomInputs(1, T, I, 7) as ShapedArray & { data: Float64Array };
    // pelk's CPU-backend rows are compared with the wasm layer, or the cpu one when wasm is not run.
    let referenceLayer: { ms: number; on: string } | undefined;
    let reference: Float32Array | undefined;
    for (const tfBackend of o.tfjsBackends ?? (['wasm', 'cpu'] as const)) {
      // Creating pelk's backend selects the tfjs backend for the layer too (one active tfjs backend).
      const backend = await createBackend(`tfjs:${tfBackend}`);
      const layer = await timeLayer(tfBackend, T, inputs);
      reference ??= layer.states;
      if (!referenceLayer || tfBackend === 'wasm') referenceLayer = { ms: layer.ms, on: tfBackend };
      results.push({
        implementation: 'tf.layers.gru',
        on: tfBackend,
        T,
        D,
        medianMs: layer.ms,
        runs: layer.runs,
        usPerStep: (layer.ms * 1000) / T,
        maxAbsDiffVsLayer: maxAbsDiff(layer.states, reference),
        speedupVsLayer: 1,
      });
      log(`T=${T} tf.layers.gru on tfjs ${tfBackend}: ${(layer.ms / 1000).toFixed(2)} s`);
      if (T === Ts[Ts.length - 1]) {
        // Profiled before the long runs, while the wasm heap is not yet fragmented by them.
        for (const method of ['quasi-deer', 'deer'] as const) {
          // Profiling takes about three runs' worth of iterations: skip it where the run itself is skipped.
          const predicted = (msPerStep.get(`${tfBackend}/${method}`) ?? 0) * T;
          if (!methods.includes(method) || predicted > SKIP_RUN_MS) continue;
          try {
            profiles.push(await profileIteration(backend, cell, inputs, method, tfBackend));
          } catch (err) {
            profiles.push({ on: tfBackend, T, method, cellMs: Number.NaN, jacobianMs: Number.NaN, scanMs: Number.NaN, error: (err as Error).message });
            log(`T=${T} profile of ${method} on tfjs ${tfBackend} failed: ${(err as Error).message}`);
          }
        }
      }
      for (const method of methods) {
        // Predicted from the previous length (time grows linearly in T for every method).
        const predicted = (msPerStep.get(`${tfBackend}/${method}`) ?? 0) * T;
        if (predicted > SKIP_RUN_MS) {
          results.push({ implementation: `pelk ${method}`, on: tfBackend, T, D, medianMs: Number.NaN, runs: 0, usPerStep: Number.NaN, maxAbsDiffVsLayer: Number.NaN, refused: `skipped: predicted ${(predicted / 1000).toFixed(0)} s per run` });
          log(`T=${T} pelk ${method} on tfjs ${tfBackend}: skipped (predicted ${(predicted / 1000).toFixed(0)} s)`);
          continue;
        }
        const long = predicted > LONG_RUN_MS;
        const { measurement, states } = await measure({ backend, cell, inputs, method, dtype: 'float32', warmup: long ? 0 : 1, runs: long ? 1 : runs });
        msPerStep.set(`${tfBackend}/${method}`, measurement.medianMs / T);
        const row = peerFrom(`pelk ${method}`, tfBackend, measurement, states, layer.states);
        row.speedupVsLayer = ratio(layer.ms, measurement.medianMs);
        results.push(row);
        log(`T=${T} pelk ${method} on tfjs ${tfBackend}: ${measurement.refused ? 'refused' : `${(measurement.medianMs / 1000).toFixed(3)} s`}`);
      }
    }
    cpuBackend ??= await createBackend('cpu');
    for (const method of ['sequential', 'quasi-deer'] as const) {
      const { measurement, states } = await measure({ backend: cpuBackend, cell, inputs, method, dtype: 'float32', warmup: 1, runs });
      const row = peerFrom(`pelk ${method}`, 'pelk-cpu', measurement, states, reference!);
      row.speedupVsLayer = ratio(referenceLayer?.ms ?? Number.NaN, measurement.medianMs);
      row.versus = referenceLayer?.on;
      results.push(row);
      log(`T=${T} pelk ${method} on pelk's cpu backend: ${(measurement.medianMs / 1000).toFixed(3)} s`);
    }
  }
  return {
    kind: 'pelk-peers',
    date: new Date().toISOString(),
    machine: machineDescription(cpuBackend!),
    tfjsVersion: tf.version.tfjs,
    results,
    profiles,
  };
}

function ratio(reference: number, ms: number): number {
  return Number.isFinite(reference) && ms > 0 ? Number((reference / ms).toPrecision(3)) : Number.NaN;
}

/**
 * Times the parts of one solver iteration at random states (after a warm-up, the median of two): the cell alone, the
 * cell with its Jacobian, and the scan, each forced to finish by reading one element back.
 */
async function profileIteration(
  backend: ComputeBackend,
  cell: ReturnType<typeof gru.keras>,
  inputs: ShapedArray,
  method: 'quasi-deer' | 'deer',
  on: string,
): Promise<IterationProfile> {
  const [, T, I] = [1, inputs.shape[0], inputs.shape[1]];
  const D = cell.stateSize;
  const kind = method === 'deer' ? 'dense' : 'diagonal';
  const x = backend.fromArray(Float32Array.from(inputs.data), [1, T, I], 'float32');
  const prev = backend.fromArray(Float32Array.from(randomInputs(1, T, D, 5).data, (v) => 0.5 * Math.tanh(v)), [1, T, D], 'float32');
  const init = backend.fill([1, D], 0, 'float32');
  let bound: BoundCell | undefined;
  try {
    bound = cell.bind(backend, { dtype: 'float32', inputs: x, batch: 1, steps: T });
    const b = bound;
    const time = async (fn: () => import('@pelk/core').Tensor): Promise<number> => {
      const samples: number[] = [];
      // One warm-up, then the median of two (a dense DEER scan at T = 10,000 takes tens of seconds on tfjs).
      for (let k = 0; k < 3; k++) {
        const t0 = performance.now();
        const out = fn();
        await backend.maxAbs(backend.tidy(() => backend.slice(out, 1, 0, 1)));
        samples.push(performance.now() - t0);
        backend.dispose(out);
      }
      return median(samples.slice(1));
    };
    const cellMs = await time(() => b.apply(prev));
    const linearizeMs = await time(() => backend.tidy(() => b.linearize(prev, kind).jacobian));
    const lin = b.linearize(prev, kind);
    const scanMs = await time(() => (kind === 'dense' ? backend.linearScanDense(lin.jacobian, lin.value, init) : backend.linearScanDiagonal(lin.jacobian, lin.value, init)));
    backend.dispose([lin.value, lin.jacobian]);
    return { on, T, method, cellMs, jacobianMs: Math.max(0, linearizeMs - cellMs), scanMs };
  } finally {
    bound?.dispose();
    backend.dispose([x, prev, init]);
  }
}

function peerFrom(implementation: string, on: string, m: Measurement, states: ArrayLike<number> | undefined, layer: Float32Array): PeerResult {
  return {
    implementation,
    on,
    T: m.T,
    D: m.D,
    medianMs: m.medianMs,
    runs: m.runsMs.length,
    usPerStep: m.usPerStep,
    iterations: m.iterations,
    maxAbsDiffVsLayer: states ? maxAbsDiff(states, layer) : Number.NaN,
    ...(m.refused ? { refused: m.refused } : {}),
  };
}

/** The results as a text table, then the per-iteration profiles. */
export function formatPeers(report: PeersReport): string {
  const main = table(
    ['implementation', 'on', 'T', 'median', 'runs', 'µs/step', 'iters', '× vs tf.layers.gru', 'max|Δ| vs layer'],
    report.results.map((r) => [
      r.implementation,
      r.on === 'pelk-cpu' ? "pelk's cpu backend" : `tfjs ${r.on}`,
      String(r.T),
      r.refused ? (r.refused.startsWith('skipped') ? r.refused : 'refused') : `${(r.medianMs / 1000).toFixed(3)} s`,
      String(r.runs),
      r.refused ? '' : r.usPerStep.toFixed(1),
      r.iterations ? String(r.iterations) : '',
      r.refused ? '' : `${r.speedupVsLayer}×${r.on === 'pelk-cpu' ? ` (vs ${r.versus})` : ''}`,
      r.refused ? '' : r.maxAbsDiffVsLayer.toExponential(1),
    ]),
  );
  if (report.profiles.length === 0) return main;
  const parts = table(
    ['one iteration of', 'on', 'T', 'cell', 'Jacobian', 'scan'],
    report.profiles.map((p) =>
      p.error
        ? [p.method, `tfjs ${p.on}`, String(p.T), `failed: ${p.error}`, '', '']
        : [p.method, `tfjs ${p.on}`, String(p.T), `${p.cellMs.toFixed(1)} ms`, `${p.jacobianMs.toFixed(1)} ms`, `${p.scanMs.toFixed(1)} ms`],
    ),
  );
  return `${main}\n\n${parts}`;
}

/** The suite's files: JSON, the text table and a bar chart of µs per step per T. */
export function peersFiles(report: PeersReport, text: string): Record<string, string> {
  const files: Record<string, string> = {
    'peers.json': `${JSON.stringify(report, null, 2)}\n`,
    'peers.txt': `${text}\n`,
  };
  for (const T of [...new Set(report.results.map((r) => r.T))]) {
    const rows = report.results
      .filter((r) => r.T === T && !r.refused)
      .map((r) => ({ label: `${r.implementation} (${r.on === 'pelk-cpu' ? 'pelk cpu' : `tfjs ${r.on}`})`, usPerStep: r.usPerStep }));
    files[`peers-T${T}.svg`] = barsPlot(`GRU D=64, T=${T}: µs per step, same weights and inputs`, rows);
  }
  return files;
}

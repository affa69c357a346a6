/**
 * `pelk demo`: the README's first command. One GRU (D = 64) over T = 100,000 steps on the default
 * backend, evaluated sequentially, with quasi-DEER and with DEER; prints time, iterations and the
 * largest difference from the sequential answer.
 */
import { DEFAULT_TOLERANCE, type DType, estimateEvaluationBytes } from '@pelk/core';
import { gru } from '@pelk/models';
import { createBackend } from '../backends.js';
import { randomInputs } from '../data.js';
import { type Measurement, formatMs, measure, table } from '../harness.js';
import { ProgressLine } from '../progress.js';

/** Options of {@link runDemo}. */
export interface DemoOptions {
  readonly backend: string;
  readonly steps: number;
  readonly hidden: number;
  readonly input: number;
  readonly dtype: DType;
  /** Steps DEER runs on (at most `steps`): its dense scan costs O(T·D³), so the demo runs it on a prefix. */
  readonly deerSteps: number;
}

/**
 * Runs the demo and returns its printed report.
 *
 * @example
 * ```ts
 * console.log(await runDemo({ backend: 'cpu', steps: 100_000, hidden: 64, input: 8, dtype: 'float64', deerSteps: 10_000 }));
 * ```
 */
export async function runDemo(o: DemoOptions): Promise<string> {
  const backend = await createBackend(o.backend);
  const cell = gru.random({ inputSize: o.input, hiddenSize: o.hidden, seed: 1 });
  const inputs = randomInputs(1, o.steps, o.input, 7);
  const err = process.stderr;
  err.write(
    `pelk demo: a GRU (PyTorch convention, random weights) with D=${o.hidden}, input ${o.input}, ` +
      `T=${o.steps.toLocaleString('en-US')} steps, ${o.dtype}, on backend '${backend.name}' (${backend.capabilities.device})\n`,
  );
  const results: Measurement[] = [];
  const notes: string[] = [];

  const run = async (method: 'sequential' | 'quasi-deer' | 'deer', T: number, reference?: Float64Array | Float32Array) => {
    const progress = new ProgressLine(`${method} (T=${T})`);
    const data = T === o.steps ? inputs : { data: inputs.data.subarray(0, T * o.input), shape: [T, o.input] };
    const out = await measure({
      backend,
      cell,
      inputs: data,
      method,
      dtype: o.dtype,
      warmup: 0,
      runs: 1,
      reference,
      onIteration: (info, r) => progress.update(r, 1, info),
    });
    progress.done();
    results.push(out.measurement);
    return out;
  };

  const sequential = await run('sequential', o.steps);
  const reference = sequential.states!;
  sequential.measurement.maxAbsDiffVsSequential = 0;
  await run('quasi-deer', o.steps, reference);

  // DEER's dense Jacobians take T·D² numbers and its scan O(T·D³) work: it runs on the first
  // `deerSteps` steps (on a CPU the full length takes many minutes and gigabytes).
  const deerSteps = Math.min(o.deerSteps, o.steps);
  if (deerSteps < o.steps) {
    const { maxTotalBytes, maxTensorElements } = backend.capabilities.limits;
    const full = estimateEvaluationBytes({ method: 'deer', batch: 1, steps: o.steps, stateSize: o.hidden, inputSize: o.input, dtype: o.dtype, cellKind: cell.kind });
    const fits = full <= maxTotalBytes && o.steps * o.hidden * o.hidden <= maxTensorElements;
    notes.push(
      `DEER ran on the first ${deerSteps.toLocaleString('en-US')} steps (--deer-steps; same weights and inputs, compared with that prefix of the sequential answer):`,
      `its scan costs O(T·D³) work and its Jacobians T·D² numbers — all ${o.steps.toLocaleString('en-US')} steps would take about ${Math.round(o.steps / deerSteps)}× as long and ` +
        `about ${(full / 2 ** 30).toFixed(1)} GiB${fits ? '' : `, more than backend '${backend.name}' holds (it would refuse them)`}.`,
    );
  }
  const deer = await run('deer', deerSteps, reference);
  if (deer.measurement.refused) notes.push(`DEER on ${deerSteps.toLocaleString('en-US')} steps was refused by the backend: ${deer.measurement.refused}`);

  const rows = results.map((m) => [
    m.method,
    m.T.toLocaleString('en-US'),
    formatMs(m.medianMs),
    m.usPerStep.toFixed(2),
    String(m.iterations),
    m.converged ? 'yes' : 'NO',
    m.residual.toExponential(1),
    m.maxAbsDiffVsSequential === undefined ? '—' : m.maxAbsDiffVsSequential.toExponential(1),
  ]);
  const text = [
    table(['method', 'T', 'time', 'µs/step', 'iterations', 'converged', 'residual', 'max |Δ| vs sequential'], rows),
    '',
    ...notes,
    `All three give the same trajectory up to the tolerance (converged: the true residual is ≤ ${DEFAULT_TOLERANCE[o.dtype]}, the ${o.dtype} default).`,
    'On a CPU the sequential loop is the fastest;',
    'the parallel methods pay off on GPUs, where each iteration runs all T steps at once.',
  ];
  return text.join('\n');
}

/**
 * `pelk bench --suite peers`: pelk against the recurrent layers JavaScript users run today —
 * `tf.layers.gru` from TensorFlow.js on its `cpu` and `wasm` backends — with the same weights and
 * inputs (the layer's weights are imported with `gru.keras`), checking that the trajectories agree.
 * TensorFlow.js is loaded only when this suite runs.
 */
import type { ShapedArray } from '@pelk/core';
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
  /** Sequence length; default 200 (quick) or 2,000. */
  readonly steps?: number;
}

/** One implementation's timing. */
export interface PeerResult {
  /** e.g. `tf.layers.gru (tfjs wasm)` or `pelk sequential (cpu)`. */
  readonly implementation: string;
  readonly T: number;
  readonly D: number;
  readonly medianMs: number;
  readonly usPerStep: number;
  /** `max |states − tf.layers.gru states|` (float32). */
  readonly maxAbsDiffVsLayer: number;
  /** How many times faster than `tf.layers.gru` on the tfjs `wasm` backend. */
  speedupVsWasm?: number;
}

/** The JSON the suite writes. */
export interface PeersReport {
  readonly kind: 'pelk-peers';
  readonly date: string;
  readonly machine: MachineDescription;
  readonly tfjsVersion: string;
  readonly results: PeerResult[];
}

/**
 * Times tf.layers.gru (tfjs cpu and wasm) and pelk (sequential and quasi-DEER, CPU backend, float32)
 * on one GRU (D = 64, input 8) after a warm-up, median of the timed runs.
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
  const T = o.steps ?? (o.quick ? 200 : 2000);
  const runs = o.quick ? 1 : 3;
  const inputs = randomInputs(1, T, I, 7) as ShapedArray & { data: Float64Array };
  const x = Float32Array.from(inputs.data);
  const results: PeerResult[] = [];
  let layerStates: Float32Array | undefined;
  // Seeded weights (normal, scaled like Glorot initialisation), set on every layer.
  const scaled = (rows: number, cols: number, seed: number, scale: number) => Float32Array.from(randomInputs(1, rows, cols, seed).data, (v) => v * scale);
  const weights = {
    kernel: scaled(I, 3 * D, 11, Math.sqrt(2 / (I + 3 * D))),
    recurrentKernel: scaled(D, 3 * D, 12, Math.sqrt(2 / (4 * D))),
    bias: scaled(1, 3 * D, 13, 0.1),
  };

  for (const tfBackend of ['wasm', 'cpu'] as const) {
    await tf.setBackend(tfBackend);
    await tf.ready();
    // tf.layers.gru's defaults: resetAfter false, hardSigmoid gates, tanh candidate.
    const layer = tf.layers.gru({ units: D, returnSequences: true, inputShape: [null, I], name: `peer_gru_${tfBackend}` });
    const input = tf.tensor3d(x, [1, T, I]);
    tf.dispose(layer.apply(input) as import('@tensorflow/tfjs').Tensor); // builds the layer
    const w = [tf.tensor2d(weights.kernel, [I, 3 * D]), tf.tensor2d(weights.recurrentKernel, [D, 3 * D]), tf.tensor1d(weights.bias)];
    layer.setWeights(w);
    tf.dispose(w);
    const times: number[] = [];
    let out: Float32Array | undefined;
    for (let run = 0; run < 1 + runs; run++) {
      const t0 = performance.now();
      const y = layer.apply(input) as import('@tensorflow/tfjs').Tensor;
      out = (await y.data()) as Float32Array;
      const ms = performance.now() - t0;
      y.dispose();
      if (run > 0) times.push(ms);
    }
    input.dispose();
    layer.dispose();
    tf.disposeVariables(); // variable names are global in tfjs: free them before the next layer
    layerStates ??= out;
    const ms = median(times);
    results.push({
      implementation: `tf.layers.gru (tfjs ${tfBackend})`,
      T,
      D,
      medianMs: ms,
      usPerStep: (ms * 1000) / T,
      maxAbsDiffVsLayer: out && layerStates ? maxAbsDiff(out, layerStates) : Number.NaN,
    });
    log(`tf.layers.gru on tfjs ${tfBackend}: ${(ms / 1000).toFixed(2)} s`);
  }

  // pelk with the layer's weights: tf.layers.gru is Keras' GRU with resetAfter false and hardSigmoid gates.
  const cell = gru.keras({
    kernel: { data: weights.kernel, shape: [I, 3 * D] },
    recurrentKernel: { data: weights.recurrentKernel, shape: [D, 3 * D] },
    bias: { data: weights.bias, shape: [3 * D] },
    resetAfter: false,
    activation: 'tanh',
    recurrentActivation: 'hardSigmoid',
  });
  const backend = await createBackend('cpu');
  for (const method of ['sequential', 'quasi-deer'] as const) {
    const { measurement, states } = await measure({ backend, cell, inputs, method, dtype: 'float32', warmup: 1, runs });
    results.push(peerFrom(`pelk ${method} (cpu backend, float32)`, measurement, states, layerStates!));
    log(`pelk ${method}: ${(measurement.medianMs / 1000).toFixed(2)} s`);
  }
  const wasm = results.find((r) => r.implementation.includes('wasm'))!.medianMs;
  for (const r of results) r.speedupVsWasm = Number((wasm / r.medianMs).toPrecision(2));
  return { kind: 'pelk-peers', date: new Date().toISOString(), machine: machineDescription(backend), tfjsVersion: tf.version.tfjs, results };
}

function peerFrom(implementation: string, m: Measurement, states: ArrayLike<number> | undefined, layer: Float32Array): PeerResult {
  return {
    implementation,
    T: m.T,
    D: m.D,
    medianMs: m.medianMs,
    usPerStep: m.usPerStep,
    maxAbsDiffVsLayer: states ? maxAbsDiff(states, layer) : Number.NaN,
  };
}

/** The results as a text table. */
export function formatPeers(report: PeersReport): string {
  return table(
    ['implementation', 'T', 'median', 'µs/step', '× vs tfjs wasm', 'max|Δ| vs layer'],
    report.results.map((r) => [
      r.implementation,
      String(r.T),
      `${(r.medianMs / 1000).toFixed(3)} s`,
      r.usPerStep.toFixed(1),
      `${r.speedupVsWasm}×`,
      r.maxAbsDiffVsLayer.toExponential(1),
    ]),
  );
}

/** The suite's files: JSON, the text table and a bar chart of µs per step. */
export function peersFiles(report: PeersReport, text: string): Record<string, string> {
  const rows = report.results.map((r) => ({ label: r.implementation, usPerStep: r.usPerStep }));
  return {
    'peers.json': `${JSON.stringify(report, null, 2)}\n`,
    'peers.txt': `${text}\n`,
    'peers.svg': barsPlot(`GRU D=64, T=${report.results[0]?.T}: µs per step, same weights and inputs`, rows),
  };
}

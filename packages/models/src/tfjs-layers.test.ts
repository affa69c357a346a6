/**
 * tfjs-layers migration: each supported layer, built and run by TensorFlow.js (cpu backend), is
 * turned into a pelk cell whose float64 states must reproduce the layer's float32 outputs; saved
 * models go through model.json + weight shards on disk; unsupported configs throw typed errors.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CpuBackend } from '@pelk/backend-cpu';
import { type Cell, InvalidArgumentError, ShapeError, evaluate } from '@pelk/core';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { gru } from './gru.js';
import { randomArray } from '../test/support.js';
import {
  type TfjsLayerLike,
  type TfjsModelJson,
  type TfjsWeightSpec,
  cellFromTfjsLayer,
  cellFromTfjsLayerAsync,
  cellFromTfjsModel,
  cellsFromTfjsModel,
} from './tfjs-layers.js';

const T = 50;
const I = 3;
const H = 6;
const backend = new CpuBackend();

// tfjs-layers' default recurrent initialiser ('orthogonal') calls tensor.flatten(), a chained op
// that the Node build of tfjs-core does not register; the tests set every weight anyway.
const INIT = { kernelInitializer: 'glorotUniform', recurrentInitializer: 'glorotUniform' } as const;

type RnnLayer = ReturnType<typeof tfl.layers.gru>;

let seed = 100;
/** Seeded weights of the layer's own shapes, uniform in [-scale, scale). */
function setSeededWeights(layer: { getWeights(): tf.Tensor[]; setWeights(w: tf.Tensor[]): void }, scale = 0.5): void {
  const weights = layer.getWeights().map((w) => tf.tensor(Float32Array.from(randomArray(w.size, seed++, scale)), w.shape, 'float32'));
  layer.setWeights(weights);
  tf.dispose(weights);
}

function seededInputs(steps = T, s = 7): tf.Tensor3D {
  return tf.randomNormal([1, steps, I], 0, 1, 'float32', s) as tf.Tensor3D;
}

/** Builds the layer on `x`, gives it seeded weights, and returns its output sequence `[T, H]`. */
function runLayer(layer: RnnLayer, x: tf.Tensor3D, scale?: number): Float32Array {
  tf.dispose(layer.apply(x) as tf.Tensor);
  setSeededWeights(layer, scale);
  const y = layer.apply(x) as tf.Tensor;
  const out = y.dataSync() as Float32Array;
  y.dispose();
  return out;
}

async function pelkStates(cell: Cell, x: tf.Tensor3D | Float32Array, method: 'sequential' | 'deer' = 'sequential', initialState?: number[]) {
  const data = x instanceof Float32Array ? x : (x.dataSync() as Float32Array);
  const steps = data.length / cell.inputSize;
  const result = await evaluate(
    cell,
    { data: Float64Array.from(data), shape: [steps, cell.inputSize] },
    { backend, method, dtype: 'float64', ...(initialState ? { initialState } : {}) },
  );
  const states = await result.read();
  result.dispose();
  return { states, D: cell.stateSize };
}

/** max |pelk h_t − tfjs y_t| over all t, with pelk's h the first `units` entries of each state. */
function maxError(pelk: { states: ArrayLike<number>; D: number }, y: Float32Array, units: number): { err: number; scale: number } {
  let err = 0;
  let scale = 0;
  const steps = y.length / units;
  for (let t = 0; t < steps; t++) {
    for (let i = 0; i < units; i++) {
      const want = y[t * units + i];
      err = Math.max(err, Math.abs(pelk.states[t * pelk.D + i] - want));
      scale = Math.max(scale, Math.abs(want));
    }
  }
  return { err, scale };
}

/** float32 rounding over T steps: well under 1e-5 of the output scale. */
function expectClose(pelk: { states: ArrayLike<number>; D: number }, y: Float32Array, units: number): void {
  const { err, scale } = maxError(pelk, y, units);
  expect(scale).toBeGreaterThan(0.05); // not vacuous
  expect(err).toBeLessThan(1e-5 * Math.max(1, scale));
}

function thrown(f: () => unknown): InvalidArgumentError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidArgumentError);
    return e as InvalidArgumentError;
  }
  throw new Error('expected a throw');
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

afterEach(() => {
  tf.disposeVariables();
});

describe('cellFromTfjsLayer reproduces tf.layers outputs', () => {
  const cases: Array<{ name: string; make: () => RnnLayer; kind: string; scale?: number }> = [
    { name: 'GRU, defaults (hardSigmoid / tanh)', make: () => tfl.layers.gru({ units: H, returnSequences: true, ...INIT }), kind: 'gru', scale: 0.9 },
    { name: 'GRU, useBias false', make: () => tfl.layers.gru({ units: H, returnSequences: true, useBias: false, ...INIT }), kind: 'gru', scale: 0.9 },
    {
      name: 'GRU, sigmoid gates and relu candidate',
      make: () => tfl.layers.gru({ units: H, returnSequences: true, recurrentActivation: 'sigmoid', activation: 'relu', ...INIT }),
      kind: 'gru',
    },
    { name: 'GRU, linear candidate, no bias', make: () => tfl.layers.gru({ units: H, returnSequences: true, activation: 'linear', useBias: false, ...INIT }), kind: 'gru' },
    { name: 'LSTM, defaults (hardSigmoid / tanh)', make: () => tfl.layers.lstm({ units: H, returnSequences: true, ...INIT }), kind: 'lstm', scale: 0.9 },
    { name: 'LSTM, useBias false', make: () => tfl.layers.lstm({ units: H, returnSequences: true, useBias: false, ...INIT }), kind: 'lstm', scale: 0.9 },
    { name: 'LSTM, sigmoid gates', make: () => tfl.layers.lstm({ units: H, returnSequences: true, recurrentActivation: 'sigmoid', ...INIT }), kind: 'lstm' },
    { name: 'SimpleRNN, tanh', make: () => tfl.layers.simpleRNN({ units: H, returnSequences: true, ...INIT }), kind: 'elman' },
    { name: 'SimpleRNN, relu', make: () => tfl.layers.simpleRNN({ units: H, returnSequences: true, activation: 'relu', ...INIT }), kind: 'elman', scale: 0.4 },
    { name: 'SimpleRNN, tanh, useBias false', make: () => tfl.layers.simpleRNN({ units: H, returnSequences: true, useBias: false, ...INIT }), kind: 'elman' },
    {
      name: 'RNN over a gruCell',
      make: () => tfl.layers.rnn({ cell: tfl.layers.gruCell({ units: H, ...INIT }), returnSequences: true }),
      kind: 'gru',
    },
    {
      name: 'RNN over an lstmCell (sigmoid)',
      make: () => tfl.layers.rnn({ cell: tfl.layers.lstmCell({ units: H, recurrentActivation: 'sigmoid', ...INIT }), returnSequences: true }),
      kind: 'lstm',
    },
    {
      name: 'RNN over a simpleRNNCell (relu, no bias)',
      make: () => tfl.layers.rnn({ cell: tfl.layers.simpleRNNCell({ units: H, activation: 'relu', useBias: false, ...INIT }), returnSequences: true }),
      kind: 'elman',
      scale: 0.4,
    },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const x = seededInputs();
      const layer = c.make();
      const y = runLayer(layer, x, c.scale);
      const cell = cellFromTfjsLayer(layer);
      expect(cell.kind).toBe(c.kind);
      expect(cell.inputSize).toBe(I);
      expect(cell.hiddenSize).toBe(H);
      expect(cell.stateSize).toBe(c.kind === 'lstm' ? 2 * H : H);
      expectClose(await pelkStates(cell, x), y, H);
      x.dispose();
    });
  }

  it('keeps the layer config in the cell (GRU: resetAfter false, hardSigmoid) and the async reader agrees', async () => {
    const x = seededInputs();
    const layer = tfl.layers.gru({ units: H, returnSequences: true, ...INIT });
    runLayer(layer, x);
    const cell = cellFromTfjsLayer(layer);
    const spec = cell.toSpec();
    expect(spec).toMatchObject({ type: 'gru', convention: 'keras', resetAfter: false, activation: 'tanh', recurrentActivation: 'hardSigmoid' });
    expect((await cellFromTfjsLayerAsync(layer)).toSpec()).toEqual(spec);
    x.dispose();
  });

  it('DEER on the converted LSTM matches the layer too (analytic Jacobians through the hardSigmoid gates)', async () => {
    const x = seededInputs();
    const layer = tfl.layers.lstm({ units: H, returnSequences: true, ...INIT });
    const y = runLayer(layer, x);
    expectClose(await pelkStates(cellFromTfjsLayer(layer), x, 'deer'), y, H);
    x.dispose();
  });

  it('a stateful layer continues from its last state: pass it as initialState', async () => {
    const x = seededInputs(2 * T);
    const [x1, x2] = tf.split(x, 2, 1) as [tf.Tensor3D, tf.Tensor3D];
    const layer = tfl.layers.gru({ units: H, stateful: true, batchInputShape: [1, T, I], returnSequences: true, ...INIT });
    runLayer(layer, x1);
    layer.resetStates();
    const y1 = (layer.apply(x1) as tf.Tensor).dataSync() as Float32Array;
    const y2 = (layer.apply(x2) as tf.Tensor).dataSync() as Float32Array; // continues from y1's last state
    const cell = cellFromTfjsLayer(layer);
    expectClose(await pelkStates(cell, x1), y1, H);
    const last = Array.from(y1.subarray((T - 1) * H));
    expectClose(await pelkStates(cell, x2, 'sequential', last), y2, H);
    tf.dispose([x, x1, x2]);
  });

  it('goBackwards: the forward cell on time-reversed inputs gives the layer output (as documented)', async () => {
    const x = seededInputs();
    const layer = tfl.layers.simpleRNN({ units: H, returnSequences: true, goBackwards: true, ...INIT });
    const y = runLayer(layer, x);
    expect(() => cellFromTfjsLayer(layer)).toThrow(/goBackwards: expected false/);
    // A duck-typed view of the same layer without goBackwards.
    const forward: TfjsLayerLike = {
      getClassName: () => layer.getClassName(),
      getConfig: () => ({ ...layer.getConfig(), goBackwards: false }),
      getWeights: () => layer.getWeights(),
    };
    const reversed = tf.reverse(x, 1) as tf.Tensor3D;
    expectClose(await pelkStates(cellFromTfjsLayer(forward), reversed), y, H);
    tf.dispose([x, reversed]);
  });
});

describe('cellFromTfjsLayer errors', () => {
  const built = <L extends { apply(x: tf.Tensor): unknown }>(layer: L): L => {
    const x = seededInputs(4);
    tf.dispose(layer.apply(x) as tf.Tensor);
    x.dispose();
    return layer;
  };

  it('rejects layers that are not recurrent (UNSUPPORTED, naming the class)', () => {
    const e = thrown(() => cellFromTfjsLayer(built(tfl.layers.dense({ units: 2 }))));
    expect(e.code).toBe('UNSUPPORTED');
    expect(e.field).toBe('layer.getClassName()');
    expect(e.expected).toMatch(/'GRU', 'LSTM', 'SimpleRNN' or 'RNN'/);
    expect(e.received).toBe('"Dense"');
  });

  it('rejects an RNN over stacked cells', () => {
    const layer = built(
      tfl.layers.rnn({ cell: [tfl.layers.gruCell({ units: 2, ...INIT }), tfl.layers.gruCell({ units: 2, ...INIT })], returnSequences: true }),
    );
    const e = thrown(() => cellFromTfjsLayer(layer));
    expect(e.code).toBe('UNSUPPORTED');
    expect(e.field).toBe('layer.getConfig().cell.className');
    expect(e.received).toBe('"StackedRNNCells"');
  });

  it('rejects activations pelk lacks, naming the field', () => {
    const e1 = thrown(() => cellFromTfjsLayer(built(tfl.layers.simpleRNN({ units: 2, activation: 'elu', ...INIT }))));
    expect(e1.field).toBe('layer.getConfig().activation');
    expect(e1.expected).toMatch(/'tanh'/);
    expect(e1.received).toBe('"elu"');
    expect(e1.code).toBe('UNSUPPORTED');
    const e2 = thrown(() => cellFromTfjsLayer(built(tfl.layers.gru({ units: 2, recurrentActivation: 'softsign', ...INIT }))));
    expect(e2.field).toBe('layer.getConfig().recurrentActivation');
    expect(e2.received).toBe('"softsign"');
  });

  it('rejects goBackwards and unbuilt layers', () => {
    const e = thrown(() => cellFromTfjsLayer(built(tfl.layers.lstm({ units: 2, goBackwards: true, ...INIT }))));
    expect(e.code).toBe('UNSUPPORTED');
    expect(e.field).toBe('layer.getConfig().goBackwards');
    expect(() => cellFromTfjsLayer(tfl.layers.gru({ units: 2, ...INIT }))).toThrow(/getWeights\(\): expected the weights of a built layer/);
    expect(() => cellFromTfjsLayer({} as TfjsLayerLike)).toThrow(/layer.getClassName: expected a function/);
    const odd = thrown(() => cellFromTfjsLayer({ getClassName: () => 'constructor', getConfig: () => ({}), getWeights: () => [] }));
    expect(odd.code).toBe('UNSUPPORTED');
  });

  it('checks weight shapes against units', () => {
    const layer = built(tfl.layers.gru({ units: 2, ...INIT }));
    const fake: TfjsLayerLike = {
      getClassName: () => 'GRU',
      getConfig: () => ({ ...layer.getConfig(), units: 3 }),
      getWeights: () => layer.getWeights(),
    };
    expect(() => cellFromTfjsLayer(fake)).toThrow(ShapeError);
    expect(() => cellFromTfjsLayer(fake)).toThrow(/kernel: expected shape \[3, 9\], received shape \[3, 6\]/);
  });
});

// ---- saved models ----------------------------------------------------------------------------

interface Saved {
  artifacts: tf.io.ModelArtifacts;
  json: TfjsModelJson;
  shards: Buffer[];
}

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pelk-tfjs-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Saves `model` through `tf.io.withSaveHandler`, writes `model.json` and the weights split into
 * `shardCount` `.bin` files (as `tensorflowjs_converter` shards them), and reads them back with fs.
 */
async function saveAndReload(model: tfl.LayersModel, name: string, shardCount = 1): Promise<Saved> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  const a = artifacts!;
  const bytes = new Uint8Array(a.weightData as ArrayBuffer);
  const cut = Array.from({ length: shardCount + 1 }, (_, k) => Math.round((k * bytes.length) / shardCount));
  const paths = cut.slice(1).map((_, k) => `group1-shard${k + 1}of${shardCount}.bin`);
  const folder = join(dir, name);
  rmSync(folder, { recursive: true, force: true });
  mkdirSync(folder);
  paths.forEach((p, k) => {
    writeFileSync(join(folder, p), bytes.subarray(cut[k], cut[k + 1]));
  });
  const modelJson = {
    modelTopology: a.modelTopology,
    format: a.format,
    generatedBy: a.generatedBy,
    convertedBy: a.convertedBy,
    weightsManifest: [{ paths, weights: a.weightSpecs }],
  };
  writeFileSync(join(folder, 'model.json'), JSON.stringify(modelJson));

  // What a caller does: read model.json, then every shard in manifest order.
  const json = JSON.parse(readFileSync(join(folder, 'model.json'), 'utf8')) as TfjsModelJson;
  const shards = json.weightsManifest.flatMap((g) => g.paths.map((p) => readFileSync(join(folder, p))));
  return { artifacts: a, json, shards };
}

describe('cellsFromTfjsModel', () => {
  it('Sequential GRU + Dense: model.json and two shards from disk reproduce the layer', async () => {
    const x = seededInputs();
    const model = tfl.sequential();
    model.add(tfl.layers.gru({ units: H, returnSequences: true, inputShape: [T, I], ...INIT }));
    model.add(tfl.layers.dense({ units: 2 }));
    const layer = model.layers[0] as RnnLayer;
    const y = runLayer(layer, x, 0.9);
    const saved = await saveAndReload(model, 'seq-gru', 2);

    // The files are what tfjs itself loads.
    const loadWeights = async (): Promise<[tf.io.WeightsManifestEntry[], ArrayBuffer]> => [
      saved.json.weightsManifest[0].weights as tf.io.WeightsManifestEntry[],
      tf.io.concatenateArrayBuffers(saved.shards.map((b) => new Uint8Array(b).buffer)),
    ];
    const back = await tfl.loadLayersModel(tf.io.fromMemory(await tf.io.getModelArtifactsForJSON(saved.json as tf.io.ModelJSON, loadWeights)));
    const yBack = (back.layers[0].apply(x) as tf.Tensor).dataSync() as Float32Array;
    expect(Array.from(yBack)).toEqual(Array.from(y));

    const cells = cellsFromTfjsModel(saved.json, saved.shards);
    expect(cells.map((c) => [c.name, c.className, c.path])).toEqual([[layer.name, 'GRU', 'modelTopology.config.layers[0]']]);
    expectClose(await pelkStates(cells[0].cell, x), y, H);
    expect(cells[0].cell.toSpec()).toEqual(cellFromTfjsLayer(layer).toSpec());

    // The artifacts directly (weightData inside), and the convenience for the only recurrent layer.
    expect(cellsFromTfjsModel(saved.artifacts)[0].cell.toSpec()).toEqual(cells[0].cell.toSpec());
    expect(cellFromTfjsModel(saved.json, Buffer.concat(saved.shards)).toSpec()).toEqual(cells[0].cell.toSpec());
    tf.dispose(x);
    back.dispose();
  });

  it('functional model: LSTM → RNN(simpleRNNCell) by name, each matching its layer', async () => {
    const x = seededInputs();
    const input = tfl.input({ shape: [T, I] });
    const lstmLayer = tfl.layers.lstm({ units: H, returnSequences: true, name: 'encoder', ...INIT });
    const rnnLayer = tfl.layers.rnn({ cell: tfl.layers.simpleRNNCell({ units: 4, ...INIT }), returnSequences: true, name: 'decoder' });
    const output = tfl.layers.dense({ units: 1 }).apply(rnnLayer.apply(lstmLayer.apply(input))) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: output });
    setSeededWeights(lstmLayer, 0.9);
    setSeededWeights(rnnLayer);
    const h1 = lstmLayer.apply(x) as tf.Tensor3D;
    const h2 = rnnLayer.apply(h1) as tf.Tensor3D;
    const saved = await saveAndReload(model, 'functional');

    const cells = cellsFromTfjsModel(saved.json, saved.shards);
    expect(cells.map((c) => [c.name, c.className, c.cell.kind])).toEqual([
      ['encoder', 'LSTM', 'lstm'],
      ['decoder', 'RNN', 'elman'],
    ]);
    expect(cells[0].path).toBe('modelTopology.config.layers[1]');
    expectClose(await pelkStates(cells[0].cell, x), h1.dataSync() as Float32Array, H);
    const decoder = cellFromTfjsModel(saved.json, saved.shards, { layer: 'decoder' });
    expectClose(await pelkStates(decoder, h1.dataSync() as Float32Array), h2.dataSync() as Float32Array, 4);

    expect(() => cellFromTfjsModel(saved.json, saved.shards)).toThrow(/options.layer: expected one of 'encoder', 'decoder'/);
    expect(() => cellFromTfjsModel(saved.json, saved.shards, { layer: 'dense' })).toThrow(InvalidArgumentError);
    // Unknown option keys are errors (a typo would otherwise pick the default silently).
    const typo = thrown(() => cellFromTfjsModel(saved.json, saved.shards, { layers: 'decoder' } as never));
    expect(typo.field).toBe('options.layers');
    expect(typo.expected).toBe('only the keys `skipUnsupported`, `layer`');
    expect(typo.received).toBe('an unknown key `layers` (did you mean `layer`?)');
    const skip = thrown(() => cellsFromTfjsModel(saved.json, saved.shards, { skipUnsuported: true } as never));
    expect(skip.field).toBe('options.skipUnsuported');
    expect(skip.received).toBe('an unknown key `skipUnsuported` (did you mean `skipUnsupported`?)');
    tf.dispose([x, h1, h2]);
  });

  it('reads a Keras-converted topology (model_config, snake_case, gru/gru_cell/… names, reset_after GRU)', () => {
    const w = { kernel: randomArray(I * 3 * H, 1, 0.5), recurrentKernel: randomArray(H * 3 * H, 2, 0.5), bias: randomArray(2 * 3 * H, 3, 0.5) };
    const dense = randomArray(H + 1, 4);
    const json: TfjsModelJson = {
      format: 'layers-model',
      generatedBy: 'keras v2.15.0',
      convertedBy: 'TensorFlow.js Converter v4.22.0',
      modelTopology: {
        keras_version: '2.15.0',
        backend: 'tensorflow',
        model_config: {
          class_name: 'Sequential',
          config: {
            name: 'sequential',
            layers: [
              { class_name: 'InputLayer', config: { batch_input_shape: [null, null, I], dtype: 'float32', name: 'gru_input' } },
              {
                class_name: 'GRU',
                config: {
                  name: 'gru',
                  units: H,
                  activation: 'tanh',
                  recurrent_activation: 'sigmoid',
                  use_bias: true,
                  reset_after: true,
                  go_backwards: false,
                  return_sequences: true,
                  stateful: false,
                  unroll: false,
                  time_major: false,
                  dropout: 0.2,
                  recurrent_dropout: 0,
                },
              },
              { class_name: 'Dense', config: { name: 'dense', units: 1 } },
            ],
          },
        },
      },
      weightsManifest: [
        {
          paths: ['group1-shard1of1.bin'],
          weights: [
            { name: 'gru/gru_cell/kernel', shape: [I, 3 * H], dtype: 'float32' },
            { name: 'gru/gru_cell/recurrent_kernel', shape: [H, 3 * H], dtype: 'float32' },
            { name: 'gru/gru_cell/bias', shape: [2, 3 * H], dtype: 'float32' },
            { name: 'dense/kernel', shape: [H, 1], dtype: 'float32' },
            { name: 'dense/bias', shape: [1], dtype: 'float32' },
          ],
        },
      ],
    };
    const f32 = (a: Float64Array) => Float32Array.from(a);
    const bytes = Buffer.concat([f32(w.kernel), f32(w.recurrentKernel), f32(w.bias), f32(dense)].map((a) => Buffer.from(a.buffer)));
    const cell = cellFromTfjsModel(json, bytes);
    const expected = gru.keras({
      kernel: { data: f32(w.kernel), shape: [I, 3 * H] },
      recurrentKernel: { data: f32(w.recurrentKernel), shape: [H, 3 * H] },
      bias: { data: f32(w.bias), shape: [2, 3 * H] },
      recurrentActivation: 'sigmoid',
    });
    expect(cell.toSpec()).toEqual(expected.toSpec());
    expect(cell.toSpec()).toMatchObject({ resetAfter: true, recurrentActivation: 'sigmoid' });
  });

  it('dequantizes uint8, uint16 and float16 weights as tfjs does', async () => {
    const model = tfl.sequential();
    const layer = tfl.layers.simpleRNN({ units: H, returnSequences: true, inputShape: [T, I], ...INIT });
    model.add(layer);
    const x = seededInputs();
    runLayer(layer, x);
    const { artifacts } = await saveAndReload(model, 'quantized');
    const floats = new Float32Array(artifacts.weightData as ArrayBuffer);
    const kinds = ['uint8', 'uint16', 'float16'] as const;
    const specs: TfjsWeightSpec[] = [];
    const parts: Uint8Array[] = [];
    let at = 0;
    (artifacts.weightSpecs as TfjsWeightSpec[]).forEach((spec, k) => {
      const n = spec.shape.reduce((a, b) => a * b, 1);
      const values = floats.subarray(at, at + n);
      at += n;
      const kind = kinds[k];
      if (kind === 'float16') {
        specs.push({ ...spec, quantization: { dtype: 'float16' } });
        parts.push(new Uint8Array(Uint16Array.from(values, toHalf).buffer));
        return;
      }
      const min = Math.min(...values);
      const levels = kind === 'uint8' ? 255 : 65535;
      const scale = (Math.max(...values) - min) / levels;
      const q = Array.from(values, (v) => Math.round((v - min) / scale));
      specs.push({ ...spec, quantization: { dtype: kind, min, scale } });
      parts.push(kind === 'uint8' ? Uint8Array.from(q) : new Uint8Array(Uint16Array.from(q).buffer));
    });
    const data = Buffer.concat(parts);
    const cell = cellFromTfjsModel({ modelTopology: artifacts.modelTopology, weightSpecs: specs }, data);
    const decoded = tf.io.decodeWeights(new Uint8Array(data).buffer, specs as tf.io.WeightsManifestEntry[]);
    const spec = cell.toSpec();
    const keras = spec.weights as { kernel: number[][]; recurrentKernel: number[][]; bias: number[] };
    expect(keras.kernel.flat()).toEqual(Array.from(decoded[`${layer.name}/kernel`].dataSync()));
    expect(keras.recurrentKernel.flat()).toEqual(Array.from(decoded[`${layer.name}/recurrent_kernel`].dataSync()));
    expect(keras.bias).toEqual(Array.from(decoded[`${layer.name}/bias`].dataSync()));
    tf.dispose([x, ...Object.values(decoded)]);
  });

  it('throws typed errors: unsupported layers (or skips them), activations, dtypes, byte counts, names, formats', async () => {
    const model = tfl.sequential();
    model.add(tfl.layers.gru({ units: 2, returnSequences: true, inputShape: [4, I], recurrentActivation: 'sigmoid', ...INIT }));
    model.add(tfl.layers.bidirectional({ layer: tfl.layers.lstm({ units: 2, returnSequences: true, ...INIT }) as never }));
    model.add(tfl.layers.simpleRNN({ units: 2, returnSequences: true, goBackwards: true, ...INIT }));
    const { json, shards } = await saveAndReload(model, 'unsupported');

    const e1 = thrown(() => cellsFromTfjsModel(json, shards));
    expect(e1.code).toBe('UNSUPPORTED');
    expect(e1.field).toBe('modelTopology.config.layers[1].class_name');
    expect(e1.received).toBe('"Bidirectional"');
    const skipped = cellsFromTfjsModel(json, shards, { skipUnsupported: true });
    expect(skipped.map((c) => c.className)).toEqual(['GRU']);

    const noBidi = structuredClone(json) as { modelTopology: { config: { layers: unknown[] } } };
    noBidi.modelTopology.config.layers.splice(1, 1);
    const withoutBidi = { ...json, modelTopology: noBidi.modelTopology };
    const e2 = thrown(() => cellsFromTfjsModel(withoutBidi, shards));
    expect(e2.field).toBe('modelTopology.config.layers[1].config.go_backwards');
    expect(e2.code).toBe('UNSUPPORTED');

    const elu = structuredClone(json) as unknown as { modelTopology: { config: { layers: Array<{ config: Record<string, unknown> }> } } };
    elu.modelTopology.config.layers[0].config.recurrent_activation = 'elu';
    const eluJson = elu as unknown as TfjsModelJson;
    expect(cellsFromTfjsModel(eluJson, shards, { skipUnsupported: true })).toEqual([]);
    expect(() => cellFromTfjsModel(eluJson, shards, { skipUnsupported: true })).toThrow(/expected a GRU, LSTM, SimpleRNN or RNN layer, received no recurrent layer/);
    const e4 = thrown(() => cellsFromTfjsModel(eluJson, shards));
    expect(e4.field).toBe('modelTopology.config.layers[0].config.recurrent_activation');
    expect(e4.received).toBe('"elu"');

    expect(() => cellsFromTfjsModel(json, shards.slice(0, 1).map((b) => b.subarray(1)), { skipUnsupported: true })).toThrow(ShapeError);
    expect(() => cellsFromTfjsModel(json, shards.map((b) => b.subarray(1)), { skipUnsupported: true })).toThrow(/weightData: expected \d+ bytes \(the sum of the manifest's weights.*received \d+ bytes/);

    const renamed = structuredClone(json);
    (renamed.weightsManifest[0].weights[0] as { name: string }).name = 'other/kernel';
    expect(() => cellsFromTfjsModel(renamed, shards, { skipUnsupported: true })).toThrow(/weightsManifest: expected a weight named '.*\/kernel'/);

    const noBias = structuredClone(json) as unknown as { modelTopology: { config: { layers: Array<{ config: Record<string, unknown> }> } } };
    noBias.modelTopology.config.layers[0].config.use_bias = false;
    expect(() => cellsFromTfjsModel(noBias as unknown as TfjsModelJson, shards, { skipUnsupported: true })).toThrow(
      /layers\[0\]\.config\.use_bias: expected true \(the manifest has '.*\/bias'\)/,
    );

    const ints = structuredClone(json);
    (ints.weightsManifest[0].weights[0] as { dtype: string }).dtype = 'int32';
    const e5 = thrown(() => cellsFromTfjsModel(ints, shards, { skipUnsupported: true }));
    expect(e5.field).toBe('weightsManifest[0].weights[0].dtype');
    expect(e5.code).toBe('UNSUPPORTED');

    expect(() => cellsFromTfjsModel({ ...json, format: 'graph-model' }, shards)).toThrow(/model.format: expected 'layers-model'/);
    expect(() => cellsFromTfjsModel({ modelTopology: {} } as never, shards)).toThrow(/no weightsManifest or weightSpecs/);
    expect(() => cellsFromTfjsModel(json)).toThrow(/weightData: expected the weight bytes/);
  });
});

/** float → IEEE half bits (round toward zero; both decoders see the same bits). */
function toHalf(v: number): number {
  const bits = new Uint32Array(new Float32Array([v]).buffer)[0];
  const sign = (bits >>> 16) & 0x8000;
  const e = ((bits >>> 23) & 0xff) - 127 + 15;
  const m = bits & 0x7fffff;
  if (e <= 0) return e < -10 ? sign : sign | ((m | 0x800000) >> (14 - e));
  if (e >= 31) return sign | 0x7c00;
  return sign | (e << 10) | (m >> 13);
}

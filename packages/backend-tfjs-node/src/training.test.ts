/**
 * Training through pelk on TensorFlow.js: the gradients of `pelkRecurrent` (forward: a pelk solve on
 * the tfjs backend; backward: the exact adjoint) equal backpropagation through time in tf.layers with
 * the same weights, within float32 tolerance; and an Adam loop trains the weights as tf.layers does.
 */
import { elman, gru, lstm, mulberry32 } from '@pelk/models';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTfjsBackend } from './runtime.js';
import type { TfjsBackend } from './tfjs-backend.js';
import { type PelkRecurrentOptions, pelkRecurrent } from './training.js';

let backend: TfjsBackend;
beforeAll(async () => {
  backend = await createTfjsBackend();
});

const B = 3;
const T = 40;
const I = 2;
const H = 5;

/** Uniform in [−scale, scale), seeded. */
function uniform(n: number, seed: number, scale: number): Float32Array {
  const next = mulberry32(seed);
  return Float32Array.from({ length: n }, () => (next() * 2 - 1) * scale);
}

type Kind = 'gru' | 'lstm' | 'elman';
const GATES: Record<Kind, number> = { gru: 3, lstm: 4, elman: 1 };

/** A tf.layers recurrent layer (tfjs defaults: hardSigmoid gates) and the same cell in pelk. */
function layerAndCell(kind: Kind, seed: number) {
  // The weights are set below; zero initialisers avoid the orthogonal one, which needs tfjs's chained ops.
  const config = { units: H, returnSequences: true, kernelInitializer: 'zeros', recurrentInitializer: 'zeros' } as const;
  const layer = kind === 'gru' ? tfl.layers.gru(config) : kind === 'lstm' ? tfl.layers.lstm(config) : tfl.layers.simpleRNN(config);
  layer.apply(tf.zeros([1, 1, I]));
  const G = GATES[kind] * H;
  const values = [uniform(I * G, seed, 0.6), uniform(H * G, seed + 1, 0.6), uniform(G, seed + 2, 0.3)];
  layer.setWeights([tf.tensor(values[0], [I, G]), tf.tensor(values[1], [H, G]), tf.tensor(values[2], [G])]);
  const weights = {
    kernel: tf.variable(tf.tensor(values[0], [I, G])),
    recurrentKernel: tf.variable(tf.tensor(values[1], [H, G])),
    bias: tf.variable(tf.tensor(values[2], [G])),
  };
  const build: PelkRecurrentOptions['build'] = (w) => {
    const keras = { kernel: w.kernel, recurrentKernel: w.recurrentKernel, bias: w.bias };
    return kind === 'gru'
      ? gru.keras({ ...keras, resetAfter: false, activation: 'tanh', recurrentActivation: 'hardSigmoid' })
      : kind === 'lstm'
        ? lstm.keras({ ...keras, activation: 'tanh', recurrentActivation: 'hardSigmoid' })
        : elman.keras({ ...keras, activation: 'tanh' });
  };
  return { layer, weights, build };
}

/** `max |a − b| / max |b|`. */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let err = 0;
  let scale = 0;
  for (let k = 0; k < b.length; k++) {
    err = Math.max(err, Math.abs(a[k] - b[k]));
    scale = Math.max(scale, Math.abs(b[k]));
  }
  return err / scale;
}

describe('pelkRecurrent: gradients equal BPTT through tf.layers (float32)', () => {
  for (const kind of ['gru', 'lstm', 'elman'] as const) {
    for (const method of ['quasi-deer', 'deer', 'elk'] as const) {
      it(`${kind}, ${method}`, async () => {
        const { layer, weights, build } = layerAndCell(kind, kind.length * 10 + method.length);
        const x = tf.tensor3d(uniform(B * T * I, 5, 1), [B, T, I]);
        const C = tf.tensor3d(uniform(B * T * H, 6, 1), [B, T, H]);
        const layerVars = layer.trainableWeights.map((w) => w.read() as tf.Variable);
        const bptt = tf.variableGrads(() => tf.sum(tf.mul(C, layer.apply(x) as tf.Tensor)) as tf.Scalar, layerVars);
        const rnn = pelkRecurrent(weights, { build, backend, method, evaluate: { tolerance: 1e-5 } });
        const solved = await rnn.solve(x);
        expect(solved.forward.converged).toBe(true);
        const ours = tf.variableGrads(() => {
          const states = solved.states();
          const h = kind === 'lstm' ? tf.slice(states, [0, 0, 0], [B, T, H]) : states; // the LSTM state is [h, c]
          return tf.sum(tf.mul(C, h)) as tf.Scalar;
        }, Object.values(weights));
        expect(Math.abs((await ours.value.data())[0] - (await bptt.value.data())[0])).toBeLessThanOrEqual(1e-3 * Math.abs((await bptt.value.data())[0]));
        const names = ['kernel', 'recurrentKernel', 'bias'] as const;
        names.forEach((name, k) => {
          const want = bptt.grads[layerVars[k].name].dataSync();
          const got = ours.grads[weights[name].name].dataSync();
          expect(relativeError(got, want), `${kind} ${method}: ∂L/∂${name}`).toBeLessThanOrEqual(1e-3);
        });
        tf.dispose([x, C, bptt.value, ours.value, ...Object.values(bptt.grads), ...Object.values(ours.grads), ...Object.values(weights)]);
        layer.dispose();
      });
    }
  }

  it('gradients reach the inputs and the initial state too (tf.grads), equal to BPTT', async () => {
    const { layer, weights, build } = layerAndCell('gru', 77);
    const x = tf.tensor3d(uniform(B * T * I, 8, 1), [B, T, I]);
    const s0 = tf.tensor2d(uniform(B * H, 9, 0.5), [B, H]);
    const C = tf.tensor3d(uniform(B * T * H, 10, 1), [B, T, H]);
    const want = tf.grads((xx: tf.Tensor, ss: tf.Tensor) => tf.sum(tf.mul(C, layer.apply(xx, { initialState: [ss] }) as tf.Tensor)))([x, s0]);
    const solved = await pelkRecurrent(weights, { build, backend, method: 'deer' }).solve(x, s0);
    // states() is an op of the very tensors given to solve, so tf.grads with respect to them reaches it.
    const got = tf.grads((_xx: tf.Tensor, _ss: tf.Tensor) => tf.sum(tf.mul(C, solved.states())))([x, s0]);
    expect(relativeError(got[0].dataSync(), want[0].dataSync()), '∂L/∂inputs').toBeLessThanOrEqual(1e-3);
    expect(relativeError(got[1].dataSync(), want[1].dataSync()), '∂L/∂initialState').toBeLessThanOrEqual(1e-3);
    tf.dispose([...got, ...Object.values(weights)]);
    tf.dispose([x, s0, C, ...want]);
    layer.dispose();
  });
});

describe('pelkRecurrent trains like tf.layers', () => {
  it('an Adam loop on a GRU: the same losses step by step, and the loss falls; nothing leaks', async () => {
    const teacher = layerAndCell('gru', 301);
    const { layer, weights, build } = layerAndCell('gru', 401);
    const x = tf.tensor3d(uniform(B * T * I, 11, 1), [B, T, I]);
    const y = tf.tidy(() => teacher.layer.apply(x) as tf.Tensor3D);
    const before = tf.memory().numTensors;
    const pelkBefore = backend.memory().tensors;
    const rnn = pelkRecurrent(weights, { build, backend, method: 'quasi-deer', evaluate: { tolerance: 1e-5 } });
    const ours = tf.train.adam(0.05);
    const theirs = tf.train.adam(0.05);
    const layerVars = layer.trainableWeights.map((w) => w.read() as tf.Variable);
    const lossesOurs: number[] = [];
    const lossesTheirs: number[] = [];
    for (let step = 0; step < 25; step++) {
      const solved = await rnn.solve(x);
      const a = ours.minimize(() => tf.losses.meanSquaredError(y, solved.states()) as tf.Scalar, true, Object.values(weights));
      const b = theirs.minimize(() => tf.losses.meanSquaredError(y, layer.apply(x) as tf.Tensor) as tf.Scalar, true, layerVars);
      lossesOurs.push((await a!.data())[0]);
      lossesTheirs.push((await b!.data())[0]);
      tf.dispose([a!, b!]);
    }
    for (let k = 0; k < lossesOurs.length; k++) {
      expect(Math.abs(lossesOurs[k] - lossesTheirs[k]) / lossesTheirs[k], `step ${k}: ${lossesOurs[k]} vs ${lossesTheirs[k]}`).toBeLessThanOrEqual(1e-2);
    }
    expect(lossesOurs[lossesOurs.length - 1]).toBeLessThan(0.5 * lossesOurs[0]);
    // Adam's moment estimates are the only tensors the loops add (two per variable per optimizer).
    ours.dispose();
    theirs.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(backend.memory().tensors).toBe(pelkBefore);
    tf.dispose([x, y, ...Object.values(weights), ...Object.values(teacher.weights)]);
    layer.dispose();
    teacher.layer.dispose();
  });

  it('refuses what it cannot train, before solving', async () => {
    const { weights, build } = layerAndCell('elman', 501);
    expect(() => pelkRecurrent({}, { build })).toThrow(/weights: expected an object of tf.Variable/);
    expect(() => pelkRecurrent({ kernel: tf.zeros([2, 2]) as never }, { build })).toThrow(/weights.kernel: expected a tf.Variable/);
    const wrongNames = pelkRecurrent({ w: weights.kernel, recurrentKernel: weights.recurrentKernel, bias: weights.bias }, {
      build: (w) => build({ kernel: w.w, recurrentKernel: w.recurrentKernel, bias: w.bias }),
      backend,
    });
    const x = tf.zeros([1, 4, I]) as tf.Tensor3D;
    const solved = await wrongNames.solve(x);
    expect(() => tf.variableGrads(() => tf.sum(solved.states()) as tf.Scalar, [weights.kernel])).toThrow(/'w', which the cell has no gradient for/);
    await expect(wrongNames.solve(tf.zeros([4, I]) as never)).rejects.toThrow(/inputs: expected a tf.Tensor3D/);
    tf.dispose([x, ...Object.values(weights)]);
  });
});

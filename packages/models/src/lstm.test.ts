import { NonFiniteError, ShapeError } from '@pelk/core';
import { describe, expect, it } from 'vitest';
import { lstm } from './lstm.js';
import type { TorchWeightsSpec } from './types.js';
import { cellContract, randomArray, randomMatrix, thrownBy } from '../test/support.js';

const I = 3;
const H = 4;

function kerasWeights(seed: number, scale = 0.6) {
  return {
    kernel: randomMatrix(I, 4 * H, seed, scale),
    recurrentKernel: randomMatrix(H, 4 * H, seed + 1, scale),
    bias: Array.from(randomArray(4 * H, seed + 2, scale)),
  };
}

describe('lstm cells', () => {
  cellContract('torch (random)', () => lstm.random({ inputSize: I, hiddenSize: H, seed: 2, scale: 0.8 }));
  cellContract('keras sigmoid', () => lstm.keras({ ...kerasWeights(12), recurrentActivation: 'sigmoid' }));
  cellContract('keras hardSigmoid (tfjs default)', () => lstm.keras(kerasWeights(22, 1.2)), { inputScale: 2 });
  cellContract('keras relu activation', () => lstm.keras({ ...kerasWeights(32), activation: 'relu', recurrentActivation: 'sigmoid' }));
});

describe('lstm factories', () => {
  it('keras equals torch with transposed kernels (same gate order i, f, g, o)', () => {
    const k = kerasWeights(5);
    const T = (m: number[][]) => m[0].map((_, c) => m.map((row) => row[c]));
    const a = lstm.keras({ ...k, recurrentActivation: 'sigmoid' });
    const b = lstm.torch({ weight_ih_l0: T(k.kernel), weight_hh_l0: T(k.recurrentKernel), bias_ih_l0: k.bias });
    expect(a.stateSize).toBe(2 * H);
    expect(b.toSpec()).toMatchObject({ type: 'lstm', convention: 'torch', inputSize: I, hiddenSize: H });
    expect('bias_hh_l0' in b.toSpec().weights).toBe(false);
  });

  it('rejects bad weights with typed errors naming the field', () => {
    const w = lstm.random({ inputSize: 3, hiddenSize: 8, seed: 1 }).toSpec().weights as TorchWeightsSpec;
    expect(() => lstm.torch({ ...w, weight_hh_l0: w.weight_hh_l0.slice(0, 31) })).toThrow(
      /weights.weight_hh_l0: expected shape \[32, 8\], received shape \[31, 8\]/,
    );
    expect(() => lstm.torch({ ...w, weight_hh_l0: w.weight_hh_l0.slice(0, 31) })).toThrow(ShapeError);
    expect(() => lstm.torch({ ...w, weight_ih_l0: [[1, 2, 3]] })).toThrow(/weights.weight_ih_l0: expected shape \[4·hiddenSize/);
    const bad = w.weight_ih_l0.map((row) => row.slice());
    bad[0][0] = Number.POSITIVE_INFINITY;
    expect(() => lstm.torch({ ...w, weight_ih_l0: bad })).toThrow(NonFiniteError);
    expect(() => lstm.keras({ ...kerasWeights(1), bias: [[1]] })).toThrow(/bias: expected shape \[16\]/);
    expect(() => lstm.keras({ ...kerasWeights(1), recurrentActivation: 'softsign' as never })).toThrow(/recurrentActivation/);
  });
});

describe('lstm options: unknown keys are errors', () => {
  it('torch options, random options, keras configs and weight names', () => {
    const w = lstm.random({ inputSize: 3, hiddenSize: 2, seed: 1 }).toSpec().weights as TorchWeightsSpec;
    const o = thrownBy(() => lstm.torch(w, { hidden_size: 2 } as never));
    expect(o.field).toBe('options.hidden_size');
    expect(o.expected).toBe('only the keys `inputSize`, `hiddenSize`');
    expect(o.received).toBe('an unknown key `hidden_size` (did you mean `hiddenSize`?)');
    const r = thrownBy(() => lstm.random({ inputSize: 3, hiddenSize: 2, sead: 1 } as never));
    expect(r.field).toBe('options.sead');
    expect(r.received).toBe('an unknown key `sead` (did you mean `seed`?)');
    const k = thrownBy(() => lstm.keras({ ...kerasWeights(1), recurrent_activation: 'sigmoid' } as never));
    expect(k.field).toBe('config.recurrent_activation');
    expect(k.received).toMatch(/did you mean `recurrentActivation`\?/);
    const p = thrownBy(() => lstm.torch({ ...w, weight_hr_l0: [[0]] } as never));
    expect(p.code).toBe('UNSUPPORTED');
    expect(p.field).toBe('weights.weight_hr_l0');
    expect(p.received).toMatch(/LSTM projection \(proj_size > 0 is not supported\)/);
    const l2 = thrownBy(() => lstm.torch({ ...w, bias_ih_l2: w.bias_ih_l0 } as never));
    expect(l2.code).toBe('UNSUPPORTED');
    expect(l2.received).toMatch(/layer 3 .*pelk supports one layer/);
  });
});

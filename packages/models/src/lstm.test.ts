import { NonFiniteError, ShapeError } from '@pelk/core';
import { describe, expect, it } from 'vitest';
import { lstm } from './lstm.js';
import type { TorchWeightsSpec } from './types.js';
import { cellContract, randomArray, randomMatrix } from './test-support.js';

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

import { InvalidArgumentError, ShapeError } from '@pelk/core';
import { describe, expect, it } from 'vitest';
import { elman } from './elman.js';
import type { TorchWeightsSpec } from './types.js';
import { cellContract, randomArray, randomMatrix } from './test-support.js';

describe('elman cells', () => {
  cellContract('torch tanh (random)', () => elman.random({ inputSize: 3, hiddenSize: 6, seed: 4, scale: 0.7 }));
  cellContract('torch relu (random)', () => elman.random({ inputSize: 3, hiddenSize: 6, seed: 5, nonlinearity: 'relu' }));
  cellContract('keras SimpleRNN tanh', () =>
    elman.keras({ kernel: randomMatrix(3, 6, 1, 0.5), recurrentKernel: randomMatrix(6, 6, 2, 0.5), bias: Array.from(randomArray(6, 3, 0.5)) }),
  );
});

describe('elman factories', () => {
  it('rejects bad weights and options with typed errors', () => {
    const w = elman.random({ inputSize: 3, hiddenSize: 8, seed: 1 }).toSpec().weights as TorchWeightsSpec;
    expect(() => elman.torch({ ...w, bias_ih_l0: [0] })).toThrow(ShapeError);
    expect(() => elman.torch({ ...w, bias_ih_l0: [0] })).toThrow(/weights.bias_ih_l0: expected shape \[8\], received shape \[1\]/);
    expect(() => elman.torch(w, { nonlinearity: 'sigmoid' as never })).toThrow(InvalidArgumentError);
    expect(() => elman.torch(w, { nonlinearity: 'sigmoid' as never })).toThrow(/options.nonlinearity/);
    expect(() => elman.torch({ ...w, weight_hh_l0: 'x' } as never)).toThrow(/weights.weight_hh_l0: expected nested arrays/);
    expect(() => elman.torch({ ...w, weight_hh_l0: [[1, 2], [3]] } as never)).toThrow(/weights.weight_hh_l0\[1\]: expected an array of length 2/);
  });
});

import { CpuBackend } from '@pelk/backend-cpu';
import { NonFiniteError, ShapeError } from '@pelk/core';
import { describe, expect, it } from 'vitest';
import { gru } from './gru.js';
import { cellContract, randomArray, randomMatrix, thrownBy } from '../test/support.js';

const I = 3;
const H = 5;

function kerasWeights(seed: number, twoBiasRows: boolean, scale = 0.6) {
  return {
    kernel: randomMatrix(I, 3 * H, seed, scale),
    recurrentKernel: randomMatrix(H, 3 * H, seed + 1, scale),
    bias: twoBiasRows ? randomMatrix(2, 3 * H, seed + 2, scale) : Array.from(randomArray(3 * H, seed + 2, scale)),
  };
}

function flaxParams(seed: number) {
  const dense = (fan: number, k: number, bias: boolean) => ({
    kernel: randomMatrix(fan, H, seed + k, 0.5),
    ...(bias ? { bias: Array.from(randomArray(H, seed + 10 + k, 0.5)) } : {}),
  });
  return { ir: dense(I, 1, true), iz: dense(I, 2, true), in: dense(I, 3, true), hr: dense(H, 4, false), hz: dense(H, 5, false), hn: dense(H, 6, true) };
}

describe('gru cells', () => {
  cellContract('torch (random)', () => gru.random({ inputSize: I, hiddenSize: H, seed: 3, scale: 0.8 }));
  cellContract('flax', () => gru.flax(flaxParams(11)));
  cellContract('keras resetAfter=true sigmoid', () => gru.keras({ ...kerasWeights(21, true), resetAfter: true, recurrentActivation: 'sigmoid' }));
  cellContract('keras resetAfter=true hardSigmoid', () => gru.keras({ ...kerasWeights(31, true, 1.2) }), { inputScale: 2 });
  cellContract('keras resetAfter=false sigmoid', () => gru.keras({ ...kerasWeights(41, false), recurrentActivation: 'sigmoid' }));
  cellContract('keras resetAfter=false hardSigmoid', () => gru.keras({ ...kerasWeights(51, false, 1.2) }), { inputScale: 2 });
  cellContract('keras resetAfter=false relu', () => gru.keras({ ...kerasWeights(61, false), activation: 'relu', recurrentActivation: 'sigmoid' }));
  cellContract('keras resetAfter=true linear', () => gru.keras({ ...kerasWeights(71, true), activation: 'linear' }));
});

describe('gru conventions agree', () => {
  const backend = new CpuBackend();
  const stepOnce = (cell: ReturnType<typeof gru.random>, x: Float64Array, h: Float64Array) =>
    backend.tidy(() => {
      const inputs = backend.fromArray(x, [1, 1, I], 'float64');
      const bound = cell.bind(backend, { dtype: 'float64', inputs, batch: 1, steps: 1 });
      const out = Array.from(backend.readSync(bound.step(backend.fromArray(h, [1, H], 'float64'), 0)));
      bound.dispose();
      return backend.fromArray(out, [H], 'float64');
    });
  const x = randomArray(I, 5);
  const h = randomArray(H, 6);

  it('keras resetAfter=true with a [2, 3H] bias equals the torch form after reordering (z, r, h) → (r, z, n)', () => {
    const k = kerasWeights(81, true);
    const keras = gru.keras({ ...k, recurrentActivation: 'sigmoid' });
    const perm = (m: number[][]) => m.map((row) => [...row.slice(H, 2 * H), ...row.slice(0, H), ...row.slice(2 * H)]);
    const transposeM = (m: number[][]) => m[0].map((_, c) => m.map((row) => row[c]));
    const torch = gru.torch({
      weight_ih_l0: transposeM(perm(k.kernel)),
      weight_hh_l0: transposeM(perm(k.recurrentKernel)),
      bias_ih_l0: perm([k.bias[0] as number[]])[0],
      bias_hh_l0: perm([k.bias[1] as number[]])[0],
    });
    const a = backend.readSync(stepOnce(keras, x, h));
    const b = backend.readSync(stepOnce(torch, x, h));
    for (let i = 0; i < H; i++) expect(a[i]).toBeCloseTo(b[i], 14);
  });

  it('flax equals torch with b_hr = b_hz = 0', () => {
    const f = flaxParams(91);
    const flax = gru.flax({ params: f });
    const T = (m: number[][]) => m[0].map((_, c) => m.map((row) => row[c]));
    const torch = gru.torch({
      weight_ih_l0: [...T(f.ir.kernel), ...T(f.iz.kernel), ...T(f.in.kernel)],
      weight_hh_l0: [...T(f.hr.kernel), ...T(f.hz.kernel), ...T(f.hn.kernel)],
      bias_ih_l0: [...f.ir.bias!, ...f.iz.bias!, ...f.in.bias!],
      bias_hh_l0: [...new Array(2 * H).fill(0), ...f.hn.bias!],
    });
    const a = backend.readSync(stepOnce(flax, x, h));
    const b = backend.readSync(stepOnce(torch, x, h));
    for (let i = 0; i < H; i++) expect(a[i]).toBeCloseTo(b[i], 14);
  });

  it('keras resetAfter=false follows tfjs-layers: n = act(W_in x + b_in + U_n (r ⊙ h))', () => {
    const k = kerasWeights(101, false);
    const cell = gru.keras(k);
    // Host reference, Keras layout (columns z | r | h), hardSigmoid gates.
    const hs = (v: number) => Math.min(1, Math.max(0, 0.2 * v + 0.5));
    const col = (m: number[][], v: ArrayLike<number>, c: number) => m.reduce((s, row, i) => s + row[c] * v[i], 0);
    const bias = k.bias as number[];
    const z = Array.from({ length: H }, (_, j) => hs(col(k.kernel, x, j) + bias[j] + col(k.recurrentKernel, h, j)));
    const r = Array.from({ length: H }, (_, j) => hs(col(k.kernel, x, H + j) + bias[H + j] + col(k.recurrentKernel, h, H + j)));
    const rh = h.map((v, i) => v * r[i]);
    const n = Array.from({ length: H }, (_, j) => Math.tanh(col(k.kernel, x, 2 * H + j) + bias[2 * H + j] + col(k.recurrentKernel, rh, 2 * H + j)));
    const expected = n.map((v, j) => (1 - z[j]) * v + z[j] * h[j]);
    const got = backend.readSync(stepOnce(cell, x, h));
    for (let i = 0; i < H; i++) expect(got[i]).toBeCloseTo(expected[i], 14);
  });
});

describe('gru validation', () => {
  const good = () => {
    const c = gru.random({ inputSize: 3, hiddenSize: 8, seed: 1 }).toSpec();
    return { ...(c.weights as unknown as Record<string, number[][] | number[]>) };
  };

  it('names the weight, the expected and the received shape', () => {
    const w = good();
    w.weight_hh_l0 = (w.weight_hh_l0 as number[][]).map((row) => row.slice(0, 7));
    const err = (() => {
      try {
        gru.torch(w as never);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ShapeError);
    expect((err as ShapeError).field).toBe('weights.weight_hh_l0');
    expect((err as ShapeError).expected).toBe('shape [24, 8]');
    expect((err as ShapeError).received).toBe('shape [24, 7]');
  });

  it('rejects non-finite weights, bad biases, sizes and activations with typed errors', () => {
    const w = good();
    (w.weight_ih_l0 as number[][])[2][1] = Number.NaN;
    expect(() => gru.torch(w as never)).toThrow(NonFiniteError);
    expect(() => gru.torch({ ...good(), bias_hh_l0: [1, 2] } as never)).toThrow(/weights.bias_hh_l0: expected shape \[24\]/);
    expect(() => gru.torch(good() as never, { hiddenSize: 4 })).toThrow(/weights.weight_ih_l0: expected shape \[12, 3\]/);
    expect(() => gru.torch({ ...good(), weight_ih_l0: [[1, 2]] } as never)).toThrow(ShapeError);
    expect(() => gru.keras({ ...kerasWeights(1, false), activation: 'swish' as never })).toThrow(/activation: expected one of/);
    expect(() => gru.keras({ ...kerasWeights(1, true), resetAfter: false })).toThrow(/resetAfter/);
    expect(() => gru.keras({ ...kerasWeights(1, false), recurrentKernel: randomMatrix(H, 3 * H + 1, 1) })).toThrow(
      /recurrentKernel: expected shape \[5, 15\], received shape \[5, 16\]/,
    );
    const f = flaxParams(1);
    expect(() => gru.flax({ ...f, hn: { kernel: f.hn.kernel } })).toThrow(/params.hn.bias/);
    expect(() => gru.flax({ ...f, hr: { ...f.hr, bias: [0, 0, 0, 0, 0] } })).toThrow(/params.hr.bias/);
    expect(() => gru.random({ inputSize: 0, hiddenSize: 2 })).toThrow(/options.inputSize/);
  });

  it('accepts typed arrays and { data, shape }', () => {
    const w = good();
    const cell = gru.torch({
      weight_ih_l0: { data: Float64Array.from((w.weight_ih_l0 as number[][]).flat()), shape: [24, 3] },
      weight_hh_l0: (w.weight_hh_l0 as number[][]).map((row) => Float32Array.from(row)),
      bias_ih_l0: Float64Array.from(w.bias_ih_l0 as number[]),
      bias_hh_l0: w.bias_hh_l0 as number[],
    });
    expect(cell.hiddenSize).toBe(8);
    expect(cell.inputSize).toBe(3);
  });

  it('checks the bind context', () => {
    const backend = new CpuBackend();
    const cell = gru.random({ inputSize: 3, hiddenSize: 4, seed: 1 });
    backend.tidy(() => {
      const inputs = backend.fill([2, 5, 3], 0, 'float64');
      expect(() => cell.bind(backend, { dtype: 'float64', inputs, batch: 2, steps: 4 })).toThrow(
        'context.inputs: expected a tensor of shape [2, 4, 3], received shape [2, 5, 3]',
      );
      expect(() => cell.bind(backend, { dtype: 'float64', inputs: null, batch: 2, steps: 5 })).toThrow(ShapeError);
      expect(() => cell.bind(backend, { dtype: 'float32', inputs, batch: 2, steps: 5 })).toThrow(/context.inputs.dtype/);
      const bound = cell.bind(backend, { dtype: 'float64', inputs, batch: 2, steps: 5 });
      expect(() => bound.apply(backend.fill([2, 5, 3], 0, 'float64'))).toThrow('prev: expected shape [2, 5, 4], received shape [2, 5, 3]');
      expect(() => bound.linearize(backend.fill([2, 5, 4], 0, 'float64'), 'full' as never)).toThrow(/kind/);
      bound.dispose();
      expect(() => bound.step(backend.fill([2, 4], 0, 'float64'), 0)).toThrow(/disposed/);
    });
    expect(backend.memory().tensors).toBe(0);
  });

  it('is deterministic for a seed', () => {
    const a = gru.random({ inputSize: 2, hiddenSize: 4, seed: 9 }).toSpec();
    const b = gru.random({ inputSize: 2, hiddenSize: 4, seed: 9 }).toSpec();
    const c = gru.random({ inputSize: 2, hiddenSize: 4, seed: 10 }).toSpec();
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    const all = (a.weights as { weight_hh_l0: number[][] }).weight_hh_l0.flat();
    expect(Math.max(...all.map(Math.abs))).toBeLessThanOrEqual(0.5);
  });
});

describe('gru options: unknown keys are errors', () => {
  it('torch options and weight names', () => {
    const w = gru.random({ inputSize: I, hiddenSize: H, seed: 1 }).toSpec().weights as unknown as Record<string, number[][]>;
    const o = thrownBy(() => gru.torch(w as never, { hiddensize: H } as never));
    expect(o.code).toBe('INVALID_ARGUMENT');
    expect(o.field).toBe('options.hiddensize');
    expect(o.message).toBe(
      'options.hiddensize: expected only the keys `inputSize`, `hiddenSize`, received an unknown key `hiddensize` (did you mean `hiddenSize`?)',
    );
    const l1 = thrownBy(() => gru.torch({ ...w, weight_ih_l1: w.weight_ih_l0 } as never));
    expect(l1.code).toBe('UNSUPPORTED');
    expect(l1.field).toBe('weights.weight_ih_l1');
    expect(l1.received).toMatch(/^`weight_ih_l1`, the weights of layer 2 \(num_layers > 1 is not supported: pelk supports one layer/);
    const typo = thrownBy(() => gru.torch({ ...w, wieght_hh_l0: w.weight_hh_l0 } as never));
    expect(typo.code).toBe('INVALID_ARGUMENT');
    expect(typo.received).toBe('an unknown key `wieght_hh_l0` (did you mean `weight_hh_l0`?)');
  });

  it('keras configs, flax options and params, random options', () => {
    const k = thrownBy(() => gru.keras({ ...kerasWeights(1, false), reset_after: true } as never));
    expect(k.field).toBe('config.reset_after');
    expect(k.received).toBe('an unknown key `reset_after` (did you mean `resetAfter`?)');
    expect(k.expected).toBe(
      'only the keys `kernel`, `recurrentKernel`, `bias`, `inputSize`, `hiddenSize`, `resetAfter`, `activation`, `recurrentActivation`',
    );
    const f = thrownBy(() => gru.flax(flaxParams(1), { gateFn: 'sigmoid' } as never));
    expect(f.field).toBe('options.gateFn');
    expect(f.received).toBe('an unknown key `gateFn`');
    const p = flaxParams(1);
    const extra = thrownBy(() => gru.flax({ ...p, hn: { ...p.hn, scale: [1] } } as never));
    expect(extra.field).toBe('params.hn.scale');
    const wrapped = thrownBy(() => gru.flax({ params: p, batch_stats: {} } as never));
    expect(wrapped.field).toBe('params.batch_stats');
    expect(() => gru.flax({ params: p })).not.toThrow();
    const r = thrownBy(() => gru.random({ inputSize: I, hiddenSize: H, scal: 0.1 } as never));
    expect(r.field).toBe('options.scal');
    expect(r.received).toMatch(/did you mean `scale`\?/);
  });
});

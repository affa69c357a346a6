import { CpuBackend } from '@pelk/backend-cpu';
import { InvalidArgumentError, NonFiniteError, ShapeError, evaluate } from '@pelk/core';
import { describe, expect, it } from 'vitest';
import { elman } from './elman.js';
import { gru } from './gru.js';
import { lorenz96 } from './lorenz96.js';
import { lstm } from './lstm.js';
import { customCell } from './custom.js';
import { type ModelSpecJson, readModelSpec, writeModelSpec } from './spec.js';
import { maxAbsDiff, randomArray, randomMatrix, readFixture, rollout } from './test-support.js';
import type { ModelCell, TorchWeightsSpec } from './types.js';

const FIXTURES = ['gru-torch-small', 'lstm-torch-small', 'elman-torch-small', 'lorenz96-small'] as const;

describe('fixtures', () => {
  const backend = new CpuBackend();

  for (const name of FIXTURES) {
    it(`${name}: stepping sequentially reproduces the oracle states to 1e-9`, () => {
      const spec = readModelSpec(readFixture(name));
      const { cell, steps: T } = spec;
      const D = cell.stateSize;
      const start = backend.memory().tensors;
      const inputs = spec.inputs ? backend.fromArray(spec.inputs.flat(), [1, T, cell.inputSize], 'float64') : null;
      const bound = cell.bind(backend, { dtype: 'float64', inputs, batch: 1, steps: T });
      const states = rollout(backend, bound, spec.initialState!, T, D);
      bound.dispose();
      if (inputs) backend.dispose(inputs);
      expect(backend.memory().tensors).toBe(start);
      expect(spec.states).toBeDefined();
      expect(maxAbsDiff(states, spec.states!.flat())).toBeLessThan(1e-9);
    });

    it(`${name}: writing what was read reproduces the JSON`, () => {
      const json = readFixture(name);
      const spec = readModelSpec(json);
      const out = writeModelSpec(spec.cell, spec);
      expect(out).toEqual(json);
      expect(spec.raw).toBe(json);
    });
  }

  it('every fixture binds and steps in float32 too (weights and projection uploaded as float32)', () => {
    for (const name of FIXTURES) {
      const spec = readModelSpec(readFixture(name));
      const { cell } = spec;
      // Lorenz-96 is chaotic: compare float32 only over a short horizon (FORMAT.md).
      const T = cell.kind === 'lorenz96' ? 50 : spec.steps;
      const inputs = spec.inputs ? backend.fromArray(spec.inputs.slice(0, T).flat(), [1, T, cell.inputSize], 'float32') : null;
      const bound = cell.bind(backend, { dtype: 'float32', inputs, batch: 1, steps: T });
      const states = rollout(backend, bound, spec.initialState!, T, cell.stateSize, 'float32');
      bound.dispose();
      if (inputs) backend.dispose(inputs);
      expect(maxAbsDiff(states, spec.states!.slice(0, T).flat())).toBeLessThan(1e-4);
    }
  });

  it('gru-torch-small: DEER and quasi-DEER through core evaluate match the oracle', async () => {
    const spec = readModelSpec(readFixture('gru-torch-small'));
    for (const method of ['deer', 'quasi-deer'] as const) {
      const result = await evaluate(spec.cell, spec.inputs, { backend, method, tolerance: 1e-11, initialState: spec.initialState! });
      expect(result.converged).toBe(true);
      expect(maxAbsDiff(await result.read(), spec.states!.flat())).toBeLessThan(1e-9);
      result.dispose();
    }
  });

  it('lstm-torch-small and lorenz96-small: DEER through core evaluate matches the oracle', async () => {
    for (const name of ['lstm-torch-small', 'lorenz96-small']) {
      const spec = readModelSpec(readFixture(name));
      const result = await evaluate(spec.cell, spec.inputs, {
        backend,
        method: 'deer',
        tolerance: 1e-11,
        initialState: spec.initialState!,
        steps: spec.cell.inputSize === 0 ? spec.steps : undefined,
      });
      expect(result.converged).toBe(true);
      expect(maxAbsDiff(await result.read(), spec.states!.flat())).toBeLessThan(1e-9);
      result.dispose();
    }
  });
});

describe('model-spec round trips', () => {
  const backend = new CpuBackend();
  const I = 2;
  const H = 3;
  const inputs = randomMatrix(4, I, 1);
  const stepAll = (cell: ModelCell, s0: number[]): Float64Array => {
    const x = cell.inputSize ? backend.fromArray(inputs.flat(), [1, 4, I], 'float64') : null;
    const bound = cell.bind(backend, { dtype: 'float64', inputs: x, batch: 1, steps: 4 });
    const out = rollout(backend, bound, s0, 4, cell.stateSize);
    bound.dispose();
    if (x) backend.dispose(x);
    return out;
  };
  const flax = () => {
    const dense = (fan: number, k: number, bias: boolean) => ({
      kernel: randomMatrix(fan, H, k, 0.5),
      ...(bias ? { bias: Array.from(randomArray(H, 10 + k, 0.5)) } : {}),
    });
    return { ir: dense(I, 1, true), iz: dense(I, 2, true), in: dense(I, 3, true), hr: dense(H, 4, false), hz: dense(H, 5, false), hn: dense(H, 6, true) };
  };
  const cells: Array<[string, () => ModelCell]> = [
    ['gru torch', () => gru.random({ inputSize: I, hiddenSize: H, seed: 1 })],
    ['gru flax', () => gru.flax(flax(), { recurrentActivation: 'hardSigmoid' })],
    [
      'gru keras resetAfter=false',
      () => gru.keras({ kernel: randomMatrix(I, 3 * H, 1), recurrentKernel: randomMatrix(H, 3 * H, 2), bias: Array.from(randomArray(3 * H, 3)) }),
    ],
    [
      'gru keras resetAfter=true',
      () =>
        gru.keras({
          kernel: Float32Array.from(randomArray(I * 3 * H, 1)),
          recurrentKernel: randomMatrix(H, 3 * H, 2),
          bias: randomMatrix(2, 3 * H, 3),
          inputSize: I,
          recurrentActivation: 'sigmoid',
        }),
    ],
    ['lstm torch', () => lstm.random({ inputSize: I, hiddenSize: H, seed: 2 })],
    [
      'lstm keras',
      () => lstm.keras({ kernel: randomMatrix(I, 4 * H, 1), recurrentKernel: randomMatrix(H, 4 * H, 2), activation: 'relu' }),
    ],
    ['elman torch relu', () => elman.random({ inputSize: I, hiddenSize: H, seed: 3, nonlinearity: 'relu' })],
    ['elman keras', () => elman.keras({ kernel: randomMatrix(I, H, 1), recurrentKernel: randomMatrix(H, H, 2), activation: 'linear' })],
    ['lorenz96 euler', () => lorenz96({ dimension: 6, forcing: 3.5, dt: 0.02, integrator: 'euler' })],
  ];
  for (const [label, make] of cells) {
    it(`${label}: write → JSON text → read gives the same cell and data`, () => {
      const cell = make();
      const s0 = Array.from(randomArray(cell.stateSize, 9));
      const written = writeModelSpec(cell, {
        name: label,
        inputs: cell.inputSize ? inputs : null,
        initialState: s0,
        steps: 4,
      });
      const text = JSON.stringify(written);
      const read = readModelSpec(JSON.parse(text));
      expect(read.cell.toSpec()).toEqual(cell.toSpec());
      expect(read.cell.kind).toBe(cell.kind);
      expect(JSON.stringify(writeModelSpec(read.cell, read))).toBe(text);
      expect(read.steps).toBe(4);
      expect(read.initialState).toEqual(s0);
      expect(Array.from(stepAll(read.cell, s0))).toEqual(Array.from(stepAll(cell, s0)));
    });
  }
});

describe('model-spec validation', () => {
  const base = () => structuredClone(readFixture('gru-torch-small')) as ModelSpecJson & { cell: { weights: TorchWeightsSpec; hiddenSize: number } };

  it("checks an 'ar' cell's inner cell (the ar cell itself is tested in ar.test.ts)", () => {
    const json = { ...base(), cell: { type: 'ar', inner: {} } };
    expect(() => readModelSpec(json)).toThrow(InvalidArgumentError);
    expect(() => readModelSpec(json)).toThrow("cell.inner.type: expected one of 'gru', 'lstm', 'elman' (the inner cell of an 'ar' cell), received undefined");
  });

  it('names spec fields in errors', () => {
    const j = base();
    j.cell.weights.weight_hh_l0 = j.cell.weights.weight_hh_l0.map((r) => r.slice(0, 7));
    expect(() => readModelSpec(j)).toThrow(ShapeError);
    expect(() => readModelSpec(j)).toThrow('cell.weights.weight_hh_l0: expected shape [24, 8], received shape [24, 7]');
    const k = base();
    k.cell.hiddenSize = 7;
    expect(() => readModelSpec(k)).toThrow('cell.weights.weight_ih_l0: expected shape [21, 3], received shape [24, 3]');
    const n = base();
    (n.cell.weights.bias_ih_l0 as unknown[])[3] = null;
    expect(() => readModelSpec(n)).toThrow(/cell.weights.bias_ih_l0\[3\]: expected a number/);
    const inf = base();
    inf.initialState![0] = Number.POSITIVE_INFINITY;
    expect(() => readModelSpec(inf)).toThrow(NonFiniteError);
    const s = base();
    s.steps = 511;
    expect(() => readModelSpec(s)).toThrow('inputs: expected shape [511, 3], received shape [512, 3]');
    const st = base();
    st.states = st.states!.slice(1);
    expect(() => readModelSpec(st)).toThrow(/states: expected shape \[512, 8\]/);
    expect(() => readModelSpec({ ...base(), cell: { ...base().cell, convention: 'jax' } })).toThrow(/cell.convention/);
    expect(() => readModelSpec({ ...base(), cell: { ...base().cell, type: 'rnn' } })).toThrow(/cell.type/);
    expect(() => readModelSpec({ ...base(), stateLayout: '[h, c]' })).toThrow(/stateLayout/);
    expect(() => readModelSpec({ ...base(), inputs: null })).toThrow(/inputs: expected \[T\]\[3\]/);
    expect(() => readModelSpec(42)).toThrow(/spec: expected an object/);
    const l = structuredClone(readFixture('lorenz96-small')) as Partial<ModelSpecJson>;
    delete l.steps;
    delete l.states;
    expect(() => readModelSpec(l)).toThrow(/steps: expected a positive integer/);
    expect(() => readModelSpec({ ...l, steps: 3, inputs: [[1]] })).toThrow(/inputs: expected null/);
  });

  it('refuses to write cells that cannot describe themselves', () => {
    const custom = customCell({ stateSize: 1, inputSize: 0, step: (_b, s) => s });
    expect(() => writeModelSpec(custom as never, { inputs: null, initialState: null, steps: 2 })).toThrow(/cell: expected a gru, lstm/);
    expect(() => writeModelSpec(lorenz96({ dimension: 3 }), { inputs: null, initialState: [1, 2], steps: 2 })).toThrow(
      'initialState: expected shape [3], received shape [2]',
    );
  });
});

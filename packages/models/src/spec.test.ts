import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CpuBackend } from '@pelk/backend-cpu';
import { type InputsLike, InvalidArgumentError, NonFiniteError, ShapeError, evaluate } from '@pelk/core';
import { describe, expect, it } from 'vitest';
import { ar } from './ar.js';
import { elman } from './elman.js';
import { gru } from './gru.js';
import { lorenz96 } from './lorenz96.js';
import { lstm } from './lstm.js';
import { customCell } from './custom.js';
import { type ModelSpecJson, readModelSpec, writeModelSpec } from './spec.js';
import { maxAbsDiff, randomArray, randomMatrix, readFixture, rollout } from '../test/support.js';
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

/** The typed error `fn` throws; fails when it throws nothing or something else. */
function thrown(fn: () => unknown): InvalidArgumentError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidArgumentError);
    return e as InvalidArgumentError;
  }
  throw new Error('expected an InvalidArgumentError');
}

describe('model-spec strict keys', () => {
  const fixture = (name: string) => structuredClone(readFixture(name)) as Record<string, unknown> & { cell: Record<string, unknown> };
  const shared = fileURLToPath(new URL('../../../../shared/fixtures/', import.meta.url));
  const shipped = fileURLToPath(new URL('../../conformance/fixtures/', import.meta.url));

  it('reads every shipped and shared fixture (their keys are all known)', () => {
    const files = [shipped, ...(existsSync(shared) ? [shared] : [])].flatMap((dir) =>
      readdirSync(dir)
        .filter((f) => f.endsWith('.json'))
        .map((f) => join(dir, f)),
    );
    expect(files.length).toBeGreaterThanOrEqual(4);
    for (const file of files) {
      const json = JSON.parse(readFileSync(file, 'utf8'));
      // Gradient fixtures (grad-*.json) add a cotangent and PyTorch's gradients to a model spec:
      // the spec is the rest of the file.
      const { note: _, cotangent: __, loss: ___, gradients: ____, ...spec } = json;
      if (file.split(/[\\/]/).pop()!.startsWith('grad-')) expect(Object.keys(json)).toEqual(expect.arrayContaining(['cotangent', 'loss', 'gradients']));
      expect(() => readModelSpec(file.includes('grad-') ? spec : json), file).not.toThrow();
    }
  });

  it('"nonLinearity": "relu" is an error naming the key and the closest one, not a silent tanh', () => {
    const j = fixture('elman-torch-small');
    delete j.cell.nonlinearity;
    j.cell.nonLinearity = 'relu';
    const e = thrown(() => readModelSpec(j));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.field).toBe('cell.nonLinearity');
    expect(e.expected).toBe('only the keys `type`, `convention`, `inputSize`, `hiddenSize`, `weights`, `nonlinearity`');
    expect(e.received).toBe('an unknown key `nonLinearity` (did you mean `nonlinearity`?)');
    expect(e.message).toMatch(/^cell\.nonLinearity: expected only the keys .*received an unknown key `nonLinearity` \(did you mean `nonlinearity`\?\)$/);
  });

  it('a second layer (weight_ih_l1) says that pelk supports one layer', () => {
    for (const name of ['gru-torch-small', 'lstm-torch-small', 'elman-torch-small']) {
      const j = fixture(name);
      const w = j.cell.weights as Record<string, unknown>;
      w.weight_ih_l1 = w.weight_hh_l0;
      w.weight_hh_l1 = w.weight_hh_l0;
      const e = thrown(() => readModelSpec(j));
      expect(e.code).toBe('UNSUPPORTED');
      expect(e.field).toBe('cell.weights.weight_ih_l1');
      expect(e.expected).toMatch(/^only the keys `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0` \(pelk evaluates one layer/);
      expect(e.received).toMatch(/^`weight_ih_l1`, the weights of layer 2 \(num_layers > 1 is not supported: pelk supports one layer/);
    }
    const rev = fixture('gru-torch-small');
    (rev.cell.weights as Record<string, unknown>).bias_hh_l0_reverse = [0];
    const r = thrown(() => readModelSpec(rev));
    expect(r.code).toBe('UNSUPPORTED');
    expect(r.field).toBe('cell.weights.bias_hh_l0_reverse');
    expect(r.received).toMatch(/reverse direction \(bidirectional=True is not supported/);
  });

  it('unknown weight names get the closest known name', () => {
    const j = fixture('gru-torch-small');
    const w = j.cell.weights as Record<string, unknown>;
    w.bias_hh_lO = w.bias_hh_l0;
    delete w.bias_hh_l0;
    const e = thrown(() => readModelSpec(j));
    expect(e.field).toBe('cell.weights.bias_hh_lO');
    expect(e.received).toBe('an unknown key `bias_hh_lO` (did you mean `bias_hh_l0`?)');
  });

  it('unknown top-level keys, cell keys per type, and keys of keras weights, flax params and ar readouts', () => {
    const top = thrown(() => readModelSpec({ ...fixture('gru-torch-small'), initalState: [0] }));
    expect(top.field).toBe('spec.initalState');
    expect(top.received).toBe('an unknown key `initalState` (did you mean `initialState`?)');
    expect(top.expected).toBe('only the keys `name`, `oracle`, `cell`, `stateLayout`, `steps`, `inputs`, `drivers`, `initialState`, `states`');

    // A key that belongs to another type or convention is unknown here.
    const gruNl = fixture('gru-torch-small');
    gruNl.cell.nonlinearity = 'relu';
    expect(thrown(() => readModelSpec(gruNl)).field).toBe('cell.nonlinearity');
    const l96 = fixture('lorenz96-small');
    l96.cell.convention = 'torch';
    expect(thrown(() => readModelSpec(l96)).field).toBe('cell.convention');
    l96.cell = { ...fixture('lorenz96-small').cell, intgrator: 'euler' };
    expect(thrown(() => readModelSpec(l96)).received).toBe('an unknown key `intgrator` (did you mean `integrator`?)');

    const I = 2;
    const H = 3;
    const keras = {
      type: 'gru',
      convention: 'keras',
      inputSize: I,
      hiddenSize: H,
      weights: { kernel: randomMatrix(I, 3 * H, 1), recurrent_kernel: randomMatrix(H, 3 * H, 2) },
      resetAfter: false,
      activation: 'tanh',
      recurrentActivation: 'sigmoid',
    };
    const spec = (cell: unknown) => ({ cell, steps: 1, inputs: [[0, 0]], initialState: null });
    const k = thrown(() => readModelSpec(spec(keras)));
    expect(k.field).toBe('cell.weights.recurrent_kernel');
    expect(k.received).toBe('an unknown key `recurrent_kernel` (did you mean `recurrentKernel`?)');
    const kc = thrown(() => readModelSpec(spec({ ...keras, weights: { kernel: keras.weights.kernel }, reset_after: true })));
    expect(kc.field).toBe('cell.reset_after');
    expect(kc.received).toMatch(/did you mean `resetAfter`\?/);

    const flaxCell = gru.flax({
      ir: { kernel: randomMatrix(I, H, 1), bias: [0, 0, 0] },
      iz: { kernel: randomMatrix(I, H, 2), bias: [0, 0, 0] },
      in: { kernel: randomMatrix(I, H, 3), bias: [0, 0, 0] },
      hr: { kernel: randomMatrix(H, H, 4) },
      hz: { kernel: randomMatrix(H, H, 5) },
      hn: { kernel: randomMatrix(H, H, 6), bias: [0, 0, 0] },
    }).toSpec() as unknown as { weights: Record<string, Record<string, unknown>> };
    const f = structuredClone(flaxCell);
    f.weights.hn.kernal = f.weights.hn.kernel;
    const fe = thrown(() => readModelSpec(spec(f)));
    expect(fe.field).toBe('cell.weights.hn.kernal');
    expect(fe.received).toMatch(/did you mean `kernel`\?/);
    const fp = structuredClone(flaxCell);
    fp.weights.hN = fp.weights.hn;
    expect(thrown(() => readModelSpec(spec(fp))).received).toBe('an unknown key `hN` (did you mean `hn`?)');

    const inner = { type: 'gru', convention: 'torch', inputSize: 1, hiddenSize: 2, weights: { weight_ih_l0: randomMatrix(6, 1, 1), weight_hh_l0: randomMatrix(6, 2, 2) } };
    const arSpec = (cell: unknown) => ({ cell, inputs: null, drivers: [0, 0], initialState: null });
    const readout = { weight: randomMatrix(2, 2, 3), bias: [0, 0], skip: true };
    expect(() => readModelSpec(arSpec({ type: 'ar', inner, readout, noise: 'softplus' }))).not.toThrow();
    const ro = thrown(() => readModelSpec(arSpec({ type: 'ar', inner, readout: { ...readout, skp: true }, noise: 'softplus' })));
    expect(ro.field).toBe('cell.readout.skp');
    expect(ro.received).toMatch(/did you mean `skip`\?/);
    const ai = thrown(() => readModelSpec(arSpec({ type: 'ar', inner: { ...inner, nonlinearity: 'relu' }, readout })));
    expect(ai.field).toBe('cell.inner.nonlinearity');
    const at = thrown(() => readModelSpec(arSpec({ type: 'ar', inner, readout, noize: 'softplus' })));
    expect(at.field).toBe('cell.noize');
    expect(at.received).toMatch(/did you mean `noise`\?/);
  });
});

describe('model specs without data (the sequence given separately)', () => {
  const backend = new CpuBackend();
  /** A fixture with its data removed: the keys absent, or present as `null`. */
  const dataFree = (name: string, how: 'absent' | 'null'): Record<string, unknown> => {
    const { inputs: _i, steps: _s, states: _st, ...model } = structuredClone(readFixture(name)) as ModelSpecJson;
    return how === 'absent' ? model : { ...model, inputs: null, steps: null, states: null };
  };
  const run = async (cell: ModelCell, inputs: InputsLike, initialState: number[] | null) => {
    const result = await evaluate(cell, inputs, { backend, method: 'quasi-deer', tolerance: 1e-11, initialState: initialState ?? undefined });
    expect(result.converged).toBe(true);
    const states = await result.read();
    result.dispose();
    return states;
  };

  for (const how of ['absent', 'null'] as const) {
    it(`data ${how}: with the inputs given separately it evaluates as the spec with data does`, async () => {
      const full = readModelSpec(readFixture('gru-torch-small'));
      const spec = readModelSpec(dataFree('gru-torch-small', how), { inputs: full.inputs! });
      expect(spec.inputs).toBe(full.inputs); // passed through unchanged
      expect(spec.steps).toBe(512);
      expect(spec.states).toBeUndefined();
      expect(spec.cell.toSpec()).toEqual(full.cell.toSpec());
      const want = await run(full.cell, full.inputs, full.initialState);
      expect(Array.from(await run(spec.cell, spec.inputs, spec.initialState))).toEqual(Array.from(want));
      expect(maxAbsDiff(want, full.states!.flat())).toBeLessThan(1e-9);
    });

    it(`data ${how}, no inputs given: an error naming inputs and saying where they can come from`, () => {
      const e = thrown(() => readModelSpec(dataFree('gru-torch-small', how)));
      expect(e.field).toBe('inputs');
      expect(e.expected).toBe(
        "[T][3] data (the 'gru' cell takes inputs) in the spec or given separately (pelk eval: --inputs FILE.npy; API: readModelSpec(json, { inputs }))",
      );
      expect(e.received).toBe(how === 'null' ? 'null' : "nothing (no 'inputs' key)");
      // `{ inputs: null }` and `{}` give nothing either.
      expect(thrown(() => readModelSpec(dataFree('gru-torch-small', how), { inputs: null })).field).toBe('inputs');
      expect(thrown(() => readModelSpec(dataFree('gru-torch-small', how), {})).field).toBe('inputs');
    });
  }

  it('batched inputs ({ data, shape: [B, T, I] }): steps is their T; every cell type with inputs', async () => {
    for (const name of ['gru-torch-small', 'lstm-torch-small', 'elman-torch-small']) {
      const full = readModelSpec(readFixture(name));
      const flat = full.inputs!.flat();
      const spec = readModelSpec(dataFree(name, 'absent'), { inputs: { data: Float64Array.from([...flat, ...flat]), shape: [2, 512, 3] } });
      expect(spec.steps).toBe(512);
      const states = await run(spec.cell, spec.inputs, spec.initialState);
      expect(maxAbsDiff(states.subarray(states.length / 2), full.states!.flat())).toBeLessThan(1e-9);
    }
  });

  it("an 'ar' spec without drivers takes them separately", async () => {
    const cell = ar({
      inner: gru.random({ inputSize: 1, hiddenSize: 3, seed: 1 }),
      readout: { weight: randomMatrix(2, 3, 2, 0.8), bias: [0.1, -0.2], skip: true },
    });
    const drivers = randomMatrix(6, 1, 3);
    const withData = writeModelSpec(cell, { inputs: drivers, initialState: [0, 0, 0, 0] }) as Partial<ModelSpecJson>;
    const { drivers: _d, steps: _s, ...model } = withData;
    const full = readModelSpec(withData);
    const spec = readModelSpec(model, { inputs: drivers });
    expect(spec.steps).toBe(6);
    expect(Array.from(await run(spec.cell, spec.inputs, spec.initialState))).toEqual(Array.from(await run(full.cell, full.inputs, full.initialState)));
    expect(readModelSpec({ ...model, drivers: null }, { inputs: drivers }).steps).toBe(6);
    expect(thrown(() => readModelSpec(model)).field).toBe('drivers');
  });

  it('writeModelSpec with inputs: null writes a spec without data that reads back with the inputs given', async () => {
    const cells: ModelCell[] = [
      gru.random({ inputSize: 2, hiddenSize: 3, seed: 1 }),
      lstm.random({ inputSize: 2, hiddenSize: 3, seed: 2 }),
      elman.random({ inputSize: 2, hiddenSize: 3, seed: 3 }),
      ar({ inner: gru.random({ inputSize: 1, hiddenSize: 3, seed: 4 }), readout: { weight: randomMatrix(2, 3, 5, 0.8), bias: [0.1, -0.2], skip: true } }),
    ];
    for (const cell of cells) {
      const inputs = randomMatrix(7, cell.inputSize, 6);
      const initialState = Array.from({ length: cell.stateSize }, (_, i) => 0.1 * i);
      const weights = JSON.parse(JSON.stringify(writeModelSpec(cell, { inputs: null, initialState, name: 'weights only' }))) as Record<string, unknown>;
      expect(weights, cell.kind).not.toHaveProperty('steps');
      expect(weights, cell.kind).not.toHaveProperty('drivers');
      expect(weights.inputs, cell.kind).toBeNull();
      const spec = readModelSpec(weights, { inputs });
      expect(spec.steps, cell.kind).toBe(7);
      expect(spec.initialState, cell.kind).toEqual(initialState);
      const full = readModelSpec(writeModelSpec(cell, { inputs, initialState }));
      expect(Array.from(await run(spec.cell, spec.inputs, spec.initialState)), cell.kind).toEqual(Array.from(await run(full.cell, full.inputs, full.initialState)));
      // Read without a sequence: the error says where one can come from.
      expect(thrown(() => readModelSpec(weights)).message, cell.kind).toMatch(/given separately \(pelk eval: --inputs FILE\.npy/);
    }
    // Reference states belong to one sequence: not without it.
    const cell = cells[0];
    expect(thrown(() => writeModelSpec(cell, { inputs: null, initialState: null, states: randomMatrix(7, 3, 1) })).field).toBe('states');
    // Autonomous cells have no sequence to leave out: they still need steps or states.
    expect(thrown(() => writeModelSpec(lorenz96({ dimension: 5, forcing: 8, dt: 0.01, integrator: 'rk4' }), { inputs: null, initialState: null })).field).toBe('steps');
  });

  it('what the spec does carry is still checked, and the inputs given are checked against the cell', () => {
    const full = readModelSpec(readFixture('gru-torch-small'));
    const broken = { ...dataFree('gru-torch-small', 'absent'), states: [[1, 2]] };
    expect(() => readModelSpec(broken, { inputs: full.inputs! })).toThrow(/states: expected shape \[1, 8\]/);
    expect(() => readModelSpec({ ...dataFree('gru-torch-small', 'absent'), steps: 0 }, { inputs: full.inputs! })).toThrow(/steps/);
    // The spec's own data, when present, is replaced (its states, which belong to it, are dropped).
    const replaced = readModelSpec(readFixture('gru-torch-small'), { inputs: full.inputs!.slice(0, 10) });
    expect(replaced.steps).toBe(10);
    expect(replaced.states).toBeUndefined();

    const wrongSize = thrown(() => readModelSpec(dataFree('gru-torch-small', 'null'), { inputs: [[1, 2]] }));
    expect(wrongSize).toBeInstanceOf(ShapeError);
    expect(wrongSize.message).toBe(
      "inputs: expected shape [T, 3] or [B, T, 3] with T ≥ 1 (the 'gru' cell's input size is 3), received shape [1, 2]",
    );
    expect(() => readModelSpec(dataFree('gru-torch-small', 'null'), { inputs: { data: new Float64Array(0), shape: [0, 3] } })).toThrow(ShapeError);
    expect(thrown(() => readModelSpec(dataFree('gru-torch-small', 'null'), { inputs: 3 as never })).field).toBe('inputs');
    expect(thrown(() => readModelSpec(readFixture('gru-torch-small'), { input: [[0, 0, 0]] } as never)).field).toBe('options.input');
  });

  it('autonomous cells take no inputs and still need steps (or states)', () => {
    const l = dataFree('lorenz96-small', 'null');
    expect(() => readModelSpec(l)).toThrow(/steps: expected a positive integer/);
    expect(readModelSpec({ ...l, steps: 7 }).steps).toBe(7);
    expect(thrown(() => readModelSpec({ ...l, steps: 7 }, { inputs: [[1]] })).message).toBe(
      "inputs: expected null (a 'lorenz96' cell takes no inputs), received an array of length 1",
    );
  });
});

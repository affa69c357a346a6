/**
 * The model-spec JSON (FORMAT.md in the shared fixtures): a serialisable cell plus the data of one
 * evaluation. `readModelSpec` validates a parsed JSON value and builds the cell; `writeModelSpec`
 * is its inverse (`readModelSpec(writeModelSpec(cell, data))` gives an equal cell and data, and
 * writing what was read reproduces the JSON).
 *
 * Unknown keys are errors (`InvalidArgumentError` naming the key, with the closest known name): at
 * the top level, in `cell` (per type and convention), in `weights` and in an `ar` cell's `readout`.
 * PyTorch weights of a second layer (`weight_ih_l1`) or of a reverse direction are refused with
 * code `UNSUPPORTED`: pelk evaluates one layer.
 *
 * Cell conventions (`cell.convention`, default `'torch'`):
 * - `'torch'` (gru, lstm, elman): `weights` with PyTorch `state_dict` names `weight_ih_l0`,
 *   `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`; elman also `nonlinearity` ('tanh' | 'relu').
 * - `'flax'` (gru): `weights` = flax.linen `GRUCell` params `{ ir, iz, in, hr, hz, hn }`, each
 *   `{ kernel: [in, out], bias?: [out] }` (no bias on `hr`, `hz`); optional `activation`,
 *   `recurrentActivation` (flax `activation_fn`, `gate_fn`; defaults tanh, sigmoid).
 * - `'keras'` (gru, lstm, elman): `weights` = `{ kernel, recurrentKernel, bias? }` as in
 *   tfjs-layers `getWeights()`; config fields `activation`, `recurrentActivation` (gru, lstm) and
 *   `resetAfter` (gru), all written explicitly.
 * - lorenz96: `{ dimension, forcing, dt, integrator }`.
 * - ar: `{ inner: <gru | lstm | elman cell>, readout: { weight [2I, H], bias [2I], skip }, noise: 'softplus' }`,
 *   with `"inputs": null` and the drivers in `"drivers"` (`[T]` numbers for a scalar value, `[T][I]`
 *   otherwise). `readModelSpec` returns the drivers as `inputs` (`[T][I]`), the form `evaluate`
 *   takes, and `writeModelSpec` writes them back under `drivers`.
 *
 * A spec need not carry data: weights in one file, sequences in another is the usual case. With
 * the sequence given separately (`readModelSpec(json, { inputs })`; `pelk eval --inputs`),
 * `inputs`, `drivers`, `steps` and `states` may be absent or `null`; without it, an input-driven
 * cell's missing sequence is an error saying where it can come from.
 */
import { type InputsLike, InvalidArgumentError, ShapeError, assertPositiveInteger, checkKnownKeys, describeValue, shapeOfInputs } from '@pelk/core';
import { type ArCell, arFromParts } from './ar.js';
import { ELMAN_KERAS_CONFIG_KEYS, ELMAN_TORCH_OPTION_KEYS, elmanFromKeras, elmanFromTorch } from './elman.js';
import { GRU_FLAX_OPTION_KEYS, GRU_KERAS_CONFIG_KEYS, gruFromFlax, gruFromKeras, gruFromTorch } from './gru.js';
import { fieldName, readObject, readWeight, toNested } from './host.js';
import { LORENZ96_OPTION_KEYS, lorenz96FromObject } from './lorenz96.js';
import { LSTM_KERAS_CONFIG_KEYS, lstmFromKeras, lstmFromTorch } from './lstm.js';
import { KERAS_WEIGHT_KEYS, SIZE_KEYS } from './rnn-weights.js';
import type { CellSpec, ModelCell } from './types.js';

/** A model spec as read: the cell, ready to bind, and the evaluation data. */
export interface ModelSpec {
  readonly name?: string;
  /** Who computed `states` (fixtures). */
  readonly oracle?: string;
  readonly cell: ModelCell;
  /** `[T][I]`, or `null` for autonomous cells. For an `ar` cell: its drivers, `[T][I]` (from the spec's `drivers`). */
  readonly inputs: number[][] | null;
  /** `s_0` (`[D]`), or `null` (zeros). */
  readonly initialState: number[] | null;
  /** Number of steps `T`. */
  readonly steps: number;
  /** Reference trajectory `s_1..s_T`, `[T][D]`, when the spec carries one. */
  readonly states?: number[][];
  /** The JSON value as given. */
  readonly raw: unknown;
}

/** Options of {@link readModelSpec}. */
export interface ReadModelSpecOptions {
  /**
   * The sequence to evaluate, given apart from the spec: `[T, I]` or `[B, T, I]` (nested arrays or
   * `{ data, shape }`, as `evaluate` takes them; an `ar` cell's drivers). It replaces the spec's
   * data, so the spec's `inputs`, `drivers`, `steps` and `states` may be absent or `null`.
   * `null` or `undefined`: the spec must carry the sequence itself.
   */
  readonly inputs?: InputsLike;
}

/**
 * A model spec read with its sequence given separately ({@link ReadModelSpecOptions.inputs}):
 * `inputs` is that sequence, unchanged, and `steps` its `T`. No `states`: reference states belong
 * to the spec's own inputs.
 */
export type ModelSpecWithInputs<T extends InputsLike = InputsLike> = Omit<ModelSpec, 'inputs' | 'states'> & {
  readonly inputs: T;
  readonly states?: undefined;
};

/** The JSON form {@link writeModelSpec} produces (and {@link readModelSpec} reads). */
export interface ModelSpecJson {
  name?: string;
  oracle?: string;
  cell: CellSpec;
  /** How the state is laid out: `'h'`, `'[h, c]'` (LSTM), `'x'` (Lorenz-96), `'[x, h]'` / `'[x, h, c]'` (ar). */
  stateLayout: string;
  /** `T`; absent in a spec without data (its sequence is given when it is read). */
  steps?: number;
  /** `[T][I]`; `null` for autonomous cells, for `ar` cells (which take `drivers`) and in a spec without data. */
  inputs: number[][] | null;
  /** `ar` cells only: one driver per step, `[T]` for a scalar value, else `[T][I]`. */
  drivers?: number[] | number[][];
  initialState: number[] | null;
  states?: number[][];
}

/** The data {@link writeModelSpec} stores beside the cell. */
export interface ModelSpecData {
  /**
   * `[T][I]`; `null` for autonomous cells. For an `ar` cell, its drivers (`[T][I]`), unless
   * `drivers` is given. `null` for a cell that takes inputs (and no `drivers`) writes a spec without
   * data: the cell and `initialState` only, for `readModelSpec(json, { inputs })` or
   * `pelk eval --inputs`.
   */
  readonly inputs: number[][] | null;
  /** `ar` cells only, instead of `inputs`: `[T]` drivers for a scalar value, else `[T][I]`. */
  readonly drivers?: ArrayLike<number> | ReadonlyArray<ArrayLike<number>>;
  /** `s_0` (`[D]`) or `null`. */
  readonly initialState: number[] | null;
  /** Reference states `[T][D]`. */
  readonly states?: number[][];
  readonly name?: string;
  readonly oracle?: string;
  /** `T`, needed only for autonomous cells without `states`. */
  readonly steps?: number;
}

const CELL_TYPES = "one of 'gru', 'lstm', 'elman', 'lorenz96', 'ar'";

const STATE_LAYOUT: Readonly<Record<string, string>> = { gru: 'h', elman: 'h', lstm: '[h, c]', lorenz96: 'x' };

/** The `stateLayout` string of a cell: the value first for an `ar` cell (`'[x, h]'`, `'[x, h, c]'`). */
function stateLayout(cell: ModelCell): string {
  if (cell.kind !== 'ar') return STATE_LAYOUT[cell.kind];
  return (cell as ArCell).inner.kind === 'lstm' ? '[x, h, c]' : '[x, h]';
}

const AR_INNER_TYPES = ['gru', 'lstm', 'elman'];

/** The keys a model spec may have at the top level (FORMAT.md). */
const SPEC_KEYS = ['name', 'oracle', 'cell', 'stateLayout', 'steps', 'inputs', 'drivers', 'initialState', 'states'] as const;

/** The keys a recurrent cell has in every convention. */
const RNN_CELL_KEYS = ['type', 'convention', ...SIZE_KEYS, 'weights'] as const;

/** The keys of a recurrent cell whose factory options (sizes and more) are `options`. */
const rnnCellKeys = (options: readonly string[]): string[] => [...new Set([...RNN_CELL_KEYS, ...options])];

/**
 * The keys of a `cell` object per type and convention (the weights are checked where they are
 * read: torch `state_dict` names, flax Dense dicts, Keras `kernel`/`recurrentKernel`/`bias`).
 * Built on first use: the cells' modules import this one (through `gradients.ts`), so their key
 * lists may not be initialised yet when this module is evaluated.
 */
let cellKeys: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>> | undefined;
const cellKeysTable = (): Readonly<Record<string, Readonly<Record<string, readonly string[]>>>> => (cellKeys ??= {
  gru: {
    torch: RNN_CELL_KEYS,
    flax: rnnCellKeys(GRU_FLAX_OPTION_KEYS),
    keras: rnnCellKeys(GRU_KERAS_CONFIG_KEYS),
  },
  lstm: {
    torch: RNN_CELL_KEYS,
    keras: rnnCellKeys(LSTM_KERAS_CONFIG_KEYS),
  },
  elman: {
    torch: rnnCellKeys(ELMAN_TORCH_OPTION_KEYS),
    keras: rnnCellKeys(ELMAN_KERAS_CONFIG_KEYS),
  },
});

function conventionError(type: string, convention: unknown, known: readonly string[]): InvalidArgumentError {
  return new InvalidArgumentError(
    'cell.convention',
    `${known.map((k) => `'${k}'`).join(' or ')} for a '${type}' cell`,
    describeValue(convention),
  );
}

/**
 * Builds a cell from the `cell` object of a model spec. Errors name the spec field
 * (`cell.weights.weight_hh_l0`, `cell.hiddenSize`, …).
 *
 * @example
 * ```ts
 * const cell = readCellSpec({ type: 'lorenz96', dimension: 5, forcing: 8, dt: 0.01, integrator: 'rk4' });
 * ```
 */
export function readCellSpec(value: unknown, field = 'cell'): ModelCell {
  const c = readObject(value, field);
  const type = c.type;
  const convention = c.convention ?? 'torch';
  const weights = fieldName(field, 'weights');
  // Unknown keys (a typo such as `nonLinearity`) are errors, checked before anything is read.
  const table = cellKeysTable();
  const known = typeof type === 'string' && Object.hasOwn(table, type) ? table[type] : undefined;
  if (known && typeof convention === 'string' && Object.hasOwn(known, convention)) checkKnownKeys(c, known[convention], field);
  if (type === 'lorenz96') checkKnownKeys(c, ['type', ...LORENZ96_OPTION_KEYS], field);
  if (type === 'ar') checkKnownKeys(c, ['type', 'inner', 'readout', 'noise'], field);
  if (convention === 'keras' && known) checkKnownKeys(readObject(c.weights, weights), KERAS_WEIGHT_KEYS, weights);
  switch (type) {
    case 'gru':
      if (convention === 'torch') return gruFromTorch(c.weights, c, weights, field);
      if (convention === 'flax') return gruFromFlax(c.weights, c, weights, field);
      if (convention === 'keras') return gruFromKeras(readObject(c.weights, weights), c, weights, field);
      throw conventionError(type, convention, ['torch', 'flax', 'keras']);
    case 'lstm':
      if (convention === 'torch') return lstmFromTorch(c.weights, c, weights, field);
      if (convention === 'keras') return lstmFromKeras(readObject(c.weights, weights), c, weights, field);
      throw conventionError(type, convention, ['torch', 'keras']);
    case 'elman':
      if (convention === 'torch') return elmanFromTorch(c.weights, c, weights, field);
      if (convention === 'keras') return elmanFromKeras(readObject(c.weights, weights), c, weights, field);
      throw conventionError(type, convention, ['torch', 'keras']);
    case 'lorenz96':
      return lorenz96FromObject(c, field);
    case 'ar': {
      const innerField = fieldName(field, 'inner');
      const innerType = readObject(c.inner, innerField).type;
      if (!AR_INNER_TYPES.includes(innerType as string)) {
        throw new InvalidArgumentError(fieldName(innerField, 'type'), "one of 'gru', 'lstm', 'elman' (the inner cell of an 'ar' cell)", describeValue(innerType));
      }
      return arFromParts(readCellSpec(c.inner, innerField), c.readout, c.noise, field);
    }
    default:
      throw new InvalidArgumentError(fieldName(field, 'type'), CELL_TYPES, describeValue(type));
  }
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new InvalidArgumentError(field, 'a string', describeValue(value));
  return value;
}

function lengthOf(value: unknown): number {
  return Array.isArray(value) || ArrayBuffer.isView(value) ? (value as ArrayLike<unknown>).length : 0;
}

/** Where a sequence missing from a spec can come from (the error when neither gives it). */
const SEQUENCE_SOURCES = 'in the spec or given separately (pelk eval: --inputs FILE.npy; API: readModelSpec(json, { inputs }))';

/** What a spec without its sequence holds in its place: `null`, or no such key. */
function missingValue(value: unknown, key: string): string {
  return value === null ? 'null' : `nothing (no '${key}' key)`;
}

/**
 * Validates the data of a spec against the cell; returns fresh plain arrays. `writing`: the data
 * of {@link writeModelSpec}, where an `ar` cell's drivers may come as `inputs` (`[T][I]`).
 * `supplied`: the sequence comes from elsewhere (`readModelSpec`'s `inputs` option), so the spec's
 * own `inputs` / `drivers` / `steps` may be missing (`inputs: null` and `steps` unset then); what
 * it does carry is still checked, so a broken file is an error either way.
 */
function readData(
  cell: ModelCell,
  o: { inputs?: unknown; drivers?: unknown; initialState?: unknown; states?: unknown; steps?: unknown },
  writing: boolean,
  supplied = false,
): { inputs: number[][] | null; initialState: number[] | null; states?: number[][]; steps: number } {
  const D = cell.stateSize;
  const I = cell.inputSize;
  // Absent and null are the same: no data.
  let steps = o.steps === undefined || o.steps === null ? undefined : assertPositiveInteger(o.steps, 'steps');
  let inputs: number[][] | null = null;
  const isAr = cell.kind === 'ar';
  if (!isAr && o.drivers !== undefined && o.drivers !== null) {
    throw new InvalidArgumentError('drivers', `no drivers (only 'ar' cells take them; a '${cell.kind}' cell takes inputs)`, describeValue(o.drivers));
  }
  if (isAr && (!writing || o.drivers !== undefined || o.inputs === null || o.inputs === undefined)) {
    // The spec form: inputs null, one driver per step (per emitted number) in `drivers`.
    if (o.inputs !== null && o.inputs !== undefined) {
      const why = writing ? 'null when drivers are given' : "null (an 'ar' spec gives its drivers in 'drivers')";
      throw new InvalidArgumentError('inputs', why, describeValue(o.inputs));
    }
    if (o.drivers === null || o.drivers === undefined) {
      if (!supplied) {
        throw new InvalidArgumentError('drivers', `${I === 1 ? '[T]' : `[T][${I}]`} numbers (an 'ar' cell takes one driver per step) ${SEQUENCE_SOURCES}`, describeValue(o.drivers));
      }
    } else {
      const T = steps ?? lengthOf(o.drivers);
      const data = readWeight(o.drivers, 'drivers', I === 1 ? [T] : [T, I]);
      if (T < 1) throw new InvalidArgumentError('drivers', 'at least one step', 'none');
      inputs = toNested(data, [T, I]) as number[][];
      steps = T;
    }
  } else if (I > 0) {
    if (o.inputs === null || o.inputs === undefined) {
      if (!supplied) {
        // A data-free spec is the usual case; say where the sequence can come from.
        const where = writing ? '' : ` ${SEQUENCE_SOURCES}`;
        throw new InvalidArgumentError('inputs', `[T][${I}] data (the '${cell.kind}' cell takes inputs)${where}`, missingValue(o.inputs, 'inputs'));
      }
    } else {
      const T = steps ?? (Array.isArray(o.inputs) ? o.inputs.length : 0);
      inputs = toNested(readWeight(o.inputs, 'inputs', [T, I]), [T, I]) as number[][];
      if (T < 1) throw new InvalidArgumentError('inputs', 'at least one step', 'none');
      steps = T;
    }
  } else if (o.inputs !== null && o.inputs !== undefined) {
    throw new InvalidArgumentError('inputs', `null (a '${cell.kind}' cell takes no inputs)`, describeValue(o.inputs));
  }
  let states: number[][] | undefined;
  if (o.states !== undefined && o.states !== null) {
    const T = steps ?? (Array.isArray(o.states) ? o.states.length : 0);
    states = toNested(readWeight(o.states, 'states', [T, D]), [T, D]) as number[][];
    steps ??= T;
  }
  // With a separate sequence, its T is the steps (readModelSpec sets it); only the spec's own data needed them.
  if (!(supplied && I > 0) && (steps === undefined || steps < 1)) {
    throw new InvalidArgumentError('steps', 'a positive integer (required for an autonomous cell without states)', describeValue(o.steps));
  }
  const initialState =
    o.initialState === null || o.initialState === undefined ? null : Array.from(readWeight(o.initialState, 'initialState', [D]));
  return { inputs, initialState, ...(states ? { states } : {}), steps: steps ?? 0 };
}

/** `T` of a sequence given apart from the spec, checked against the cell (rank, input size, T ≥ 1); `evaluate` checks the values. */
function suppliedSteps(cell: ModelCell, inputs: NonNullable<InputsLike>): number {
  if (cell.inputSize === 0) {
    throw new InvalidArgumentError('inputs', `null (a '${cell.kind}' cell takes no inputs)`, describeValue(inputs));
  }
  // The same shape check evaluate makes (rectangular nesting, { data, shape }), values unread.
  const shape = shapeOfInputs(inputs, 'inputs', [2, 3]);
  const what = `shape [T, ${cell.inputSize}] or [B, T, ${cell.inputSize}] with T ≥ 1`;
  if (shape[shape.length - 1] !== cell.inputSize || shape[shape.length - 2] < 1) {
    throw new ShapeError('inputs', `${what} (the '${cell.kind}' cell's input size is ${cell.inputSize})`, `shape [${shape.join(', ')}]`);
  }
  return shape[shape.length - 2];
}

/**
 * Validates a parsed model-spec JSON value and builds its cell. Shapes of `inputs`,
 * `initialState` and `states` are checked against the cell and `steps`; every error is a typed
 * `PelkError` naming the field.
 *
 * A spec without data (`inputs` / `drivers` / `steps` / `states` absent or `null`) reads when the
 * sequence is given separately, as `options.inputs`: the result's `inputs` is then that sequence and
 * `steps` its `T`. Without it, an input-driven cell whose spec has no sequence is an
 * `InvalidArgumentError` naming `inputs` (an `ar` cell: `drivers`). Autonomous cells (Lorenz-96)
 * take no sequence and need `steps` or `states`.
 *
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { evaluate } from '@pelk/core';
 * const spec = readModelSpec(JSON.parse(readFileSync('gru-torch-small.json', 'utf8')));
 * const result = await evaluate(spec.cell, spec.inputs, { initialState: spec.initialState ?? undefined, method: 'deer' });
 * // Weights in one file, the sequence from elsewhere ([T, I] or [B, T, I]):
 * const model = readModelSpec(JSON.parse(readFileSync('gru-weights.json', 'utf8')), { inputs: { data, shape: [2, 1000, 3] } });
 * const batch = await evaluate(model.cell, model.inputs, { initialState: model.initialState ?? undefined });
 * ```
 */
export function readModelSpec(json: unknown): ModelSpec;
export function readModelSpec<T extends NonNullable<InputsLike>>(json: unknown, options: { readonly inputs: T }): ModelSpecWithInputs<T>;
export function readModelSpec(json: unknown, options?: ReadModelSpecOptions): ModelSpec | ModelSpecWithInputs;
export function readModelSpec(json: unknown, options?: ReadModelSpecOptions): ModelSpec | ModelSpecWithInputs {
  const opts = options === undefined ? {} : readObject(options, 'options');
  checkKnownKeys(opts, ['inputs'], 'options');
  const given = (opts.inputs ?? null) as InputsLike;
  const o = readObject(json, 'spec');
  checkKnownKeys(o, SPEC_KEYS, 'spec');
  const name = optionalString(o.name, 'name');
  const oracle = optionalString(o.oracle, 'oracle');
  const cell = readCellSpec(o.cell, 'cell');
  const layout = stateLayout(cell);
  if (o.stateLayout !== undefined && o.stateLayout !== layout) {
    throw new InvalidArgumentError('stateLayout', `'${layout}' for this '${cell.kind}' cell`, describeValue(o.stateLayout));
  }
  const head = { ...(name !== undefined ? { name } : {}), ...(oracle !== undefined ? { oracle } : {}), cell };
  if (given === null) return { ...head, ...readData(cell, o, false), raw: json };
  const steps = suppliedSteps(cell, given);
  // The spec's own data, when it has any, is still checked (a broken file is an error either way), then replaced.
  const { initialState } = readData(cell, o, false, true);
  return { ...head, inputs: given, initialState, steps, raw: json };
}

/**
 * Writes a cell and the data of one evaluation as model-spec JSON (a plain object; pass it to
 * `JSON.stringify`). Only cells of this package serialise (custom cells cannot). With
 * `inputs: null` (and no `drivers`), a cell that takes inputs is written without data — weights
 * in one file, sequences in another.
 *
 * @example
 * ```ts
 * const cell = gru.random({ inputSize: 1, hiddenSize: 4, seed: 1 });
 * const json = writeModelSpec(cell, { inputs: [[0.1], [0.2]], initialState: null, name: 'tiny' });
 * writeFileSync('tiny.json', JSON.stringify(json));
 * // Weights only; the sequence comes at read time:
 * const weights = writeModelSpec(cell, { inputs: null, initialState: null });
 * const spec = readModelSpec(weights, { inputs: [[0.1], [0.2]] });
 * ```
 */
export function writeModelSpec(cell: ModelCell, data: ModelSpecData): ModelSpecJson {
  if (!cell || typeof (cell as Partial<ModelCell>).toSpec !== 'function') {
    throw new InvalidArgumentError('cell', 'a gru, lstm, elman, lorenz96 or ar cell of @pelk/models', describeValue(cell));
  }
  const d = readObject(data, 'data');
  const name = optionalString(d.name, 'name');
  const oracle = optionalString(d.oracle, 'oracle');
  const spec = cell.toSpec();
  // No sequence for a cell that takes one: a spec without data (its sequence is given at read time).
  const noSequence = (d.inputs === null || d.inputs === undefined) && (d.drivers === null || d.drivers === undefined);
  const withoutData = cell.inputSize > 0 && noSequence;
  if (withoutData && d.states !== undefined && d.states !== null) {
    throw new InvalidArgumentError('states', 'no states in a spec without inputs (reference states belong to one sequence)', describeValue(d.states));
  }
  const { inputs, initialState, states, steps } = readData(cell, d, true, withoutData);
  const isAr = cell.kind === 'ar';
  return {
    ...(name !== undefined ? { name } : {}),
    ...(oracle !== undefined ? { oracle } : {}),
    cell: spec,
    stateLayout: stateLayout(cell),
    ...(withoutData ? {} : { steps }),
    inputs: isAr ? null : inputs,
    ...(isAr && inputs ? { drivers: cell.inputSize === 1 ? inputs.map((r) => r[0]) : inputs } : {}),
    initialState,
    ...(states ? { states } : {}),
  };
}

/**
 * The model-spec JSON (FORMAT.md in the shared fixtures): a serialisable cell plus the data of one
 * evaluation. `readModelSpec` validates a parsed JSON value and builds the cell; `writeModelSpec`
 * is its inverse (`readModelSpec(writeModelSpec(cell, data))` gives an equal cell and data, and
 * writing what was read reproduces the JSON).
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
 */
import { InvalidArgumentError, assertPositiveInteger, describeValue } from '@pelk/core';
import { elmanFromKeras, elmanFromTorch } from './elman.js';
import { gruFromFlax, gruFromKeras, gruFromTorch } from './gru.js';
import { fieldName, readObject, readWeight, toNested } from './host.js';
import { lorenz96FromObject } from './lorenz96.js';
import { lstmFromKeras, lstmFromTorch } from './lstm.js';
import type { CellSpec, ModelCell } from './types.js';

/** A model spec as read: the cell, ready to bind, and the evaluation data. */
export interface ModelSpec {
  readonly name?: string;
  /** Who computed `states` (fixtures). */
  readonly oracle?: string;
  readonly cell: ModelCell;
  /** `[T][I]`, or `null` for autonomous cells. */
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

/** The JSON form {@link writeModelSpec} produces (and {@link readModelSpec} reads). */
export interface ModelSpecJson {
  name?: string;
  oracle?: string;
  cell: CellSpec;
  /** How the state is laid out: `'h'`, `'[h, c]'` (LSTM) or `'x'` (Lorenz-96). */
  stateLayout: string;
  steps: number;
  inputs: number[][] | null;
  initialState: number[] | null;
  states?: number[][];
}

/** The data {@link writeModelSpec} stores beside the cell. */
export interface ModelSpecData {
  /** `[T][I]`; `null` for autonomous cells. */
  readonly inputs: number[][] | null;
  /** `s_0` (`[D]`) or `null`. */
  readonly initialState: number[] | null;
  /** Reference states `[T][D]`. */
  readonly states?: number[][];
  readonly name?: string;
  readonly oracle?: string;
  /** `T`, needed only for autonomous cells without `states`. */
  readonly steps?: number;
}

const CELL_TYPES = "one of 'gru', 'lstm', 'elman', 'lorenz96'";

const STATE_LAYOUT: Readonly<Record<string, string>> = { gru: 'h', elman: 'h', lstm: '[h, c]', lorenz96: 'x' };

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
    case 'ar':
      throw new InvalidArgumentError(fieldName(field, 'type'), CELL_TYPES, "'ar' (arrives with the ELK work)");
    default:
      throw new InvalidArgumentError(fieldName(field, 'type'), CELL_TYPES, describeValue(type));
  }
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new InvalidArgumentError(field, 'a string', describeValue(value));
  return value;
}

/** Validates the data of a spec against the cell; returns fresh plain arrays. */
function readData(
  cell: ModelCell,
  o: { inputs?: unknown; initialState?: unknown; states?: unknown; steps?: unknown },
): { inputs: number[][] | null; initialState: number[] | null; states?: number[][]; steps: number } {
  const D = cell.stateSize;
  const I = cell.inputSize;
  let steps = o.steps === undefined ? undefined : assertPositiveInteger(o.steps, 'steps');
  let inputs: number[][] | null = null;
  if (I > 0) {
    if (o.inputs === null || o.inputs === undefined) {
      throw new InvalidArgumentError('inputs', `[T][${I}] data (the '${cell.kind}' cell takes inputs)`, describeValue(o.inputs));
    }
    const T = steps ?? (Array.isArray(o.inputs) ? o.inputs.length : 0);
    inputs = toNested(readWeight(o.inputs, 'inputs', [T, I]), [T, I]) as number[][];
    if (T < 1) throw new InvalidArgumentError('inputs', 'at least one step', 'none');
    steps = T;
  } else if (o.inputs !== null && o.inputs !== undefined) {
    throw new InvalidArgumentError('inputs', `null (a '${cell.kind}' cell takes no inputs)`, describeValue(o.inputs));
  }
  let states: number[][] | undefined;
  if (o.states !== undefined && o.states !== null) {
    const T = steps ?? (Array.isArray(o.states) ? o.states.length : 0);
    states = toNested(readWeight(o.states, 'states', [T, D]), [T, D]) as number[][];
    steps ??= T;
  }
  if (steps === undefined || steps < 1) {
    throw new InvalidArgumentError('steps', 'a positive integer (required for an autonomous cell without states)', describeValue(o.steps));
  }
  const initialState =
    o.initialState === null || o.initialState === undefined ? null : Array.from(readWeight(o.initialState, 'initialState', [D]));
  return { inputs, initialState, ...(states ? { states } : {}), steps };
}

/**
 * Validates a parsed model-spec JSON value and builds its cell. Shapes of `inputs`,
 * `initialState` and `states` are checked against the cell and `steps`; every error is a typed
 * `PelkError` naming the field.
 *
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { evaluate } from '@pelk/core';
 * const spec = readModelSpec(JSON.parse(readFileSync('gru-torch-small.json', 'utf8')));
 * const result = await evaluate(spec.cell, spec.inputs, { initialState: spec.initialState ?? undefined, method: 'deer' });
 * ```
 */
export function readModelSpec(json: unknown): ModelSpec {
  const o = readObject(json, 'spec');
  const name = optionalString(o.name, 'name');
  const oracle = optionalString(o.oracle, 'oracle');
  const cell = readCellSpec(o.cell, 'cell');
  if (o.stateLayout !== undefined && o.stateLayout !== STATE_LAYOUT[cell.kind]) {
    throw new InvalidArgumentError('stateLayout', `'${STATE_LAYOUT[cell.kind]}' for a '${cell.kind}' cell`, describeValue(o.stateLayout));
  }
  const data = readData(cell, o);
  return { ...(name !== undefined ? { name } : {}), ...(oracle !== undefined ? { oracle } : {}), cell, ...data, raw: json };
}

/**
 * Writes a cell and the data of one evaluation as model-spec JSON (a plain object; pass it to
 * `JSON.stringify`). Only cells of this package serialise (custom cells cannot).
 *
 * @example
 * ```ts
 * const cell = gru.random({ inputSize: 1, hiddenSize: 4, seed: 1 });
 * const json = writeModelSpec(cell, { inputs: [[0.1], [0.2]], initialState: null, name: 'tiny' });
 * writeFileSync('tiny.json', JSON.stringify(json));
 * ```
 */
export function writeModelSpec(cell: ModelCell, data: ModelSpecData): ModelSpecJson {
  if (!cell || typeof (cell as Partial<ModelCell>).toSpec !== 'function') {
    throw new InvalidArgumentError('cell', 'a gru, lstm, elman or lorenz96 cell of @pelk/models', describeValue(cell));
  }
  const d = readObject(data, 'data');
  const name = optionalString(d.name, 'name');
  const oracle = optionalString(d.oracle, 'oracle');
  const spec = cell.toSpec();
  const { inputs, initialState, states, steps } = readData(cell, d);
  return {
    ...(name !== undefined ? { name } : {}),
    ...(oracle !== undefined ? { oracle } : {}),
    cell: spec,
    stateLayout: STATE_LAYOUT[spec.type],
    steps,
    inputs,
    initialState,
    ...(states ? { states } : {}),
  };
}

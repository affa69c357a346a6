/**
 * Migration from TensorFlow.js `tf.layers` recurrent layers: a built `GRU`, `LSTM` or `SimpleRNN`
 * layer (or an `RNN` layer wrapping a `GRUCell`, `LSTMCell` or `SimpleRNNCell`), or a saved
 * layers model (`model.json` plus its weight shards), becomes a pelk cell with the same transition.
 *
 * Nothing here imports tfjs: a layer is read through `getClassName()`, `getConfig()` and
 * `getWeights()`, a saved model as the JSON and bytes tfjs writes. The weights go through the
 * Keras importers of {@link gru}, {@link lstm} and {@link elman}, which check shapes and finiteness.
 *
 * What the layer options mean for the cell (pelk evaluates the transition from an initial state,
 * zeros unless `evaluate`'s `initialState` says otherwise, and returns every state):
 * - `returnSequences`, `returnState`: irrelevant; pelk returns all states (`[T, H]`, or `[T, 2H]`
 *   `[h, c]` for an LSTM, whose `h` half is the layer's output sequence).
 * - `goBackwards: true`: rejected (`InvalidArgumentError`, code `'UNSUPPORTED'`). The layer reads the
 *   inputs last to first; evaluate the cell on the time-reversed inputs to get the same states.
 * - `stateful`: accepted; a stateful layer starts from the state its last call left behind, which
 *   pelk does not see. To continue from it, pass it as `initialState` (`layer.states`: `[h]`, or
 *   `[h, c]` for an LSTM, concatenated in that order).
 * - `dropout`, `recurrentDropout`: training-only; ignored (inference is what tfjs runs too).
 * - `unroll`, `implementation`, initialisers, regularisers, constraints: no effect on the transition.
 * - Masks (a `Masking` layer before the recurrent one) are not applied: every step is a transition.
 */
import { InvalidArgumentError, ShapeError, assertPositiveInteger, checkKnownKeys, describeValue } from '@pelk/core';
import { type ActivationName, activation } from './activations.js';
import { type ElmanCell, elmanFromKeras } from './elman.js';
import { type GruCell, gruFromKeras } from './gru.js';
import { readObject } from './host.js';
import { type LstmCell, lstmFromKeras } from './lstm.js';
import type { WeightLike } from './types.js';

/** A cell made from a tfjs recurrent layer. */
export type TfjsRecurrentCell = GruCell | LstmCell | ElmanCell;

/** What is read of a tfjs tensor: `shape` and its values (`tf.Tensor` fits). */
export interface TfjsTensorLike {
  readonly shape: readonly number[];
  readonly dtype?: string;
  dataSync(): ArrayLike<number>;
  data?(): Promise<ArrayLike<number>>;
}

/**
 * What is read of a tfjs layer: a built `tf.layers.gru(…)`, `lstm`, `simpleRNN` or `rnn({ cell })`
 * fits (it is built once it has been applied to an input or belongs to a built model).
 */
export interface TfjsLayerLike {
  getClassName(): string;
  getConfig(): { readonly [key: string]: unknown };
  getWeights(): readonly TfjsTensorLike[];
  readonly name?: string;
}

/** One entry of a weights manifest (`model.json`) or of `weightSpecs` (save artifacts). */
export interface TfjsWeightSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: string;
  readonly quantization?: { readonly dtype: string; readonly scale?: number; readonly min?: number };
  readonly group?: string;
}

/** The `model.json` file tfjs writes (`model.save('file://…')`, `tensorflowjs_converter`). */
export interface TfjsModelJson {
  readonly modelTopology: unknown;
  readonly weightsManifest: ReadonlyArray<{ readonly paths: readonly string[]; readonly weights: readonly TfjsWeightSpec[] }>;
  readonly format?: string;
  readonly generatedBy?: string;
  readonly convertedBy?: string | null;
}

/**
 * The artifacts a save handler receives (`tf.io.withSaveHandler`; `tf.io.ModelArtifacts` fits);
 * `weightData` may be given here. `modelTopology` and `weightSpecs` are required at run time.
 */
export interface TfjsModelArtifacts {
  readonly modelTopology?: unknown;
  readonly weightSpecs?: readonly TfjsWeightSpec[];
  readonly weightData?: TfjsWeightData;
  readonly format?: string;
}

/**
 * The weight bytes: one buffer, or the shards in manifest order (every path of the first group,
 * then the next group's, …). `ArrayBuffer`s and views (a Node `Buffer` from `readFileSync`) both work.
 */
export type TfjsWeightData = ArrayBuffer | ArrayBufferView | ReadonlyArray<ArrayBuffer | ArrayBufferView>;

/** A recurrent layer of a saved model and its cell. */
export interface TfjsModelCell {
  /** The layer name (`config.name`), e.g. `'gru_GRU1'` or `'lstm'`. */
  readonly name: string;
  /** The layer class: `'GRU'`, `'LSTM'`, `'SimpleRNN'` or `'RNN'`. */
  readonly className: string;
  /** Where the layer sits in the topology, e.g. `'modelTopology.config.layers[0]'`. */
  readonly path: string;
  readonly cell: TfjsRecurrentCell;
}

/** Options of {@link cellsFromTfjsModel} and {@link cellFromTfjsModel}. */
export interface TfjsModelOptions {
  /**
   * Recurrent layers pelk cannot run (`Bidirectional`, `ConvLSTM2D`, `RNN` over `StackedRNNCells`,
   * `goBackwards`, an unsupported activation, …) are skipped instead of throwing. Default `false`.
   */
  readonly skipUnsupported?: boolean;
}

/** Options of {@link cellFromTfjsModel}. */
export interface TfjsModelLayerOptions extends TfjsModelOptions {
  /** Which recurrent layer, by name. Default: the only one (throws when there are several). */
  readonly layer?: string;
}

// ---- layer configs --------------------------------------------------------------------------

type Kind = 'GRU' | 'LSTM' | 'SimpleRNN';

const LAYER_KINDS: Readonly<Record<string, Kind>> = { GRU: 'GRU', LSTM: 'LSTM', SimpleRNN: 'SimpleRNN' };
const CELL_KINDS: Readonly<Record<string, Kind>> = { GRUCell: 'GRU', LSTMCell: 'LSTM', SimpleRNNCell: 'SimpleRNN' };
/** Model containers whose `config.layers` hold more layers. */
const CONTAINERS = new Set(['Sequential', 'Model', 'Functional']);
/** Recurrent layers pelk has no cell for; found in a model, they throw unless skipped. */
const UNSUPPORTED_RECURRENT = new Set([
  'Bidirectional',
  'ConvLSTM2D',
  'ConvRNN2D',
  'ConvLSTM1D',
  'ConvLSTM3D',
  'CuDNNGRU',
  'CuDNNLSTM',
  'StackedRNNCells',
]);
/** `table[key]` for own keys only (a class named `'constructor'` must not find `Object`). */
function lookup<T>(table: Readonly<Record<string, T>>, key: unknown): T | undefined {
  return typeof key === 'string' && Object.hasOwn(table, key) ? table[key] : undefined;
}

const SUPPORTED_CLASSES = "'GRU', 'LSTM', 'SimpleRNN' or 'RNN' (with a GRUCell, LSTMCell or SimpleRNNCell)";

/** A recurrent layer's config, read and checked: what the cell factories need. */
interface LayerPlan {
  readonly name: string;
  readonly className: string;
  readonly kind: Kind;
  readonly useBias: boolean;
  /** Normalised cell config for the Keras importers (activations already validated). */
  readonly config: Record<string, unknown>;
  /** Where `useBias` / `use_bias` is (or would be) read. */
  readonly useBiasField: string;
  /** Prefix of weight fields in errors. */
  readonly weightField: string;
}

/** `recurrentActivation` → `recurrent_activation` (saved configs are snake_case, live ones camelCase). */
function snake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Reads `key` in camelCase or snake_case; returns the value and the field path it came from. */
function option(config: Record<string, unknown>, key: string, path: string): { value: unknown; field: string } {
  if (config[key] !== undefined) return { value: config[key], field: `${path}.${key}` };
  const s = snake(key);
  return { value: config[s], field: `${path}.${s}` };
}

function readBoolean(config: Record<string, unknown>, key: string, path: string, fallback: boolean): boolean {
  const { value, field } = option(config, key, path);
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'boolean') throw new InvalidArgumentError(field, 'a boolean', describeValue(value));
  return value;
}

function unsupported(field: string, expected: string, received: string): InvalidArgumentError {
  return new InvalidArgumentError(field, expected, received, 'UNSUPPORTED');
}

/**
 * An activation by name (tfjs `'hardSigmoid'`, saved `'hard_sigmoid'`). A name pelk lacks (`'elu'`,
 * `'softsign'`, …) throws with code `'UNSUPPORTED'`; a value that is no name, `'INVALID_ARGUMENT'`.
 */
function readActivation(config: Record<string, unknown>, key: string, path: string, fallback: ActivationName): ActivationName {
  const { value, field } = option(config, key, path);
  try {
    return activation(value ?? fallback, field).name;
  } catch (e) {
    if (typeof value === 'string' && e instanceof InvalidArgumentError) throw unsupported(e.field, e.expected, e.received);
    throw e;
  }
}

/**
 * Reads a recurrent layer's class and config. `classField` names where the class came from,
 * `path` the config object (camelCase or snake_case keys).
 */
function planLayer(className: unknown, rawConfig: unknown, classField: string, path: string, fallbackName: string): LayerPlan {
  const layerConfig = readObject(rawConfig, path);
  const nameValue = layerConfig.name;
  const name = typeof nameValue === 'string' && nameValue !== '' ? nameValue : fallbackName;
  if (typeof className !== 'string') throw new InvalidArgumentError(classField, 'a layer class name', describeValue(className));
  let kind = lookup(LAYER_KINDS, className);
  let cellConfig = layerConfig;
  let cellPath = path;
  if (className === 'RNN') {
    const cellField = `${path}.cell`;
    const cell = readObject(layerConfig.cell, cellField);
    const cellClass = cell.className ?? cell.class_name;
    const cellClassField = `${cellField}.${cell.className !== undefined ? 'className' : 'class_name'}`;
    kind = lookup(CELL_KINDS, cellClass);
    if (kind === undefined) {
      throw unsupported(cellClassField, "'GRUCell', 'LSTMCell' or 'SimpleRNNCell'", describeValue(cellClass));
    }
    cellPath = `${cellField}.config`;
    cellConfig = readObject(cell.config, cellPath);
  }
  if (kind === undefined) throw unsupported(classField, SUPPORTED_CLASSES, describeValue(className));

  if (readBoolean(layerConfig, 'goBackwards', path, false)) {
    throw unsupported(
      option(layerConfig, 'goBackwards', path).field,
      'false (pelk runs forward in time: evaluate the cell on the time-reversed inputs instead)',
      'true',
    );
  }
  const units = option(cellConfig, 'units', cellPath);
  const hiddenSize = units.value === undefined ? undefined : assertPositiveInteger(units.value, units.field);
  const useBias = readBoolean(cellConfig, 'useBias', cellPath, true);
  const useBiasField = option(cellConfig, 'useBias', cellPath).field;
  const config: Record<string, unknown> = { hiddenSize, activation: readActivation(cellConfig, 'activation', cellPath, 'tanh') };
  if (kind !== 'SimpleRNN') config.recurrentActivation = readActivation(cellConfig, 'recurrentActivation', cellPath, 'hardSigmoid');
  if (kind === 'GRU') {
    // tfjs-layers writes `resetAfter: false` (all it supports); Keras 2/3 GRUs default to true.
    const ra = option(cellConfig, 'resetAfter', cellPath);
    if (ra.value !== undefined && ra.value !== null && typeof ra.value !== 'boolean') {
      throw new InvalidArgumentError(ra.field, 'a boolean', describeValue(ra.value));
    }
    config.resetAfter = ra.value ?? undefined;
  }
  return { name, className, kind, useBias, useBiasField, config, weightField: name };
}

/** Builds the cell from checked config and the weights in Keras layout. */
function buildCell(plan: LayerPlan, weights: { kernel: WeightLike; recurrentKernel: WeightLike; bias?: WeightLike }): TfjsRecurrentCell {
  const w: Record<string, unknown> = { kernel: weights.kernel, recurrentKernel: weights.recurrentKernel };
  if (weights.bias !== undefined) w.bias = weights.bias;
  const field = plan.weightField;
  // Only activation/resetAfter field names come from the hint field, and those were validated here.
  if (plan.kind === 'GRU') return gruFromKeras(w, plan.config, field, field);
  if (plan.kind === 'LSTM') return lstmFromKeras(w, plan.config, field, field);
  return elmanFromKeras(w, plan.config, field, field);
}

// ---- live layers ------------------------------------------------------------------------------

function layerPlan(layer: TfjsLayerLike): { plan: LayerPlan; tensors: readonly TfjsTensorLike[] } {
  const l = readObject(layer, 'layer') as unknown as TfjsLayerLike;
  for (const method of ['getClassName', 'getConfig', 'getWeights'] as const) {
    if (typeof l[method] !== 'function') {
      throw new InvalidArgumentError(`layer.${method}`, 'a function (a tf.layers recurrent layer)', describeValue(l[method]));
    }
  }
  const fallbackName = typeof l.name === 'string' ? l.name : 'layer';
  const plan = planLayer(l.getClassName(), l.getConfig(), 'layer.getClassName()', 'layer.getConfig()', fallbackName);
  const tensors = l.getWeights();
  if (!Array.isArray(tensors) || tensors.length === 0) {
    throw new InvalidArgumentError(
      `${plan.name}.getWeights()`,
      'the weights of a built layer (apply the layer to an input, or build its model, first)',
      describeValue(tensors),
    );
  }
  const want = plan.useBias ? 3 : 2;
  if (tensors.length !== want) {
    throw new ShapeError(
      `${plan.name}.getWeights()`,
      `${want} tensors (kernel, recurrentKernel${plan.useBias ? ', bias' : ''})`,
      `${tensors.length} tensors`,
    );
  }
  tensors.forEach((t, i) => {
    if (t === null || typeof t !== 'object' || !Array.isArray(t.shape)) {
      throw new InvalidArgumentError(`${plan.name}.getWeights()[${i}]`, 'a tensor (shape, dataSync())', describeValue(t));
    }
  });
  return { plan, tensors };
}

function fromValues(plan: LayerPlan, tensors: readonly TfjsTensorLike[], values: readonly ArrayLike<number>[]): TfjsRecurrentCell {
  const w = values.map((data, i) => ({ data, shape: tensors[i].shape }));
  return buildCell(plan, { kernel: w[0], recurrentKernel: w[1], bias: w[2] });
}

/**
 * The pelk cell of a built tfjs-layers recurrent layer: `tf.layers.gru`, `lstm`, `simpleRNN`, or
 * `tf.layers.rnn` over a `gruCell`, `lstmCell` or `simpleRNNCell`. Reads the weights with
 * `dataSync()`; see {@link cellFromTfjsLayerAsync} for `data()`.
 *
 * The transition is the layer's: GRU with `resetAfter: false` (the only kind tfjs-layers has) and
 * gate order (z, r, h); LSTM gates (i, f, c, o), state `[h, c]`; the layer's `activation` and
 * `recurrentActivation` (tfjs default `'hardSigmoid'`, `clip(0.2x + 0.5, 0, 1)`); `useBias: false`
 * gives zero biases. Supported activations are `tanh`, `sigmoid`, `hardSigmoid`, `relu` and
 * `linear`; any other throws `InvalidArgumentError` naming the config field. An unsupported class
 * or `goBackwards: true` throws `InvalidArgumentError` with code `'UNSUPPORTED'` (see the module
 * notes for `returnSequences`, `stateful`, dropout and `unroll`).
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs';
 * import { evaluate } from '@pelk/core';
 * import { cellFromTfjsLayer } from '@pelk/models';
 *
 * const layer = tf.layers.gru({ units: 16, returnSequences: true });
 * const y = layer.apply(x) as tf.Tensor; // x [1, T, I]: builds the layer
 * const cell = cellFromTfjsLayer(layer); // a GruCell
 * const out = await evaluate(cell, { data: x.dataSync(), shape: x.shape.slice(1) }, { method: 'deer' });
 * // out.states [T, 16] ≈ y[0] (float32 rounding)
 * ```
 */
export function cellFromTfjsLayer(layer: TfjsLayerLike): TfjsRecurrentCell {
  const { plan, tensors } = layerPlan(layer);
  const values = tensors.map((t, i) => {
    if (typeof t.dataSync !== 'function') {
      throw new InvalidArgumentError(`${plan.name}.getWeights()[${i}].dataSync`, 'a function', describeValue(t.dataSync));
    }
    return t.dataSync();
  });
  return fromValues(plan, tensors, values);
}

/**
 * {@link cellFromTfjsLayer} reading the weights with `await tensor.data()` (no blocking download on
 * GPU backends; falls back to `dataSync()` where a tensor has no `data`).
 *
 * @example
 * ```ts
 * const cell = await cellFromTfjsLayerAsync(model.getLayer('lstm_1'));
 * cell.stateSize; // 2·units: [h, c]
 * ```
 */
export async function cellFromTfjsLayerAsync(layer: TfjsLayerLike): Promise<TfjsRecurrentCell> {
  const { plan, tensors } = layerPlan(layer);
  const values = await Promise.all(
    tensors.map((t, i) => {
      if (typeof t.data === 'function') return t.data();
      if (typeof t.dataSync === 'function') return t.dataSync();
      throw new InvalidArgumentError(`${plan.name}.getWeights()[${i}].data`, 'a function', describeValue(t.data));
    }),
  );
  return fromValues(plan, tensors, values);
}

// ---- saved models -----------------------------------------------------------------------------

/** One weight of the manifest with its byte range and the field that describes it. */
interface PlacedWeight {
  readonly spec: TfjsWeightSpec;
  readonly field: string;
  readonly offset: number;
  readonly byteLength: number;
}

/** The weight bytes as one logical stream over several chunks, without concatenating them. */
class ByteSource {
  private readonly chunks: Uint8Array[] = [];
  private readonly starts: number[] = [];
  readonly length: number;

  constructor(data: TfjsWeightData, field: string) {
    const parts = Array.isArray(data) ? data : [data];
    let n = 0;
    parts.forEach((part: unknown, i) => {
      const f = Array.isArray(data) ? `${field}[${i}]` : field;
      let bytes: Uint8Array;
      if (part instanceof ArrayBuffer) bytes = new Uint8Array(part);
      else if (ArrayBuffer.isView(part)) bytes = new Uint8Array(part.buffer, part.byteOffset, part.byteLength);
      else throw new InvalidArgumentError(f, 'an ArrayBuffer or a typed array / Buffer', describeValue(part));
      this.chunks.push(bytes);
      this.starts.push(n);
      n += bytes.length;
    });
    this.length = n;
  }

  /** A copy of bytes `[offset, offset + length)`. */
  read(offset: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    let k = 0;
    for (let c = 0; c < this.chunks.length && k < length; c++) {
      const chunk = this.chunks[c];
      const start = this.starts[c];
      if (start + chunk.length <= offset + k) continue;
      const from = offset + k - start;
      const take = Math.min(chunk.length - from, length - k);
      out.set(chunk.subarray(from, from + take), k);
      k += take;
    }
    return out;
  }
}

const DTYPE_BYTES: Readonly<Record<string, number>> = { float32: 4, int32: 4, bool: 1, complex64: 8 };
const QUANTIZED_BYTES: Readonly<Record<string, number>> = { uint8: 1, uint16: 2, float16: 2 };

/** The manifest's weight specs in byte order, with their field paths. */
function readSpecs(model: Record<string, unknown>): { specs: { spec: TfjsWeightSpec; field: string }[]; source: string } {
  if (model.weightsManifest !== undefined) {
    const manifest = model.weightsManifest;
    if (!Array.isArray(manifest)) throw new InvalidArgumentError('weightsManifest', 'an array of { paths, weights }', describeValue(manifest));
    const specs: { spec: TfjsWeightSpec; field: string }[] = [];
    manifest.forEach((group: unknown, g) => {
      const gField = `weightsManifest[${g}]`;
      const weights = readObject(group, gField).weights;
      if (!Array.isArray(weights)) throw new InvalidArgumentError(`${gField}.weights`, 'an array', describeValue(weights));
      weights.forEach((spec: unknown, k) => {
        specs.push({ spec: spec as TfjsWeightSpec, field: `${gField}.weights[${k}]` });
      });
    });
    return { specs, source: 'weightsManifest' };
  }
  const weightSpecs = model.weightSpecs;
  if (!Array.isArray(weightSpecs)) {
    throw new InvalidArgumentError(
      'model',
      'a model.json object (modelTopology, weightsManifest) or save artifacts (modelTopology, weightSpecs, weightData)',
      'no weightsManifest or weightSpecs',
    );
  }
  return { specs: weightSpecs.map((spec: unknown, k) => ({ spec: spec as TfjsWeightSpec, field: `weightSpecs[${k}]` })), source: 'weightSpecs' };
}

/** Checks each spec and lays them out over the bytes (string weights carry their own lengths). */
function placeWeights(specs: { spec: TfjsWeightSpec; field: string }[], bytes: ByteSource, dataField: string): PlacedWeight[] {
  const placed: PlacedWeight[] = [];
  let offset = 0;
  for (const { spec: raw, field } of specs) {
    const spec = readObject(raw, field) as unknown as TfjsWeightSpec;
    if (typeof spec.name !== 'string') throw new InvalidArgumentError(`${field}.name`, 'a string', describeValue(spec.name));
    if (!Array.isArray(spec.shape) || !spec.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new InvalidArgumentError(`${field}.shape`, 'an array of integers ≥ 0', describeValue(spec.shape));
    }
    const size = spec.shape.reduce((a, b) => a * b, 1);
    let byteLength: number;
    if (spec.quantization !== undefined && spec.quantization !== null) {
      const q = readObject(spec.quantization, `${field}.quantization`);
      const per = lookup(QUANTIZED_BYTES, q.dtype);
      if (per === undefined) {
        throw unsupported(`${field}.quantization.dtype`, "'uint8', 'uint16' or 'float16'", describeValue(q.dtype));
      }
      byteLength = size * per;
    } else if (spec.dtype === 'string') {
      // Each string: a little-endian uint32 byte count, then the bytes.
      byteLength = 0;
      for (let i = 0; i < size; i++) {
        if (offset + byteLength + 4 > bytes.length) break;
        const len = new DataView(bytes.read(offset + byteLength, 4).buffer).getUint32(0, true);
        byteLength += 4 + len;
      }
    } else {
      const per = lookup(DTYPE_BYTES, spec.dtype);
      if (per === undefined) {
        throw unsupported(`${field}.dtype`, "'float32', 'int32', 'bool', 'complex64' or 'string'", describeValue(spec.dtype));
      }
      byteLength = size * per;
    }
    placed.push({ spec, field, offset, byteLength });
    offset += byteLength;
  }
  if (offset !== bytes.length) {
    throw new ShapeError(dataField, `${offset} bytes (the sum of the manifest's weights; all shards, in manifest order)`, `${bytes.length} bytes`);
  }
  return placed;
}

/** IEEE 754 half → number. */
function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return sign * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (e - 15) * (1 + f / 1024);
}

/** Decodes a float32 weight (plain, or quantized as tfjs dequantizes it). */
function decodeWeight(w: PlacedWeight, bytes: ByteSource): { data: Float64Array; shape: readonly number[] } {
  const { spec, field } = w;
  if (spec.dtype !== 'float32') throw unsupported(`${field}.dtype`, "'float32' (a recurrent layer's weights)", describeValue(spec.dtype));
  const raw = bytes.read(w.offset, w.byteLength);
  const view = new DataView(raw.buffer);
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const out = new Float64Array(n);
  const q = spec.quantization;
  if (!q) {
    for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
  } else if (q.dtype === 'float16') {
    for (let i = 0; i < n; i++) out[i] = halfToNumber(view.getUint16(2 * i, true));
  } else {
    const { scale, min } = q;
    if (typeof scale !== 'number' || typeof min !== 'number') {
      throw new InvalidArgumentError(`${field}.quantization`, `numbers scale and min for ${q.dtype} quantization`, describeValue(q));
    }
    // As tfjs: value = q·scale + min, stored as float32.
    for (let i = 0; i < n; i++) out[i] = Math.fround((q.dtype === 'uint8' ? raw[i] : view.getUint16(2 * i, true)) * scale + min);
  }
  return { data: out, shape: spec.shape };
}

/** A layer node found in the topology. */
interface FoundLayer {
  readonly className: unknown;
  readonly config: unknown;
  readonly classField: string;
  readonly path: string;
}

/** Walks the topology (Sequential, functional, nested models) and returns every non-container layer. */
function topologyLayers(topology: unknown): FoundLayer[] {
  let root = readObject(topology, 'modelTopology');
  let rootPath = 'modelTopology';
  // tensorflowjs_converter wraps the Keras model as { model_config, training_config, … }.
  if (root.model_config !== undefined && root.model_config !== null) {
    rootPath = 'modelTopology.model_config';
    root = readObject(root.model_config, rootPath);
  }
  const out: FoundLayer[] = [];
  const walk = (node: Record<string, unknown>, path: string): void => {
    const classKey = node.class_name !== undefined ? 'class_name' : 'className';
    const className = node[classKey];
    if (typeof className === 'string' && CONTAINERS.has(className)) {
      const config = node.config;
      const layersPath = Array.isArray(config) ? `${path}.config` : `${path}.config.layers`;
      // Keras 2.1 and older write a Sequential's config as the list of layers itself.
      const layers = Array.isArray(config) ? config : readObject(config, `${path}.config`).layers;
      if (!Array.isArray(layers)) throw new InvalidArgumentError(layersPath, 'an array of layers', describeValue(layers));
      layers.forEach((layer: unknown, i) => {
        walk(readObject(layer, `${layersPath}[${i}]`), `${layersPath}[${i}]`);
      });
      return;
    }
    out.push({ className, config: node.config, classField: `${path}.${classKey}`, path });
  };
  walk(root, rootPath);
  return out;
}

/** The weights `…/<layer>/…/kernel`, `recurrent_kernel`, `bias` of a layer, by name. */
function layerWeights(
  name: string,
  placed: readonly PlacedWeight[],
  source: string,
): { kernel?: PlacedWeight; recurrentKernel?: PlacedWeight; bias?: PlacedWeight } {
  const found: Record<string, PlacedWeight> = {};
  for (const w of placed) {
    const parts = w.spec.name.replace(/:\d+$/, '').split('/');
    const at = parts.indexOf(name);
    if (at < 0 || at === parts.length - 1) continue;
    const leaf = parts[parts.length - 1];
    const role = leaf === 'kernel' ? 'kernel' : leaf === 'recurrent_kernel' || leaf === 'recurrentKernel' ? 'recurrentKernel' : leaf === 'bias' ? 'bias' : null;
    if (role === null) continue;
    if (found[role]) {
      throw new InvalidArgumentError(
        source,
        `one weight for ${name}'s ${role}`,
        `'${found[role].spec.name}' and '${w.spec.name}'`,
      );
    }
    found[role] = w;
  }
  return found;
}

function modelFromArgs(model: unknown): Record<string, unknown> {
  const m = readObject(model, 'model');
  if (typeof m.format === 'string' && m.format !== 'layers-model') {
    throw unsupported('model.format', "'layers-model' (a tf.LayersModel saved with model.save, or a converted Keras model)", describeValue(m.format));
  }
  if (m.modelTopology instanceof ArrayBuffer || ArrayBuffer.isView(m.modelTopology)) {
    throw unsupported('model.modelTopology', 'a layers-model topology (JSON)', 'binary data (a GraphDef)');
  }
  return m;
}

/**
 * The cells of every recurrent layer of a saved tfjs layers model, in topology order. `model` is
 * the parsed `model.json` (`{ modelTopology, weightsManifest }`, as `model.save` and
 * `tensorflowjs_converter` write it) or the artifacts a save handler receives
 * (`{ modelTopology, weightSpecs, weightData }`, from `tf.io.withSaveHandler`). `weightData` is
 * the weight bytes: the shard files' contents in manifest order (or one buffer); it may be left
 * out when the artifacts carry `weightData`.
 *
 * Sequential and functional topologies (also nested models, and the `model_config` wrapper of
 * converted Keras models) are searched for `GRU`, `LSTM`, `SimpleRNN` and `RNN` layers; each
 * layer's weights are the manifest entries `<layer name>/…/kernel`, `recurrent_kernel` and
 * `bias` (tfjs writes `gru_GRU1/kernel`, converted Keras models `gru/gru_cell/kernel`). Keys may
 * be snake_case (saved) or camelCase. Float32 weights, also quantized ones (`uint8`, `uint16`,
 * `float16`, dequantized as tfjs does). A GRU converted from Keras with `reset_after: true` (bias
 * `[2, 3H]`) is supported, although tfjs-layers itself cannot load it. Recurrent layers that
 * cannot be migrated (`Bidirectional`, `ConvLSTM2D`, `goBackwards`, an unsupported activation, …)
 * throw typed errors unless `options.skipUnsupported`.
 *
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { cellsFromTfjsModel } from '@pelk/models';
 *
 * const json = JSON.parse(readFileSync('model/model.json', 'utf8'));
 * const shards = json.weightsManifest.flatMap((g) => g.paths.map((p) => readFileSync(`model/${p}`)));
 * for (const { name, className, cell } of cellsFromTfjsModel(json, shards)) console.log(name, className, cell.stateSize);
 * ```
 */
export function cellsFromTfjsModel(
  model: TfjsModelJson | TfjsModelArtifacts,
  weightData?: TfjsWeightData,
  options: TfjsModelOptions = {},
): TfjsModelCell[] {
  const m = modelFromArgs(model);
  const o = readObject(options, 'options');
  checkKnownKeys(o, ['skipUnsupported'], 'options');
  const skip = o.skipUnsupported ?? false;
  if (typeof skip !== 'boolean') throw new InvalidArgumentError('options.skipUnsupported', 'a boolean', describeValue(skip));
  const { specs, source } = readSpecs(m);
  let dataField = 'weightData';
  let data = weightData;
  if (data === undefined && m.weightData !== undefined) {
    data = m.weightData as TfjsWeightData;
    dataField = 'model.weightData';
  }
  if (data === undefined) {
    throw new InvalidArgumentError('weightData', 'the weight bytes (the shard files in manifest order)', 'undefined');
  }
  const bytes = new ByteSource(data, dataField);
  const placed = placeWeights(specs, bytes, dataField);

  const out: TfjsModelCell[] = [];
  for (const layer of topologyLayers(m.modelTopology)) {
    const { className } = layer;
    const recurrent = lookup(LAYER_KINDS, className) !== undefined || className === 'RNN';
    if (!recurrent) {
      if (typeof className === 'string' && UNSUPPORTED_RECURRENT.has(className) && !skip) {
        throw unsupported(layer.classField, SUPPORTED_CLASSES, describeValue(className));
      }
      continue;
    }
    const configPath = `${layer.path}.config`;
    let plan: LayerPlan;
    try {
      plan = planLayer(className, layer.config, layer.classField, configPath, layer.path);
    } catch (e) {
      if (skip && e instanceof InvalidArgumentError && e.code === 'UNSUPPORTED') continue;
      throw e;
    }
    const w = layerWeights(plan.name, placed, source);
    const missing = !w.kernel ? 'kernel' : !w.recurrentKernel ? 'recurrent_kernel' : plan.useBias && !w.bias ? 'bias' : null;
    if (missing !== null) {
      throw new InvalidArgumentError(
        source,
        `a weight named '${plan.name}/${missing}' (or '${plan.name}/…/${missing}') for layer '${plan.name}'`,
        `names ${placed.slice(0, 8).map((p) => `'${p.spec.name}'`).join(', ')}${placed.length > 8 ? ', …' : ''}`,
      );
    }
    if (!plan.useBias && w.bias) {
      throw new InvalidArgumentError(plan.useBiasField, `true (the manifest has '${w.bias.spec.name}')`, 'false');
    }
    const cell = buildCell(plan, {
      kernel: decodeWeight(w.kernel!, bytes),
      recurrentKernel: decodeWeight(w.recurrentKernel!, bytes),
      ...(w.bias ? { bias: decodeWeight(w.bias, bytes) } : {}),
    });
    out.push({ name: plan.name, className: plan.className, cell, path: layer.path });
  }
  return out;
}

/**
 * The cell of one recurrent layer of a saved tfjs layers model: `options.layer` by name, else the
 * only recurrent layer (throws `InvalidArgumentError` when there is none, or several). Arguments
 * as {@link cellsFromTfjsModel}.
 *
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { evaluate } from '@pelk/core';
 * import { cellFromTfjsModel } from '@pelk/models';
 *
 * const json = JSON.parse(readFileSync('model/model.json', 'utf8'));
 * const cell = cellFromTfjsModel(json, [readFileSync('model/weights.bin')]);
 * const out = await evaluate(cell, inputs, { method: 'quasi-deer' });
 * ```
 */
export function cellFromTfjsModel(
  model: TfjsModelJson | TfjsModelArtifacts,
  weightData?: TfjsWeightData,
  options: TfjsModelLayerOptions = {},
): TfjsRecurrentCell {
  const o = readObject(options, 'options');
  checkKnownKeys(o, ['skipUnsupported', 'layer'], 'options');
  const all = cellsFromTfjsModel(model, weightData, { skipUnsupported: o.skipUnsupported as boolean | undefined });
  const names = all.map((c) => `'${c.name}'`).join(', ');
  if (o.layer !== undefined) {
    if (typeof o.layer !== 'string') throw new InvalidArgumentError('options.layer', 'a layer name', describeValue(o.layer));
    const hit = all.find((c) => c.name === o.layer);
    if (!hit) throw new InvalidArgumentError('options.layer', `the name of a recurrent layer (${names || 'none in the model'})`, describeValue(o.layer));
    return hit.cell;
  }
  if (all.length === 0) throw new InvalidArgumentError('model.modelTopology', 'a GRU, LSTM, SimpleRNN or RNN layer', 'no recurrent layer');
  if (all.length > 1) {
    throw new InvalidArgumentError('options.layer', `one of ${names} (the model has ${all.length} recurrent layers)`, 'undefined');
  }
  return all[0].cell;
}

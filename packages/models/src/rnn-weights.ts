/**
 * Reading the weight sets that GRU, LSTM and Elman share (they differ only in the number of gate
 * blocks `G`: 3, 4, 1): PyTorch `state_dict` names and Keras / tfjs-layers `kernel`,
 * `recurrentKernel`, `bias`. Sizes come from the caller when given (a spec's `inputSize` /
 * `hiddenSize`), else from the first weight, so a mismatch names the weight that disagrees.
 */
import { InvalidArgumentError, ShapeError, assertPositiveInteger, checkKnownKeys } from '@pelk/core';
import {
  type HostArrayND,
  expectShape,
  fieldName,
  parseArray,
  readObject,
  readWeight,
  reorderBlocks,
  shapeText,
  toNested,
  transpose,
} from './host.js';
import type { KerasWeightsSpec, TorchWeightsSpec } from './types.js';

/** Option keys of the factories that take sizes only (`gru.torch`, `lstm.torch`). */
export const SIZE_KEYS = ['inputSize', 'hiddenSize'] as const;

/** Option keys of the `random` factories (`elman.random` adds `nonlinearity`). */
export const RANDOM_KEYS = ['inputSize', 'hiddenSize', 'seed', 'scale'] as const;

/** PyTorch `state_dict` names of a one-layer, unidirectional `nn.GRU` / `nn.LSTM` / `nn.RNN`. */
export const TORCH_WEIGHT_KEYS = ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0'] as const;

/** Keras / tfjs-layers weight names. */
export const KERAS_WEIGHT_KEYS = ['kernel', 'recurrentKernel', 'bias'] as const;

/**
 * Checks the names in a PyTorch `state_dict`: only {@link TORCH_WEIGHT_KEYS}. The weights of a
 * second layer (`weight_ih_l1`, …), of the reverse direction (`…_reverse`) or of an LSTM projection
 * (`weight_hr_l0`) are refused with code `UNSUPPORTED`, saying that pelk evaluates one layer;
 * any other unknown name is an `INVALID_ARGUMENT` error with the closest known name.
 */
export function checkTorchWeightKeys(weights: Record<string, unknown>, prefix: string): void {
  const expected = `only the keys ${TORCH_WEIGHT_KEYS.map((k) => `\`${k}\``).join(', ')} (pelk evaluates one layer: a one-layer, unidirectional nn.GRU, nn.LSTM or nn.RNN)`;
  for (const key of Object.keys(weights)) {
    const m = /^(weight|bias)_(ih|hh|hr)_l(\d+)(_reverse)?$/.exec(key);
    if (!m || (TORCH_WEIGHT_KEYS as readonly string[]).includes(key)) continue;
    const layer = Number(m[3]);
    const why =
      layer > 0
        ? `the weights of layer ${layer + 1} (num_layers > 1 is not supported: pelk supports one layer; evaluate each layer as its own cell, feeding it the states of the layer below)`
        : m[4]
          ? 'the weights of the reverse direction (bidirectional=True is not supported: pelk supports one direction of one layer)'
          : 'an LSTM projection (proj_size > 0 is not supported)';
    throw new InvalidArgumentError(fieldName(prefix, key), expected, `\`${key}\`, ${why}`, 'UNSUPPORTED');
  }
  checkKnownKeys(weights, TORCH_WEIGHT_KEYS, prefix);
}

/** Optional sizes that weights must agree with. */
export interface SizeHints {
  readonly inputSize?: unknown;
  readonly hiddenSize?: unknown;
}

/** Weights in PyTorch layout: `W_ih [G·H, I]`, `W_hh [G·H, H]`, biases `[G·H]` (zeros when absent). */
export interface TorchForm {
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly weightIh: Float64Array;
  readonly weightHh: Float64Array;
  readonly biasIh: Float64Array;
  readonly biasHh: Float64Array;
}

/**
 * Sizes from the hints when given, else inferred from the first weight: from its shape when it is
 * a matrix, or from its length and the other size when it is flat (`gates·H·I` elements).
 */
export function sizesFrom(
  lead: HostArrayND,
  leadField: string,
  hints: SizeHints,
  hintField: string,
  gates: number,
  infer: (shape: readonly number[]) => { inputSize?: number; hiddenSize?: number },
  expected: string,
): { inputSize: number; hiddenSize: number } {
  let hiddenSize =
    hints.hiddenSize !== undefined ? assertPositiveInteger(hints.hiddenSize, fieldName(hintField, 'hiddenSize')) : undefined;
  let inputSize =
    hints.inputSize !== undefined ? assertPositiveInteger(hints.inputSize, fieldName(hintField, 'inputSize')) : undefined;
  if (lead.shape.length === 2) {
    const guess = infer(lead.shape);
    hiddenSize ??= guess.hiddenSize;
    inputSize ??= guess.inputSize;
  } else if (lead.shape.length === 1) {
    const n = lead.shape[0];
    if (hiddenSize !== undefined && inputSize === undefined && n % (gates * hiddenSize) === 0) inputSize = n / (gates * hiddenSize) || undefined;
    if (inputSize !== undefined && hiddenSize === undefined && n % (gates * inputSize) === 0) hiddenSize = n / (gates * inputSize) || undefined;
  }
  if (hiddenSize === undefined || inputSize === undefined) throw new ShapeError(leadField, expected, shapeText(lead.shape));
  return { inputSize, hiddenSize };
}

/**
 * Reads `weight_ih_l0`, `weight_hh_l0` and the optional `bias_ih_l0`, `bias_hh_l0`.
 * Returns the torch form and a function that writes them back as a spec.
 */
export function readTorchWeights(
  weights: unknown,
  gates: number,
  hints: SizeHints,
  prefix: string,
  hintField: string,
): { form: TorchForm; spec: () => TorchWeightsSpec } {
  const w = readObject(weights, prefix);
  checkTorchWeightKeys(w, prefix);
  const fIh = fieldName(prefix, 'weight_ih_l0');
  const ih = parseArray(w.weight_ih_l0, fIh);
  const { inputSize: I, hiddenSize: H } = sizesFrom(
    ih,
    fIh,
    hints,
    hintField,
    gates,
    ([r, c]) => (r > 0 && r % gates === 0 && c > 0 ? { hiddenSize: r / gates, inputSize: c } : {}),
    `shape [${gates === 1 ? '' : `${gates}·`}hiddenSize, inputSize] with both > 0`,
  );
  const G = gates * H;
  const weightIh = expectShape(ih, fIh, [G, I]);
  const weightHh = readWeight(w.weight_hh_l0, fieldName(prefix, 'weight_hh_l0'), [G, H]);
  const hasIh = w.bias_ih_l0 !== undefined;
  const hasHh = w.bias_hh_l0 !== undefined;
  const biasIh = hasIh ? readWeight(w.bias_ih_l0, fieldName(prefix, 'bias_ih_l0'), [G]) : new Float64Array(G);
  const biasHh = hasHh ? readWeight(w.bias_hh_l0, fieldName(prefix, 'bias_hh_l0'), [G]) : new Float64Array(G);
  const form = { inputSize: I, hiddenSize: H, weightIh, weightHh, biasIh, biasHh };
  const spec = (): TorchWeightsSpec => ({
    weight_ih_l0: toNested(weightIh, [G, I]) as number[][],
    weight_hh_l0: toNested(weightHh, [G, H]) as number[][],
    ...(hasIh ? { bias_ih_l0: Array.from(biasIh) } : {}),
    ...(hasHh ? { bias_hh_l0: Array.from(biasHh) } : {}),
  });
  return { form, spec };
}

/** Keras weights as read: `kernel [I, G·H]`, `recurrentKernel [H, G·H]`, `bias` rows (0, 1 or 2 of `[G·H]`). */
export interface KerasForm {
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly kernel: Float64Array;
  readonly recurrentKernel: Float64Array;
  /** `null` without a bias; one row `[G·H]`, or two (input, recurrent) for a `resetAfter` GRU. */
  readonly bias: Float64Array | null;
  readonly biasRows: 0 | 1 | 2;
}

/**
 * Reads `kernel`, `recurrentKernel` and the optional `bias` (`[G·H]`, or `[2, G·H]` when
 * `allowTwoBiasRows`). Field names are `prefix.kernel` etc.
 */
export function readKerasWeights(
  weights: Record<string, unknown>,
  gates: number,
  hints: SizeHints,
  prefix: string,
  hintField: string,
  allowTwoBiasRows: boolean,
): { form: KerasForm; spec: () => KerasWeightsSpec } {
  const fK = fieldName(prefix, 'kernel');
  const k = parseArray(weights.kernel, fK);
  const { inputSize: I, hiddenSize: H } = sizesFrom(
    k,
    fK,
    hints,
    hintField,
    gates,
    ([r, c]) => (r > 0 && c > 0 && c % gates === 0 ? { inputSize: r, hiddenSize: c / gates } : {}),
    `shape [inputSize, ${gates === 1 ? '' : `${gates}·`}hiddenSize] with both > 0`,
  );
  const G = gates * H;
  const kernel = expectShape(k, fK, [I, G]);
  const recurrentKernel = readWeight(weights.recurrentKernel, fieldName(prefix, 'recurrentKernel'), [H, G]);
  let bias: Float64Array | null = null;
  let biasRows: 0 | 1 | 2 = 0;
  if (weights.bias !== undefined) {
    const fB = fieldName(prefix, 'bias');
    const b = parseArray(weights.bias, fB);
    const two = allowTwoBiasRows && b.shape.length === 2;
    if (!two && b.shape.length !== 1 && allowTwoBiasRows) {
      throw new ShapeError(fB, `${shapeText([G])} or ${shapeText([2, G])}`, shapeText(b.shape));
    }
    bias = two ? expectShape(b, fB, [2, G]) : expectShape(b, fB, [G]);
    biasRows = two ? 2 : 1;
  }
  const form = { inputSize: I, hiddenSize: H, kernel, recurrentKernel, bias, biasRows };
  const spec = (): KerasWeightsSpec => ({
    kernel: toNested(kernel, [I, G]) as number[][],
    recurrentKernel: toNested(recurrentKernel, [H, G]) as number[][],
    ...(bias ? { bias: biasRows === 2 ? (toNested(bias, [2, G]) as number[][]) : Array.from(bias) } : {}),
  });
  return { form, spec };
}

/**
 * Keras → torch layout: transposes the kernels and reorders the gate blocks (`order[k]` = Keras
 * block that becomes torch block `k`). A single bias row becomes the input bias.
 */
export function kerasToTorch(k: KerasForm, gates: number, order: readonly number[]): TorchForm {
  const { inputSize: I, hiddenSize: H } = k;
  const G = gates * H;
  const reorder = (data: Float64Array, width: number): Float64Array => reorderBlocks(data, H * width, order);
  const biasRow = (row: number): Float64Array =>
    k.bias && row < k.biasRows ? reorder(k.bias.subarray(row * G, (row + 1) * G), 1) : new Float64Array(G);
  return {
    inputSize: I,
    hiddenSize: H,
    weightIh: reorder(transpose(k.kernel, I, G), I),
    weightHh: reorder(transpose(k.recurrentKernel, H, G), H),
    biasIh: biasRow(0),
    biasHh: biasRow(1),
  };
}

/**
 * Host-side validation helpers. They run before anything touches a backend, so a bad call throws a
 * typed error and allocates nothing on the device.
 */
import { InvalidArgumentError, NonFiniteError, ShapeError, describeValue } from './errors.js';
import type { KalmanModel } from './backend.js';
import type { BindContext } from './cell.js';
import type { ShapedArray } from './types.js';

/** A validated host array: flat float64 data and its shape. */
export interface HostTensor {
  readonly data: Float64Array;
  readonly shape: number[];
}

function isShaped(x: unknown): x is ShapedArray {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && 'data' in x && 'shape' in x;
}

/** A typed array of numbers (not a `DataView`, not a `BigInt64Array` / `BigUint64Array`). */
function isNumberTypedArray(x: unknown): x is ArrayLike<number> {
  return ArrayBuffer.isView(x) && !(x instanceof DataView) && !(x instanceof BigInt64Array) && !(x instanceof BigUint64Array);
}

function rankError(field: string, shape: readonly number[], ranks: readonly number[]): ShapeError {
  return new ShapeError(field, `rank ${ranks.join(' or ')}`, `rank ${shape.length} (shape [${shape.join(', ')}])`);
}

/**
 * The shape of nested arrays, a {@link ShapedArray} or a flat typed array (rank 1), checked
 * (rectangular nesting, non-negative integer dimensions, `data.length` equal to the product of
 * `shape`, an allowed rank) WITHOUT copying or reading the values: call it to check size limits
 * before anything is copied. {@link toHostTensor} checks the values (numbers, finite) when it
 * copies; it throws the same errors as this function for a bad shape.
 *
 * @example
 * ```ts
 * shapeOfInputs({ data: new Float32Array(6e6), shape: [1, 2e6, 3] }, 'inputs', [2, 3]); // [1, 2000000, 3]
 * shapeOfInputs([[1, 2], [3, 4]], 'inputs', [2, 3]); // [2, 2]
 * ```
 */
export function shapeOfInputs(value: unknown, field: string, ranks: readonly number[]): number[] {
  let shape: number[];
  if (isShaped(value)) {
    const rawShape: unknown = value.shape;
    if (!Array.isArray(rawShape) && !isNumberTypedArray(rawShape)) {
      throw new ShapeError(`${field}.shape`, 'an array of non-negative integers', describeValue(rawShape));
    }
    shape = Array.from(rawShape as ArrayLike<unknown>) as number[];
    if (!shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new ShapeError(`${field}.shape`, 'non-negative integers', `[${shape.join(', ')}]`);
    }
    const n = shape.reduce((a, b) => a * b, 1);
    const src: unknown = value.data;
    if (
      src === null ||
      typeof src !== 'object' ||
      typeof (src as { length?: unknown }).length !== 'number' ||
      src instanceof DataView ||
      src instanceof BigInt64Array ||
      src instanceof BigUint64Array
    ) {
      throw new InvalidArgumentError(`${field}.data`, 'an array or typed array of numbers', describeValue(src));
    }
    const length = (src as ArrayLike<unknown>).length;
    if (length !== n) {
      throw new ShapeError(`${field}.data`, `${n} elements for shape [${shape.join(', ')}]`, `${length}`);
    }
  } else if (isNumberTypedArray(value)) {
    // A flat typed array is a rank-1 tensor.
    shape = [value.length];
  } else if (Array.isArray(value)) {
    shape = [];
    let probe: unknown = value;
    while (Array.isArray(probe)) {
      shape.push(probe.length);
      probe = probe[0];
    }
    // Rectangular nesting: every array above the last level has the right length (values unread).
    const walk = (v: unknown, depth: number, path: string): void => {
      if (!Array.isArray(v) || v.length !== shape[depth]) {
        throw new ShapeError(`${field}${path}`, `an array of length ${shape[depth]} (rectangular nesting)`, describeValue(v));
      }
      if (depth + 1 < shape.length) for (let i = 0; i < v.length; i++) walk(v[i], depth + 1, `${path}[${i}]`);
    };
    walk(value, 0, '');
  } else {
    throw new InvalidArgumentError(field, `nested arrays or { data, shape } of rank ${ranks.join(' or ')}`, describeValue(value));
  }
  if (!ranks.includes(shape.length)) throw rankError(field, shape, ranks);
  return shape;
}

/**
 * Converts nested arrays or a {@link ShapedArray} to flat float64 data with a shape, checking that
 * nesting is rectangular, the rank is allowed and every value is a finite number (`null`, booleans
 * and strings are refused, never coerced; typed arrays are copied without a per-element check).
 *
 * @example
 * ```ts
 * toHostTensor([[1, 2], [3, 4]], 'inputs', [2, 3]); // { data: Float64Array [1,2,3,4], shape: [2, 2] }
 * ```
 */
export function toHostTensor(value: unknown, field: string, ranks: readonly number[]): HostTensor {
  const shape = shapeOfInputs(value, field, ranks);
  let data: Float64Array;
  if (isShaped(value)) {
    data = copyNumbers(value.data, `${field}.data`);
  } else if (Array.isArray(value)) {
    data = new Float64Array(shape.reduce((a, b) => a * b, 1));
    let k = 0;
    const walk = (v: unknown, depth: number, path: string): void => {
      if (depth === shape.length) {
        if (typeof v !== 'number') throw new InvalidArgumentError(`${field}${path}`, 'a number', describeValue(v));
        data[k++] = v;
        return;
      }
      const a = v as unknown[];
      for (let i = 0; i < a.length; i++) walk(a[i], depth + 1, `${path}[${i}]`);
    };
    walk(value, 0, '');
  } else {
    data = Float64Array.from(value as ArrayLike<number>);
  }
  assertFinite(data, field);
  return { data, shape };
}

/** Copies array-like data to float64: typed arrays at once, anything else element by element, refusing non-numbers. */
function copyNumbers(src: ArrayLike<unknown>, field: string): Float64Array {
  // The constructor copies a typed array natively; Float64Array.from would walk its iterator.
  if (isNumberTypedArray(src)) return new Float64Array(src as unknown as ArrayLike<number>);
  const n = src.length;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = src[i];
    if (typeof v !== 'number') throw new InvalidArgumentError(`${field}[${i}]`, 'a number', describeValue(v));
    out[i] = v;
  }
  return out;
}

/** Throws {@link NonFiniteError} at the first NaN or ±Infinity. */
export function assertFinite(data: ArrayLike<number>, field: string): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!Number.isFinite(v)) throw new NonFiniteError(field, i, v);
  }
}

/** Checks a positive integer option. */
export function assertPositiveInteger(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new InvalidArgumentError(field, 'a positive integer', describeValue(value));
  }
  return value;
}

/** Checks a finite, strictly positive number. */
export function assertPositiveNumber(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidArgumentError(field, 'a finite number > 0', describeValue(value));
  }
  return value;
}

/**
 * Checks the shapes and noise variances of a Kalman primitive's model (every backend's
 * `kalmanDiagonal` / `kalmanDense` runs it before computing); returns `[B, T, D]`.
 *
 * @example
 * ```ts
 * const [B, T, D] = checkKalmanModel(model, false);
 * ```
 */
export function checkKalmanModel(model: KalmanModel, dense: boolean): [number, number, number] {
  const { bias, transition: F, observation: y, init } = model;
  const [B, T, D] = bias.shape;
  const want = dense ? [B, T, D, D] : [B, T, D];
  if (bias.shape.length !== 3 || F.shape.join() !== want.join() || y.shape.join() !== bias.shape.join() || init.size !== B * D) {
    throw new ShapeError(
      dense ? 'kalmanDense' : 'kalmanDiagonal',
      `transition [${want.join(', ')}], bias and observation [B, T, D], init [B, D]`,
      `[${F.shape}], [${bias.shape}], [${y.shape}], [${init.shape}]`,
    );
  }
  for (const [field, v] of [
    ['model.processVariance', model.processVariance],
    ['model.observationVariance', model.observationVariance],
  ] as const) {
    if (!(typeof v === 'number' && Number.isFinite(v) && v > 0)) throw new InvalidArgumentError(field, 'a finite number > 0', describeValue(v));
  }
  return [B, T, D];
}

/**
 * Checks a bind context against a cell's input size before anything is allocated (every
 * `Cell.bind` and `ComputeBackend.bindProgram` runs it): dtype, positive integer batch and steps,
 * and inputs of shape `[batch, steps, inputSize]` in that dtype — or none for an autonomous cell.
 */
export function checkBindContext(ctx: BindContext, inputSize: number, kind: string): void {
  if (!ctx || typeof ctx !== 'object') throw new InvalidArgumentError('context', 'a BindContext', describeValue(ctx));
  if (ctx.dtype !== 'float32' && ctx.dtype !== 'float64') {
    throw new InvalidArgumentError('context.dtype', "'float32' or 'float64'", describeValue(ctx.dtype));
  }
  if (!Number.isInteger(ctx.batch) || ctx.batch < 1) {
    throw new InvalidArgumentError('context.batch', 'a positive integer', describeValue(ctx.batch));
  }
  if (!Number.isInteger(ctx.steps) || ctx.steps < 1) {
    throw new InvalidArgumentError('context.steps', 'a positive integer', describeValue(ctx.steps));
  }
  if (inputSize === 0) {
    if (ctx.inputs !== null && ctx.inputs !== undefined) {
      throw new InvalidArgumentError('context.inputs', `null (a '${kind}' cell takes no inputs)`, 'a tensor');
    }
    return;
  }
  const expected = [ctx.batch, ctx.steps, inputSize];
  const x = ctx.inputs;
  const text = (shape: readonly number[]) => `shape [${shape.join(', ')}]`;
  if (!x || !Array.isArray(x.shape) || x.shape.length !== 3 || x.shape.some((d, i) => d !== expected[i])) {
    throw new ShapeError('context.inputs', `a tensor of ${text(expected)}`, x?.shape ? text(x.shape) : describeValue(x));
  }
  if (x.dtype !== ctx.dtype) throw new InvalidArgumentError('context.inputs.dtype', `'${ctx.dtype}'`, `'${x.dtype}'`);
}

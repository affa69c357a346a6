/**
 * Host-side validation helpers. They run before anything touches a backend, so a bad call throws a
 * typed error and allocates nothing on the device.
 */
import { InvalidArgumentError, NonFiniteError, ShapeError, describeValue } from './errors.js';
import type { KalmanModel } from './backend.js';
import type { ShapedArray } from './types.js';

/** A validated host array: flat float64 data and its shape. */
export interface HostTensor {
  readonly data: Float64Array;
  readonly shape: number[];
}

function isShaped(x: unknown): x is ShapedArray {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && 'data' in x && 'shape' in x;
}

/**
 * Converts nested arrays or a {@link ShapedArray} to flat float64 data with a shape, checking that
 * nesting is rectangular, the rank is allowed and every value is finite.
 *
 * @example
 * ```ts
 * toHostTensor([[1, 2], [3, 4]], 'inputs', [2, 3]); // { data: Float64Array [1,2,3,4], shape: [2, 2] }
 * ```
 */
export function toHostTensor(value: unknown, field: string, ranks: readonly number[]): HostTensor {
  let shape: number[];
  let data: Float64Array;
  if (isShaped(value)) {
    shape = [...value.shape];
    if (!shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new ShapeError(`${field}.shape`, 'non-negative integers', `[${shape.join(', ')}]`);
    }
    const n = shape.reduce((a, b) => a * b, 1);
    const src = value.data;
    if (!src || typeof src.length !== 'number') {
      throw new InvalidArgumentError(`${field}.data`, 'an array or typed array', describeValue(src));
    }
    if (src.length !== n) {
      throw new ShapeError(`${field}.data`, `${n} elements for shape [${shape.join(', ')}]`, `${src.length}`);
    }
    data = Float64Array.from(src as ArrayLike<number>);
  } else if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    // A flat typed array is a rank-1 tensor.
    data = Float64Array.from(value as unknown as ArrayLike<number>);
    shape = [data.length];
  } else if (Array.isArray(value)) {
    shape = [];
    let probe: unknown = value;
    while (Array.isArray(probe)) {
      shape.push(probe.length);
      probe = probe[0];
    }
    const n = shape.reduce((a, b) => a * b, 1);
    data = new Float64Array(n);
    let k = 0;
    const walk = (v: unknown, depth: number, path: string): void => {
      if (depth === shape.length) {
        if (typeof v !== 'number') throw new InvalidArgumentError(`${field}${path}`, 'a number', describeValue(v));
        data[k++] = v;
        return;
      }
      if (!Array.isArray(v) || v.length !== shape[depth]) {
        throw new ShapeError(
          `${field}${path}`,
          `an array of length ${shape[depth]} (rectangular nesting)`,
          describeValue(v),
        );
      }
      for (let i = 0; i < v.length; i++) walk(v[i], depth + 1, `${path}[${i}]`);
    };
    walk(value, 0, '');
  } else {
    throw new InvalidArgumentError(field, `nested arrays or { data, shape } of rank ${ranks.join(' or ')}`, describeValue(value));
  }
  if (!ranks.includes(shape.length)) {
    throw new ShapeError(field, `rank ${ranks.join(' or ')}`, `rank ${shape.length} (shape [${shape.join(', ')}])`);
  }
  assertFinite(data, field);
  return { data, shape };
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

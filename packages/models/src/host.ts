/**
 * Host-side weight handling shared by the cells: parsing user arrays (nested arrays, typed arrays
 * or `{ data, shape }`), shape and finiteness checks with typed errors, layout changes
 * (transposes, gate reordering) and the seeded PRNG of the `random` factories.
 *
 * Everything here runs before a backend is touched, so a bad weight throws and allocates nothing.
 */
import {
  InvalidArgumentError,
  ShapeError,
  assertFinite,
  assertPositiveInteger,
  describeValue,
  nest,
} from '@pelk/core';

/** A parsed host array: flat float64 copy (row-major) and its shape. */
export interface HostArrayND {
  readonly data: Float64Array;
  readonly shape: readonly number[];
}

const FORMS = 'nested arrays, a typed array or { data, shape }';

function isNumericView(x: unknown): x is ArrayLike<number> {
  return ArrayBuffer.isView(x) && !(x instanceof DataView);
}

/**
 * Parses a weight given as nested arrays (whose innermost rows may be typed arrays), a flat typed
 * array, or `{ data, shape }`. The data is copied, so later changes by the caller do not leak in.
 */
export function parseArray(value: unknown, field: string): HostArrayND {
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && !isNumericView(value)) {
    const { data, shape } = value as { data?: unknown; shape?: unknown };
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new InvalidArgumentError(field, FORMS, describeValue(value));
    }
    if (!Array.isArray(data) && !isNumericView(data)) {
      throw new InvalidArgumentError(`${field}.data`, 'an array or typed array', describeValue(data));
    }
    const n = shape.reduce((a: number, b: number) => a * b, 1);
    if (data.length !== n) throw new ShapeError(`${field}.data`, `${n} elements for shape [${shape.join(', ')}]`, `${data.length}`);
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const v = (data as ArrayLike<unknown>)[i];
      if (typeof v !== 'number') throw new InvalidArgumentError(`${field}.data[${i}]`, 'a number', describeValue(v));
      out[i] = v;
    }
    return { data: out, shape: [...shape] };
  }
  if (!Array.isArray(value) && !isNumericView(value)) throw new InvalidArgumentError(field, FORMS, describeValue(value));

  const shape: number[] = [];
  let probe: unknown = value;
  while (Array.isArray(probe) || isNumericView(probe)) {
    shape.push(probe.length);
    if (isNumericView(probe) || probe.length === 0) break;
    probe = probe[0];
  }
  const data = new Float64Array(shape.reduce((a, b) => a * b, 1));
  let k = 0;
  const walk = (v: unknown, depth: number, path: string): void => {
    if (depth === shape.length) {
      if (typeof v !== 'number') throw new InvalidArgumentError(`${field}${path}`, 'a number', describeValue(v));
      data[k++] = v;
      return;
    }
    if ((!Array.isArray(v) && !isNumericView(v)) || v.length !== shape[depth]) {
      throw new ShapeError(`${field}${path}`, `an array of length ${shape[depth]} (rectangular nesting)`, describeValue(v));
    }
    if (isNumericView(v) && depth !== shape.length - 1) {
      throw new ShapeError(`${field}${path}`, `nested arrays ${shape.length - depth} deep`, describeValue(v));
    }
    for (let i = 0; i < v.length; i++) walk(v[i], depth + 1, `${path}[${i}]`);
  };
  walk(value, 0, '');
  return { data, shape };
}

/** True if `shape` exists and equals `expected`. */
export function sameShape(shape: readonly number[] | undefined, expected: readonly number[]): boolean {
  return !!shape && shape.length === expected.length && shape.every((d, i) => d === expected[i]);
}

/** `shape [a, b]`, the form every shape error message uses. */
export function shapeText(shape: readonly number[]): string {
  return `shape [${shape.join(', ')}]`;
}

/**
 * Checks a parsed array against the expected shape (a flat array of the right length is accepted
 * as row-major) and that it is finite. Returns the flat data.
 */
export function expectShape(a: HostArrayND, field: string, shape: readonly number[]): Float64Array {
  const n = shape.reduce((x, y) => x * y, 1);
  const same = a.shape.length === shape.length && a.shape.every((d, i) => d === shape[i]);
  const flat = a.shape.length === 1 && shape.length > 1 && a.data.length === n;
  if (!same && !flat) throw new ShapeError(field, shapeText(shape), shapeText(a.shape));
  assertFinite(a.data, field);
  return a.data;
}

/** {@link parseArray} then {@link expectShape}. */
export function readWeight(value: unknown, field: string, shape: readonly number[]): Float64Array {
  return expectShape(parseArray(value, field), field, shape);
}

/** Joins a field prefix and a name (`'' + 'kernel'` → `'kernel'`). */
export function fieldName(prefix: string, name: string): string {
  return prefix ? `${prefix}.${name}` : name;
}

/** Reads a plain-object argument or throws naming the field. */
export function readObject(value: unknown, field: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidArgumentError(field, 'an object', describeValue(value));
  }
  return value as Record<string, unknown>;
}

/** `[rows, cols]` → `[cols, rows]`. */
export function transpose(data: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

/** Rows `[start, start + count)` of a row-major matrix with `cols` columns (a copy). */
export function rows(data: Float64Array, cols: number, start: number, count: number): Float64Array {
  return data.slice(start * cols, (start + count) * cols);
}

/** Concatenates flat arrays. */
export function concatArrays(parts: readonly Float64Array[]): Float64Array {
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let k = 0;
  for (const p of parts) {
    out.set(p, k);
    k += p.length;
  }
  return out;
}

/**
 * Reorders gate blocks of a row-major array whose rows are `gates × H` blocks
 * (`order[k]` = which source block becomes block `k`).
 */
export function reorderBlocks(data: Float64Array, blockSize: number, order: readonly number[]): Float64Array {
  return concatArrays(order.map((k) => data.slice(k * blockSize, (k + 1) * blockSize)));
}

/** The diagonal of a row-major square matrix. */
export function diagonal(data: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = data[i * n + i];
  return out;
}

/** Flat data → nested arrays (rank 1 or 2), for specs. */
export function toNested(data: Float64Array, shape: readonly number[]): number[] | number[][] {
  if (shape.length === 1) return Array.from(data);
  return nest(data, shape) as number[][];
}

/**
 * mulberry32: a small, fast, well-mixed 32-bit PRNG, so `random` factories give the same weights
 * on every platform for a seed. Returns a function giving numbers uniform in [0, 1).
 *
 * @example
 * ```ts
 * const next = mulberry32(7);
 * const u = next(); // the same on every platform for seed 7
 * ```
 */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** `n` numbers uniform in `[-bound, bound)` from `next`. */
export function uniform(next: () => number, n: number, bound: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (2 * next() - 1) * bound;
  return out;
}

/** Validates the options shared by the `random` factories. */
export function randomOptions(
  options: unknown,
  field: string,
): { inputSize: number; hiddenSize: number; next: () => number; bound: number } {
  const o = readObject(options, field);
  const inputSize = assertPositiveInteger(o.inputSize, `${field}.inputSize`);
  const hiddenSize = assertPositiveInteger(o.hiddenSize, `${field}.hiddenSize`);
  const seed = o.seed ?? 0;
  if (typeof seed !== 'number' || !Number.isInteger(seed)) {
    throw new InvalidArgumentError(`${field}.seed`, 'an integer', describeValue(seed));
  }
  const scale = o.scale ?? 1 / Math.sqrt(hiddenSize);
  if (typeof scale !== 'number' || !Number.isFinite(scale) || scale < 0) {
    throw new InvalidArgumentError(`${field}.scale`, 'a finite number ≥ 0', describeValue(scale));
  }
  return { inputSize, hiddenSize, next: mulberry32(seed), bound: scale };
}

import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, NonFiniteError, ShapeError } from './errors.js';
import { shapeOfInputs, toHostTensor } from './validate.js';

describe('toHostTensor', () => {
  it('accepts nested arrays, { data, shape } and flat typed arrays', () => {
    expect(toHostTensor([[1, 2], [3, 4]], 'x', [2])).toEqual({ data: Float64Array.from([1, 2, 3, 4]), shape: [2, 2] });
    expect(toHostTensor({ data: [1, 2, 3], shape: [1, 3] }, 'x', [2]).shape).toEqual([1, 3]);
    expect(toHostTensor(Float32Array.from([1, 2]), 'x', [1]).shape).toEqual([2]);
  });

  it('names the field, the expectation and what came', () => {
    const ragged = (() => {
      try {
        toHostTensor([[1, 2], [3]], 'inputs', [2]);
      } catch (e) {
        return e as ShapeError;
      }
    })();
    expect(ragged).toBeInstanceOf(ShapeError);
    expect(ragged?.field).toBe('inputs[1]');
    expect(() => toHostTensor([[1, Number.NaN]], 'inputs', [2])).toThrow(NonFiniteError);
    expect(() => toHostTensor([1, 2], 'inputs', [2, 3])).toThrow(/rank 2 or 3/);
    expect(() => toHostTensor('abc', 'inputs', [2])).toThrow(InvalidArgumentError);
    expect(() => toHostTensor({ data: [1, 2], shape: [3] }, 'x', [1])).toThrow(/x.data: expected 3 elements/);
  });
});

/** The error `fn` throws, checked to be an instance of `type`. */
function thrown<E extends Error>(fn: () => unknown, type: new (...args: never[]) => E): E {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(type);
    return e as E;
  }
  throw new Error('expected an error');
}

describe('toHostTensor: { data, shape } holds numbers only', () => {
  it('refuses null, booleans and strings instead of coercing them, naming the element', () => {
    for (const [data, i, received] of [
      [[1, null, true, '0x10'], 1, 'null'],
      [[1, 2, true, 4], 2, 'boolean'],
      [[1, 2, 3, '0x10'], 3, '"0x10"'],
      [[undefined, 2, 3, 4], 0, 'undefined'],
      [[1, [2], 3, 4], 1, 'an array of length 1'],
    ] as const) {
      const e = thrown(() => toHostTensor({ data: data as unknown as number[], shape: [2, 2] }, 'inputs', [2]), InvalidArgumentError);
      expect(e.code).toBe('INVALID_ARGUMENT');
      expect(e.field).toBe(`inputs.data[${i}]`);
      expect(e.expected).toBe('a number');
      expect(e.received).toBe(received);
      expect(e.message).toBe(`inputs.data[${i}]: expected a number, received ${received}`);
    }
  });

  it('refuses the same values in nested arrays (the two forms agree)', () => {
    const e = thrown(() => toHostTensor([[1, null], [true, '0x10']] as unknown as number[][], 'inputs', [2]), InvalidArgumentError);
    expect(e.field).toBe('inputs[0][1]');
    expect(e.message).toBe('inputs[0][1]: expected a number, received null');
  });

  it('accepts typed arrays and plain number arrays, array-likes included', () => {
    expect(toHostTensor({ data: Float32Array.from([1, 2, 3, 4]), shape: [2, 2] }, 'x', [2]).data).toEqual(Float64Array.from([1, 2, 3, 4]));
    expect(toHostTensor({ data: Int8Array.from([-1, 2]), shape: [1, 2] }, 'x', [2]).data).toEqual(Float64Array.from([-1, 2]));
    expect(toHostTensor({ data: { length: 2, 0: 5, 1: 6 }, shape: [2] }, 'x', [1]).data).toEqual(Float64Array.from([5, 6]));
    expect(() => toHostTensor({ data: [1, Number.POSITIVE_INFINITY], shape: [2] }, 'x', [1])).toThrow(NonFiniteError);
  });

  it('refuses BigInt arrays, DataViews and bad shapes with typed errors', () => {
    const big = thrown(() => toHostTensor({ data: new BigInt64Array(2), shape: [2] }, 'inputs', [1]), InvalidArgumentError);
    expect(big.field).toBe('inputs.data');
    expect(big.received).toBe('a BigInt64Array of length 2');
    expect(thrown(() => toHostTensor(new BigUint64Array(2), 'inputs', [1]), InvalidArgumentError).field).toBe('inputs');
    expect(thrown(() => toHostTensor({ data: new DataView(new ArrayBuffer(8)), shape: [1] }, 'inputs', [1]), InvalidArgumentError).field).toBe(
      'inputs.data',
    );
    const shape = thrown(() => toHostTensor({ data: [1], shape: 1 as unknown as number[] }, 'inputs', [1]), ShapeError);
    expect(shape.field).toBe('inputs.shape');
    expect(shape.received).toBe('1');
  });
});

describe('shapeOfInputs', () => {
  it('returns the shape of every input form', () => {
    expect(shapeOfInputs([[1, 2, 3], [4, 5, 6]], 'inputs', [2, 3])).toEqual([2, 3]);
    expect(shapeOfInputs([[[1], [2]]], 'inputs', [2, 3])).toEqual([1, 2, 1]);
    expect(shapeOfInputs({ data: [1, 2, 3, 4, 5, 6], shape: [1, 3, 2] }, 'inputs', [2, 3])).toEqual([1, 3, 2]);
    expect(shapeOfInputs(new Float32Array(7), 'x', [1])).toEqual([7]);
    expect(shapeOfInputs([[], []], 'inputs', [2])).toEqual([2, 0]);
  });

  it('reads no values: a huge { data, shape } costs nothing, non-numbers are left to toHostTensor', () => {
    // An array-like whose elements throw when read: only `length` may be touched.
    const data = new Proxy({ length: 3e9 }, {
      get: (t, k) => {
        if (k === 'length') return t.length;
        throw new Error(`read ${String(k)}`);
      },
    });
    expect(shapeOfInputs({ data, shape: [1, 1e9, 3] }, 'inputs', [2, 3])).toEqual([1, 1e9, 3]);
    expect(shapeOfInputs({ data: [1, null, true, '0x10'] as unknown as number[], shape: [2, 2] }, 'inputs', [2])).toEqual([2, 2]);
    expect(shapeOfInputs([[1, null], ['a', true]], 'inputs', [2])).toEqual([2, 2]);
  });

  it('throws the shape errors toHostTensor throws', () => {
    const ragged = thrown(() => shapeOfInputs([[1, 2], [3]], 'inputs', [2]), ShapeError);
    expect(ragged.field).toBe('inputs[1]');
    expect(ragged.message).toBe('inputs[1]: expected an array of length 2 (rectangular nesting), received an array of length 1');
    const ragged3 = thrown(() => shapeOfInputs([[[1], [2]], [[3], 4]], 'inputs', [3]), ShapeError);
    expect(ragged3.field).toBe('inputs[1][1]');
    const rank = thrown(() => shapeOfInputs([1, 2], 'inputs', [2, 3]), ShapeError);
    expect(rank.message).toBe('inputs: expected rank 2 or 3, received rank 1 (shape [2])');
    const count = thrown(() => shapeOfInputs({ data: [1, 2], shape: [3] }, 'x', [1]), ShapeError);
    expect(count.message).toBe('x.data: expected 3 elements for shape [3], received 2');
    const dims = thrown(() => shapeOfInputs({ data: [], shape: [-1, 2] }, 'x', [2]), ShapeError);
    expect(dims.field).toBe('x.shape');
    expect(thrown(() => shapeOfInputs('abc', 'inputs', [2]), InvalidArgumentError).field).toBe('inputs');
    expect(thrown(() => shapeOfInputs({ data: null, shape: [0] }, 'inputs', [1]), InvalidArgumentError).field).toBe('inputs.data');
  });
});

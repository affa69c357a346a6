import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, NonFiniteError, ShapeError } from './errors.js';
import { toHostTensor } from './validate.js';

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

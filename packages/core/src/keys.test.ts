import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from './errors.js';
import { checkKnownKeys, closestKey } from './keys.js';

/** The error `fn` throws (fails the test when it throws nothing). */
function thrown(fn: () => void): InvalidArgumentError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidArgumentError);
    return e as InvalidArgumentError;
  }
  throw new Error('expected an error');
}

const RNN = ['inputSize', 'hiddenSize', 'nonlinearity'] as const;

describe('checkKnownKeys', () => {
  it('accepts objects with known keys only (also a subset, and none)', () => {
    expect(() => checkKnownKeys({ inputSize: 1, nonlinearity: 'relu' }, RNN, 'options')).not.toThrow();
    expect(() => checkKnownKeys({}, RNN, 'options')).not.toThrow();
    expect(() => checkKnownKeys({}, [], 'options')).not.toThrow();
  });

  it('names the unknown key, the known ones, and the closest (case-insensitive) match', () => {
    const e = thrown(() => checkKnownKeys({ inputSize: 1, nonLinearity: 'relu' }, RNN, 'options'));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.field).toBe('options.nonLinearity');
    expect(e.expected).toBe('only the keys `inputSize`, `hiddenSize`, `nonlinearity`');
    expect(e.received).toBe('an unknown key `nonLinearity` (did you mean `nonlinearity`?)');
    expect(e.message).toBe(
      'options.nonLinearity: expected only the keys `inputSize`, `hiddenSize`, `nonlinearity`, ' +
        'received an unknown key `nonLinearity` (did you mean `nonlinearity`?)',
    );
  });

  it('suggests a key within a small edit distance (typos, transpositions)', () => {
    expect(thrown(() => checkKnownKeys({ hiddenSzie: 4 }, RNN, 'options')).received).toMatch(/did you mean `hiddenSize`\?/);
    expect(thrown(() => checkKnownKeys({ inputsize: 4 }, RNN, 'options')).received).toMatch(/did you mean `inputSize`\?/);
    expect(thrown(() => checkKnownKeys({ hidenSize: 4 }, RNN, 'options')).received).toMatch(/did you mean `hiddenSize`\?/);
    expect(thrown(() => checkKnownKeys({ bias_ih_lo: [] }, ['bias_ih_l0'], 'spec.weights')).received).toMatch(
      /did you mean `bias_ih_l0`\?/,
    );
  });

  it('gives no hint when nothing is close', () => {
    const e = thrown(() => checkKnownKeys({ momentum: 0.9 }, RNN, 'options'));
    expect(e.field).toBe('options.momentum');
    expect(e.received).toBe('an unknown key `momentum`');
    // Short names need a near match: 'dx' is not taken for 'dt'.
    expect(thrown(() => checkKnownKeys({ dx: 1 }, ['dt', 'forcing'], 'cell')).received).toBe('an unknown key `dx`');
  });

  it('reports the first unknown key in insertion order, even when its value is undefined', () => {
    const e = thrown(() => checkKnownKeys({ inputSize: 1, foo: undefined, bar: 2 }, RNN, 'options'));
    expect(e.field).toBe('options.foo');
  });

  it('writes paths for an empty prefix and for keys that are not identifiers', () => {
    expect(thrown(() => checkKnownKeys({ seeds: 1 }, ['seed'], '')).field).toBe('seeds');
    expect(thrown(() => checkKnownKeys({ 'hidden size': 1 }, RNN, 'options')).field).toBe('options["hidden size"]');
    expect(thrown(() => checkKnownKeys({ x: 1 }, [], 'options')).expected).toBe('no keys');
  });

  it('ignores inherited and non-enumerable properties', () => {
    const o = Object.create({ inherited: 1 }) as Record<string, unknown>;
    Object.defineProperty(o, 'hidden', { value: 1, enumerable: false });
    o.inputSize = 1;
    expect(() => checkKnownKeys(o, RNN, 'options')).not.toThrow();
  });
});

describe('closestKey', () => {
  it('prefers a case-insensitive match, then the smallest distance', () => {
    expect(closestKey('NONLINEARITY', RNN)).toBe('nonlinearity');
    expect(closestKey('weight_hh_l1', ['weight_ih_l0', 'weight_hh_l0'])).toBe('weight_hh_l0');
    expect(closestKey('integratr', ['dimension', 'forcing', 'dt', 'integrator'])).toBe('integrator');
    expect(closestKey('zzz', RNN)).toBeUndefined();
  });
});

import { InvalidArgumentError } from '@pelk/core';
import { describe, expect, it } from 'vitest';
import { lorenz96 } from './lorenz96.js';
import { cellContract, thrownBy } from '../test/support.js';

describe('lorenz96 cells', () => {
  cellContract('rk4', () => lorenz96({ dimension: 5, forcing: 8, dt: 0.01 }), { stateScale: 3, stateOffset: 6 });
  cellContract('euler', () => lorenz96({ dimension: 6, forcing: 8, dt: 0.05, integrator: 'euler' }), { stateScale: 3 });
  cellContract('rk4 large dt', () => lorenz96({ dimension: 4, forcing: 4, dt: 0.1 }), { stateScale: 3 });
});

describe('lorenz96 options', () => {
  it('validates with typed errors', () => {
    expect(() => lorenz96({ dimension: 0 })).toThrow(/options.dimension/);
    expect(() => lorenz96({ dimension: 5, dt: -1 })).toThrow(/options.dt/);
    expect(() => lorenz96({ dimension: 5, forcing: Number.NaN })).toThrow(/options.forcing/);
    expect(() => lorenz96({ dimension: 5, integrator: 'dopri5' as never })).toThrow(InvalidArgumentError);
    expect(lorenz96({ dimension: 5 }).toSpec()).toEqual({ type: 'lorenz96', dimension: 5, forcing: 8, dt: 0.01, integrator: 'rk4' });
  });
});

describe('lorenz96 options: unknown keys are errors', () => {
  it('names the key and suggests the known one', () => {
    const e = thrownBy(() => lorenz96({ dimension: 5, dT: 0.05 } as never));
    expect(e.field).toBe('options.dT');
    expect(e.expected).toBe('only the keys `dimension`, `forcing`, `dt`, `integrator`');
    expect(e.received).toBe('an unknown key `dT` (did you mean `dt`?)');
    // A spec's `type` is not an option of the factory.
    expect(thrownBy(() => lorenz96({ type: 'lorenz96', dimension: 5 } as never)).field).toBe('options.type');
  });
});

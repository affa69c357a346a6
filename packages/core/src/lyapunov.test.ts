/** The verdict rules and readings of `lyapunovVerdict` (the estimator runs in the conformance suite, on every backend). */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from './errors.js';
import { lyapunovVerdict } from './lyapunov.js';

describe('lyapunovVerdict', () => {
  it('unpredictable: surely positive (λ − 3σ > 0) and growing by more than e over the horizon', () => {
    expect(lyapunovVerdict(0.012, 0.001, 10_000)).toEqual({
      verdict: 'unpredictable',
      reading: 'unpredictable (λ ≈ +0.012 ± 0.001 per step): parallel iterations will grow with T',
    });
  });

  it('predictable: surely negative (λ + 3σ < 0), whatever the horizon', () => {
    expect(lyapunovVerdict(-0.69, 0, 1)).toEqual({
      verdict: 'predictable',
      reading: 'predictable (λ ≈ −0.69 ± 0 per step): parallel iterations stay few',
    });
    expect(lyapunovVerdict(-0.01, 0.003, 10).verdict).toBe('predictable');
  });

  it('marginal: the sign is uncertain, or the growth over the horizon stays below e', () => {
    const uncertain = lyapunovVerdict(0.001, 0.002, 1e6);
    expect(uncertain.verdict).toBe('marginal');
    expect(uncertain.reading).toBe('marginal (λ ≈ +0.001 ± 0.002 per step): neither clearly expanding nor contracting; parallel iterations may grow slowly with T');
    expect(lyapunovVerdict(-0.001, 0.001, 1e6).verdict).toBe('marginal');
    const slow = lyapunovVerdict(0.001, 0.0001, 500); // λ·T = 0.5
    expect(slow.verdict).toBe('marginal');
    expect(slow.reading).toBe('marginal (λ ≈ +0.001 ± 0.0001 per step): errors grow by less than e over 500 steps; parallel iterations may still grow with T');
    // The same exponent over a longer sequence.
    expect(lyapunovVerdict(0.001, 0.0001, 5000).verdict).toBe('unpredictable');
    // Exactly at the thresholds: not yet sure.
    expect(lyapunovVerdict(0.03, 0.01, 1e6).verdict).toBe('marginal');
    expect(lyapunovVerdict(0.01, 0.001, 100).verdict).toBe('marginal');
  });

  it('unknown: NaN exponent, or NaN standard error (too few chunks)', () => {
    expect(lyapunovVerdict(Number.NaN, Number.NaN, 100).verdict).toBe('unknown');
    const oneChunk = lyapunovVerdict(-0.36, Number.NaN, 100);
    expect(oneChunk.verdict).toBe('unknown');
    expect(oneChunk.reading).toBe('unknown (λ ≈ −0.36 per step, spread unknown): too few steps to judge');
  });

  it('readings are one line with two significant digits and a true minus sign', () => {
    for (const [x, s] of [
      [0, 0],
      [1e-7, 3e-8],
      [-16.635532333438686, 0],
      [123.456, 7.891],
    ]) {
      const { reading } = lyapunovVerdict(x, s, 100);
      expect(reading).not.toMatch(/\n/);
      expect(reading).not.toMatch(/[≈±] -/); // signs are '+' and '−' (U+2212); exponents stay 'e-7'
    }
    expect(lyapunovVerdict(-16.635532333438686, 0, 100).reading).toContain('λ ≈ −17 ± 0 per step');
    expect(lyapunovVerdict(1.234e-7, 0, 1e9).reading).toContain('λ ≈ +1.2e-7 ± 0 per step');
  });

  it('rejects a horizon that is not a positive number', () => {
    expect(() => lyapunovVerdict(0.1, 0.01, 0)).toThrow(InvalidArgumentError);
    expect(() => lyapunovVerdict(0.1, 0.01, Number.NaN)).toThrow(InvalidArgumentError);
  });
});

import { describe, expect, it } from 'vitest';
import { DEFAULTS, describeProblem, parseSettings, settingsQuery } from './settings.js';

describe('demo settings from the URL', () => {
  it('reads every parameter of the automation contract', () => {
    const { settings, problems } = parseSettings('?model=lstm&D=64&T=10000&B=2&method=quasi-deer,deer&backend=webgpu&tol=1e-5&maxIter=50&sigma=0.5&seed=7&gain=2&animate=0&run=1');
    expect(problems).toEqual([]);
    expect(settings).toEqual({
      model: 'lstm',
      D: 64,
      T: 10000,
      B: 2,
      methods: ['quasi-deer', 'deer'],
      backend: 'webgpu',
      tolerance: 1e-5,
      maxIterations: 50,
      sigmaSq: 0.5,
      seed: 7,
      gain: 2,
      forcing: 8,
      animate: false,
      run: true,
    });
    expect(parseSettings('?method=all').settings.methods).toEqual(['sequential', 'deer', 'quasi-deer', 'elk', 'quasi-elk', 'auto']);
    expect(parseSettings('?model=hot-gru').settings.gain).toBe(5);
    expect(parseSettings('?model=lorenz96&F=2').settings.forcing).toBe(2);
    // The trained AR-GRU has its own size, D = 4.
    expect(parseSettings('?model=ar-gru').settings.D).toBe(4);
    expect(parseSettings('?model=ar-gru&D=4').problems).toEqual([]);
    expect(parseSettings('?model=ar-gru&D=16').problems.map(describeProblem)).toEqual(["D: expected 4 (the trained AR-GRU's state size) or nothing, got \"16\""]);
  });

  it('names the parameter, what it accepts and what it got, and keeps the default', () => {
    const { settings, problems } = parseSettings('?T=0&D=-1&method=newton&backend=tpu&tol=abc&run=yes&colour=red');
    expect(problems.map(describeProblem)).toEqual([
      'colour: expected one of the parameters model, D, T, B, method, backend, tol, maxIter, sigma, seed, gain, F, animate, run, got "colour"',
      'D: expected an integer from 1 to 512, got "-1"',
      'T: expected an integer from 1 to 100,000,000, got "0"',
      'method: expected all, or a comma-separated list of sequential, deer, quasi-deer, elk, quasi-elk, auto, got "newton"',
      'backend: expected auto | webgpu | cpu, got "tpu"',
      'tol: expected a positive number, got "abc"',
      'run: expected 1 or 0, got "yes"',
    ]);
    expect(settings).toEqual({ ...DEFAULTS, tolerance: undefined, maxIterations: undefined });
    expect(parseSettings('?model=lorenz96&D=3').problems.map((p) => p.parameter)).toEqual(['D']);
    expect(parseSettings('?T=0x10&B=1e3&D= 4').problems.map((p) => p.parameter)).toEqual(['D', 'T', 'B']);
    expect(parseSettings('?method=deer,deer,elk').settings.methods).toEqual(['deer', 'elk']);
  });

  it('writes settings back to a query that reads the same', () => {
    for (const q of ['', '?model=lstm&D=64&T=10000&method=quasi-deer&backend=webgpu&run=1', '?model=lorenz96&D=8&F=2&sigma=0.25&animate=0', '?model=hot-gru&gain=3', '?model=ar-gru&T=500&seed=3']) {
      const { settings } = parseSettings(q);
      expect(parseSettings(settingsQuery(settings)).settings, q).toEqual(settings);
    }
    expect(settingsQuery(DEFAULTS)).toBe('');
  });
});

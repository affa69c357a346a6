import { describe, expect, it } from 'vitest';
import {
  STABILITY_TARGETS,
  type StabilityProblem,
  type StabilityReport,
  type StabilityRun,
  type StabilitySummary,
  formatStability,
  formatTargets,
  stabilityTargets,
} from './commands/stability.js';
import { iterationsVsSigmaPlot, residualPlot, stabilityOverviewPlot } from './plots.js';

const run = (method: StabilityRun['method'], sigmaSq: StabilityRun['sigmaSq'], iterations: number, converged = true): StabilityRun => ({
  problem: 'toy',
  method,
  kalman: method.includes('elk') ? 'filter' : undefined,
  sigmaSq,
  iterations,
  converged,
  ms: 1,
  error: 0,
  residuals: Array.from({ length: iterations }, (_, i) => 10 ** -i),
});

describe('stability plots and summary', () => {
  const runs = [run('deer', undefined, 9), run('elk', 'adaptive', 4), run('elk', 100, 5), run('elk', 1e6, 1000, false)];
  const summary = [
    { problem: 'toy', method: 'elk' as const, kalman: 'filter' as const, bestSigmaSq: 100, bestIterations: 5, adaptiveIterations: 4, ratio: 0.8 },
  ];

  it('draws residual against iteration as a standalone SVG with labelled axes', () => {
    const svg = residualPlot('toy', runs, summary);
    expect(svg).toMatch(/^<\?xml/);
    expect(svg).toContain('xmlns="http://www.w3.org/2000/svg"');
    expect(svg).toContain('iteration');
    expect(svg).toContain('residual');
    expect(svg).toContain('elk filter adaptive');
    expect(svg).toContain('elk filter σ²=100');
    expect(svg).not.toContain('σ²=1000000'); // not the best fixed σ²
  });

  it('draws iterations against σ², marking runs that did not converge', () => {
    const svg = iterationsVsSigmaPlot('toy', runs, 1000);
    expect(svg).toContain('σ² = 1/λ (fixed)');
    expect(svg).toContain('not converged within its cap');
    expect(svg).toContain('cap ≤ 1000');
  });

  it('summarises adaptive against the best fixed σ²', () => {
    const report: StabilityReport = { kind: 'pelk-stability', date: '', backend: 'cpu', quick: true, maxIterations: 1000, tolerance: 1e-9, runs, summary };
    const text = formatStability(report);
    expect(text).toContain('σ²=100: 5');
    expect(text).toContain('0.8×');
    // One stopping rule, stated once for every column: evaluate's certificate at the suite's tolerance.
    expect(text.split('\n')[0]).toMatch(/^Stopping rule \(every column\): .*result\.converged.*≤ 1e-9.*cap T \+ 1 .*\.$/);
    // A report without problems or sets (written before they existed) is read as one tuning problem.
    expect(text).toContain('Tuning problems');
    expect(text).not.toContain('Held-out problems');
    const stopped = formatStability({ ...report, runs: [...runs, { ...run('quasi-deer', undefined, 1000, false), reason: 'max-iterations' }] });
    expect(stopped).toContain('NOT converged (max-iterations, 1000)');
  });
});

describe('stability sets and targets', () => {
  const problem = (name: string, set: StabilityProblem['set'], over: Partial<StabilityProblem> = {}): StabilityProblem => ({
    name,
    set,
    kind: 'gru',
    regime: 'hot',
    description: name,
    steps: 100,
    stateSize: 4,
    maxIterations: 101,
    swept: false,
    lyapunov: null,
    ...over,
  });
  const at = (p: StabilityProblem, method: StabilityRun['method'], iterations: number, over: Partial<StabilityRun> = {}): StabilityRun => ({
    ...run(method, method.includes('elk') ? 'adaptive' : undefined, iterations),
    problem: p.name,
    set: p.set,
    maxIterations: p.maxIterations,
    nonFiniteResets: 0,
    clippedValues: 0,
    ...over,
  });
  const hot = problem('hot', 'held-out');
  const dirty = problem('dirty', 'held-out', { regime: 'past the edge' });
  const calm = problem('calm', 'held-out', { regime: 'contractive', expectedLyapunov: 'negative', lyapunov: { exponent: -0.4, standardError: 0.01, verdict: 'predictable' }, lyapunovFrom: 'deer' });
  const chaos = problem('chaos', 'held-out', { kind: 'lorenz96', regime: 'chaotic', expectedLyapunov: 'positive' });
  const swept = problem('swept', 'held-out', { kind: 'argru', regime: 'trained', swept: true });
  const tuned = problem('tuned', 'tuning', { kind: 'argru', regime: 'trained', swept: true });
  const problems = [tuned, hot, dirty, calm, chaos, swept];
  const runs: StabilityRun[] = [
    at(tuned, 'deer', 50),
    at(tuned, 'elk', 40),
    at(tuned, 'elk', 30, { sigmaSq: 100 }),
    at(hot, 'deer', 5),
    at(hot, 'quasi-deer', 30),
    at(hot, 'elk', 17),
    at(hot, 'quasi-elk', 30),
    // DEER converged, but only after clipping: not clean, so (a) does not apply.
    at(dirty, 'deer', 60, { clippedValues: 12 }),
    at(dirty, 'elk', 101, { converged: false, reason: 'max-iterations' }),
    at(calm, 'deer', 3),
    at(calm, 'elk', 3),
    at(chaos, 'deer', 90, { nonFiniteResets: 3 }),
    at(chaos, 'elk', 40),
    at(swept, 'elk', 13),
    at(swept, 'elk', 10, { sigmaSq: 1e6 }),
    at(swept, 'elk', 10, { sigmaSq: 1e4, converged: false, reason: 'max-iterations', maxIterations: 10 }),
  ];
  const summary: StabilitySummary[] = [
    { problem: 'tuned', set: 'tuning', method: 'elk', kalman: 'filter', bestSigmaSq: 100, bestIterations: 30, adaptiveIterations: 40, ratio: 1.33 },
    { problem: 'swept', set: 'held-out', method: 'elk', kalman: 'filter', bestSigmaSq: 1e6, bestIterations: 10, adaptiveIterations: 13, ratio: 1.3 },
  ];
  const targets = stabilityTargets(problems, runs, summary);
  const of = (set: StabilityProblem['set'], id: string) => targets.find((t) => t.set === set && t.id === id)!;

  it('computes every target per set from the runs', () => {
    expect(targets.map((t) => `${t.set} ${t.id}`)).toEqual(['tuning a', 'tuning a-quasi', 'tuning b', 'tuning c', 'tuning d', 'held-out a', 'held-out a-quasi', 'held-out b', 'held-out c', 'held-out d']);
    // (a): only where DEER converged clean; 17 / 5 = 3.4 fails the bound.
    expect(STABILITY_TARGETS.adaptiveVsDeer).toBe(1.25);
    expect(of('held-out', 'a').checks.map((c) => [c.problem, c.value, c.met])).toEqual([
      ['hot', 3.4, false],
      ['calm', 1, true],
    ]);
    expect(of('held-out', 'a').met).toBe(false);
    expect(of('held-out', 'a-quasi').checks.map((c) => [c.problem, c.value, c.met])).toEqual([['hot', 1, true]]);
    expect(of('held-out', 'a-quasi').met).toBe(true);
    expect(of('tuning', 'a').checks.map((c) => c.value)).toEqual([0.8]);
    // (b): the failures among the method runs (not the fixed σ² runs).
    expect(of('held-out', 'b').checked).toBe(runs.filter((r) => r.set === 'held-out' && typeof r.sigmaSq !== 'number').length);
    expect(of('held-out', 'b').checks.map((c) => c.detail)).toEqual(['elk filter adaptive: NOT converged (max-iterations, 101)']);
    expect(of('tuning', 'b').met).toBe(true);
    // (c): a missing estimate cannot be judged; a present one is.
    expect(of('held-out', 'c').checks.map((c) => [c.problem, c.value, c.met])).toEqual([
      ['calm', -0.4, true],
      ['chaos', null, null],
    ]);
    expect(of('held-out', 'c').met).toBe(true);
    expect(of('tuning', 'c').met).toBeNull();
    // (d): adaptive / best fixed σ² against 1.3.
    expect(of('held-out', 'd').checks.map((c) => [c.problem, c.value, c.met])).toEqual([['swept', 1.3, true]]);
    expect(of('tuning', 'd').met).toBe(false);
  });

  it('prints the targets per set, met / NOT met per line with the numbers', () => {
    const text = formatTargets(targets);
    const tuning = text.indexOf('  tuning problems:');
    const heldOut = text.indexOf('  held-out problems:');
    expect(tuning).toBeGreaterThan(0);
    expect(heldOut).toBeGreaterThan(tuning);
    const held = text.slice(heldOut);
    expect(held).toMatch(/\(a\) elk adaptive \/ deer iterations ≤ 1\.25 .*: NOT met\n/);
    expect(held).toMatch(/hot +elk 17 \/ deer 5 = 3\.4 {2}NOT met/);
    expect(held).toMatch(/\(b\) .*: NOT met — 1 of 11 runs failed/);
    expect(held).toMatch(/chaos {2}no estimate \(expected > 0\) {2}n\/a/);
    expect(held).toMatch(/\(d\) .*: met\n.*elk adaptive 13 \/ σ²=1000000 10 = 1\.3 {2}met/);
    expect(text.slice(tuning, heldOut)).toMatch(/\(d\) .*: NOT met/);
    const report: StabilityReport = { kind: 'pelk-stability', date: '', backend: 'cpu', quick: true, maxIterations: 101, tolerance: 1e-9, sets: ['tuning', 'held-out'], problems, runs, summary, targets };
    const full = formatStability(report);
    expect(full.indexOf('Tuning problems')).toBeLessThan(full.indexOf('Held-out problems'));
    expect(full.indexOf('Held-out problems')).toBeLessThan(full.indexOf('Targets'));
    expect(full).toMatch(/dirty +past the edge .* 60† +NOT converged \(max-iterations, 101\)/);
    expect(full).toContain('−0.40 ± 0.01 (predictable)');
  });

  it('draws an overview of one set: a panel per problem, the cap marked', () => {
    const svg = stabilityOverviewPlot('held-out', problems.filter((p) => p.set === 'held-out'), runs);
    expect(svg).toMatch(/^<\?xml/);
    expect(svg).toContain('held-out problems: iterations per method');
    for (const name of ['hot', 'dirty', 'calm', 'chaos', 'swept']) expect(svg).toContain(`>${name}<`);
    expect(svg).not.toContain('>tuned<');
    expect(svg).toContain('elk filter adaptive');
  });
});

import { describe, expect, it } from 'vitest';
import { type StabilityReport, type StabilityRun, formatStability } from './commands/stability.js';
import { iterationsVsSigmaPlot, residualPlot } from './plots.js';

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
    expect(svg).toContain('not converged within 1000');
  });

  it('summarises adaptive against the best fixed σ²', () => {
    const report: StabilityReport = { kind: 'pelk-stability', date: '', backend: 'cpu', quick: true, maxIterations: 1000, tolerance: 1e-9, runs, summary };
    const text = formatStability(report);
    expect(text).toContain('σ²=100: 5');
    expect(text).toContain('0.8×');
    // One stopping rule, stated once for every column: evaluate's certificate at the suite's tolerance.
    expect(text.split('\n')[0]).toMatch(/^Stopping rule \(every column\): .*result\.converged.*≤ 1e-9.*cap 1000\.$/);
    const stopped = formatStability({ ...report, runs: [...runs, { ...run('quasi-deer', undefined, 1000, false), reason: 'max-iterations' }] });
    expect(stopped).toContain('NOT converged (max-iterations, 1000)');
  });
});

/**
 * SVG plots for benchmark results, drawn with Observable Plot on a linkedom document (no browser).
 */
import * as Plot from '@observablehq/plot';
import { parseHTML } from 'linkedom';
import type { StabilityRun, StabilitySummary } from './commands/stability.js';

function documentForPlots(): Document {
  return parseHTML('<!doctype html><html><body></body></html>').document as unknown as Document;
}

/** A run's label in legends. */
function runLabel(r: StabilityRun): string {
  if (r.method === 'deer' || r.method === 'quasi-deer') return r.method;
  const sigma = r.sigmaSq === 'adaptive' ? 'adaptive' : `σ²=${r.sigmaSq}`;
  return `${r.method} ${r.kalman} ${sigma}`;
}

function svgText(node: Element): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${node.outerHTML.replace('<svg ', '<svg xmlns="http://www.w3.org/2000/svg" ')}\n`;
}

/**
 * Residual `max_t ‖s_t − f(s_{t−1})‖∞` against the iteration (log scale) for DEER, quasi-DEER,
 * ELK and quasi-ELK with adaptive damping, and ELK / quasi-ELK at their best fixed σ².
 *
 * @example
 * ```ts
 * writeFileSync('residual.svg', residualPlot('argru-T2000', runs, summary));
 * ```
 */
export function residualPlot(problem: string, runs: StabilityRun[], summary: StabilitySummary[]): string {
  const best = (method: string) => summary.find((s) => s.problem === problem && s.method === method && s.kalman === 'filter')?.bestSigmaSq;
  const shown = runs.filter(
    (r) =>
      r.method === 'deer' ||
      r.method === 'quasi-deer' ||
      r.sigmaSq === 'adaptive' ||
      (r.kalman === 'filter' && r.sigmaSq === best(r.method)),
  );
  const data = shown.flatMap((r) =>
    r.residuals.map((residual, i) => ({ iteration: i + 1, residual: Math.max(Math.min(residual, 1e10), 1e-16), run: runLabel(r) })),
  );
  const svg = Plot.plot({
    document: documentForPlots(),
    width: 900,
    height: 480,
    marginRight: 20,
    title: `${problem}: residual per iteration (float64)`,
    x: { label: 'iteration', grid: true },
    y: { type: 'log', label: 'residual max_t ‖s_t − f(s_t−1)‖∞ (clipped to [1e-16, 1e10])', grid: true },
    color: { legend: true, scheme: 'tableau10' },
    marks: [Plot.line(data, { x: 'iteration', y: 'residual', stroke: 'run', strokeWidth: 1.5 })],
  });
  return svgText(svg as unknown as Element);
}

/**
 * Iterations to converge against fixed σ² (log scale) for ELK and quasi-ELK with filter and
 * smoother steps; runs that did not converge are drawn at the iteration cap as crosses.
 */
export function iterationsVsSigmaPlot(problem: string, runs: StabilityRun[], cap: number): string {
  const fixed = runs.filter((r) => typeof r.sigmaSq === 'number');
  const data = fixed.map((r) => ({
    sigmaSq: r.sigmaSq as number,
    iterations: r.converged ? r.iterations : cap,
    variant: `${r.method} ${r.kalman}`,
    converged: r.converged,
  }));
  const adaptive = runs
    .filter((r) => r.sigmaSq === 'adaptive' && r.converged)
    .map((r) => ({ iterations: r.iterations, variant: `${r.method} ${r.kalman}` }));
  const svg = Plot.plot({
    document: documentForPlots(),
    width: 900,
    height: 420,
    title: `${problem}: iterations to converge vs fixed σ² (dashed: adaptive damping; × = not converged within ${cap})`,
    x: { type: 'log', label: 'σ² = 1/λ (fixed)', grid: true },
    y: { type: 'log', label: 'iterations', grid: true },
    color: { legend: true, scheme: 'tableau10' },
    marks: [
      Plot.line(
        data.filter((d) => d.converged),
        { x: 'sigmaSq', y: 'iterations', stroke: 'variant', marker: 'circle' },
      ),
      Plot.dot(
        data.filter((d) => !d.converged),
        { x: 'sigmaSq', y: 'iterations', stroke: 'variant', symbol: 'times', r: 5 },
      ),
      Plot.ruleY(adaptive, { y: 'iterations', stroke: 'variant', strokeDasharray: '6,4' }),
    ],
  });
  return svgText(svg as unknown as Element);
}

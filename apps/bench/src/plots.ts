/**
 * SVG plots for benchmark results, drawn with Observable Plot on a linkedom document (no browser).
 */
import * as Plot from '@observablehq/plot';
import { parseHTML } from 'linkedom';
import type { StabilityProblem, StabilityRun, StabilitySet, StabilitySummary } from './commands/stability.js';

function documentForPlots(): Document {
  return parseHTML('<!doctype html><html><body></body></html>').document as unknown as Document;
}

/** A run's label in legends. */
function runLabel(r: StabilityRun): string {
  if (r.method === 'deer' || r.method === 'quasi-deer') return r.method;
  const sigma = r.sigmaSq === 'adaptive' ? 'adaptive' : `σ²=${r.sigmaSq}`;
  return `${r.method} ${r.kalman} ${sigma}`;
}

/** A title drawn inside the SVG (Plot's own `title` and swatch legends produce HTML, not SVG). */
function titleMark(text: string) {
  return Plot.text([text], { frameAnchor: 'top-left', dy: -46, fontSize: 13, fontWeight: 'bold', textAnchor: 'start', facet: 'super' });
}

/** A legend drawn as SVG text in the right margin, one coloured row per series. */
function legendMarks(labels: readonly string[]) {
  return labels.map((label, i) =>
    Plot.text([label], { frameAnchor: 'top-right', textAnchor: 'start', dx: 12, dy: 6 + i * 15, fill: (d: string) => d, fontSize: 11, facet: 'super' }),
  );
}

function svgText(node: Element): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${node.outerHTML.replace('<svg ', '<svg xmlns="http://www.w3.org/2000/svg" ')}\n`;
}

/**
 * Residual `max_t ‖s_t − f(s_{t−1})‖∞` of the iterate each iteration produced against the iteration
 * (log scale) for DEER, quasi-DEER, ELK and quasi-ELK with adaptive damping, and ELK / quasi-ELK at
 * their best fixed σ²; with `tolerance`, a dashed rule marks the certificate's bound; with `set`,
 * the title names the problem's set.
 *
 * @example
 * ```ts
 * writeFileSync('residual.svg', residualPlot('argru-T2000', runs, summary));
 * ```
 */
export function residualPlot(problem: string, runs: StabilityRun[], summary: StabilitySummary[], tolerance?: number, set?: StabilitySet): string {
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
    width: 960,
    height: 500,
    marginTop: 64,
    marginRight: 210,
    x: { label: 'iteration →', grid: true },
    y: { type: 'log', label: '↑ residual max_t ‖s_t − f(s_t−1)‖∞ (clipped to [1e-16, 1e10])', grid: true },
    color: { scheme: 'tableau10' },
    marks: [
      titleMark(`${problem}${set ? ` (${set})` : ''}: residual per iteration (float64)${tolerance === undefined ? '' : `; dashed: the tolerance ${tolerance}, converged = certified below it`}`),
      ...(tolerance === undefined ? [] : [Plot.ruleY([tolerance], { stroke: 'gray', strokeDasharray: '4,4' })]),
      Plot.line(data, { x: 'iteration', y: 'residual', stroke: 'run', z: 'run', strokeWidth: 1.5 }),
      ...legendMarks([...new Set(data.map((d) => d.run))]),
    ],
  });
  return svgText(svg as unknown as Element);
}

/**
 * Iterations to converge (`result.converged`: the certificate, residual ≤ `tolerance`) against
 * fixed σ² (log scale) for ELK and quasi-ELK with filter and smoother steps; runs that did not
 * converge are drawn as crosses at their iteration cap (`run.maxIterations`, else `cap`).
 */
export function iterationsVsSigmaPlot(problem: string, runs: StabilityRun[], cap: number, tolerance?: number, set?: StabilitySet): string {
  const fixed = runs.filter((r) => typeof r.sigmaSq === 'number');
  const data = fixed.map((r) => ({
    sigmaSq: r.sigmaSq as number,
    iterations: r.converged ? r.iterations : (r.maxIterations ?? cap),
    variant: `${r.method} ${r.kalman}`,
    converged: r.converged,
  }));
  const adaptive = runs
    .filter((r) => r.sigmaSq === 'adaptive' && r.converged)
    .map((r) => ({ iterations: r.iterations, variant: `${r.method} ${r.kalman}` }));
  const svg = Plot.plot({
    document: documentForPlots(),
    width: 960,
    height: 440,
    marginTop: 64,
    marginRight: 160,
    x: { type: 'log', label: 'σ² = 1/λ (fixed) →', grid: true },
    y: { type: 'log', label: `↑ iterations${tolerance === undefined ? '' : ` to residual ≤ ${tolerance}`} (cap ≤ ${cap})`, grid: true },
    color: { scheme: 'tableau10' },
    marks: [
      titleMark(
        `${problem}${set ? ` (${set})` : ''}: iterations vs fixed σ² (dashed: adaptive damping; × = not converged within its cap)`,
      ),
      ...legendMarks([...new Set([...data, ...adaptive].map((d) => d.variant))]),
      Plot.line(
        data.filter((d) => d.converged),
        { x: 'sigmaSq', y: 'iterations', stroke: 'variant', z: 'variant', marker: 'circle' },
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

/**
 * One set's problems at a glance: iterations (log scale) of DEER, quasi-DEER and ELK / quasi-ELK
 * with adaptive damping, one row per method within one panel per problem; crosses mark runs that
 * did not converge (drawn at the iteration they stopped), grey ticks each problem's cap T + 1.
 *
 * @example
 * ```ts
 * writeFileSync('stability-overview-held-out.svg', stabilityOverviewPlot('held-out', report.problems, report.runs));
 * ```
 */
export function stabilityOverviewPlot(set: StabilitySet, problems: readonly StabilityProblem[], runs: readonly StabilityRun[]): string {
  const names = problems.map((p) => p.name);
  const data = runs
    .filter((r) => names.includes(r.problem) && r.method !== 'sequential' && typeof r.sigmaSq !== 'number')
    .map((r) => ({ problem: r.problem, run: runLabel(r), iterations: Math.max(r.iterations, 1), converged: r.converged }));
  const labels = [...new Set(data.map((d) => d.run))];
  const caps = problems.map((p) => ({ problem: p.name, cap: p.maxIterations }));
  const svg = Plot.plot({
    document: documentForPlots(),
    width: 960,
    height: 110 + problems.length * (labels.length * 9 + 8),
    marginTop: 64,
    marginLeft: 200,
    marginRight: 190,
    x: { type: 'log', label: 'iterations to converge (log scale; cap T + 1) →', grid: true },
    y: { axis: null, domain: labels },
    fy: { label: null, domain: names, padding: 0.15 },
    color: { scheme: 'tableau10', domain: labels },
    marks: [
      ...framed(`${set} problems: iterations per method (× = not converged; grey tick: the cap T + 1)`, labels),
      Plot.frame({ stroke: '#ddd' }),
      Plot.tickX(caps, { x: 'cap', fy: 'problem', stroke: 'gray', strokeWidth: 2 }),
      Plot.ruleY(data, { x1: 1, x2: 'iterations', y: 'run', fy: 'problem', stroke: 'run', strokeOpacity: 0.5 }),
      Plot.dot(
        data.filter((d) => d.converged),
        { x: 'iterations', y: 'run', fy: 'problem', fill: 'run', r: 3.5 },
      ),
      Plot.dot(
        data.filter((d) => !d.converged),
        { x: 'iterations', y: 'run', fy: 'problem', stroke: 'run', symbol: 'times', r: 5 },
      ),
    ],
  });
  return svgText(svg as unknown as Element);
}

/** An in-figure title and legend (Plot's own are HTML), for every chart. */
function framed(title: string, labels: readonly string[]) {
  return [titleMark(title), ...legendMarks(labels)];
}

/** A measurement row as the scaling plots read it. */
export interface TimingPoint {
  readonly method: string;
  readonly B: number;
  readonly D: number;
  readonly T: number;
  readonly medianMs: number;
  readonly peakRssMiB?: number;
  readonly peakBackendMiB?: number;
  readonly refused?: string;
}

/**
 * Wall time against sequence length (log–log), one panel per state size D, one line per method,
 * for one batch size.
 *
 * @example
 * ```ts
 * writeFileSync('scaling-B1.svg', scalingTimePlot(report.results, 1, 'cpu float64'));
 * ```
 */
export function scalingTimePlot(points: readonly TimingPoint[], batch: number, subtitle: string): string {
  const data = points.filter((p) => p.B === batch && !p.refused);
  const svg = Plot.plot({
    document: documentForPlots(),
    width: 960,
    height: 380,
    marginTop: 64,
    marginRight: 130,
    x: { type: 'log', label: 'sequence length T →', grid: true },
    y: { type: 'log', label: '↑ median wall time (ms)', grid: true },
    fx: { label: 'state size D' },
    color: { scheme: 'tableau10' },
    marks: [
      ...framed(`GRU, batch ${batch}: time vs T per method (${subtitle})`, [...new Set(data.map((d) => d.method))]),
      Plot.frame({ stroke: '#ddd' }),
      Plot.line(data, { x: 'T', y: 'medianMs', fx: 'D', stroke: 'method', marker: 'circle' }),
    ],
  });
  return svgText(svg as unknown as Element);
}

/**
 * Peak memory of live tensors against state size D, one line per method, at the smallest T of the
 * grid (the one every method reaches), batch 1.
 */
export function scalingMemoryPlot(points: readonly TimingPoint[], subtitle: string): string {
  const measured = points.filter((p) => !p.refused && p.peakBackendMiB !== undefined);
  const B = Math.min(...measured.map((m) => m.B));
  const T = Math.min(...measured.map((m) => m.T));
  const rows = measured.filter((p) => p.B === B && p.T === T);
  const svg = Plot.plot({
    document: documentForPlots(),
    width: 960,
    height: 400,
    marginTop: 64,
    marginRight: 130,
    x: { type: 'log', base: 2, label: 'state size D →', grid: true, ticks: [...new Set(rows.map((r) => r.D))] },
    y: { type: 'log', label: '↑ peak backend memory: tensors + scratch (MiB)', grid: true },
    color: { scheme: 'tableau10' },
    marks: [
      ...framed(`GRU, B=${B}, T=${T}: peak backend memory vs D (${subtitle})`, [...new Set(rows.map((r) => r.method))]),
      Plot.line(rows, { x: 'D', y: 'peakBackendMiB', stroke: 'method', marker: 'circle' }),
    ],
  });
  return svgText(svg as unknown as Element);
}

/** Horizontal bars of µs per step (log scale), one per labelled implementation or method. */
export function barsPlot(title: string, rows: readonly { label: string; usPerStep: number }[]): string {
  const svg = Plot.plot({
    document: documentForPlots(),
    width: 960,
    height: 90 + rows.length * 28,
    marginTop: 64,
    marginLeft: 300,
    marginRight: 80,
    x: { type: 'log', label: 'µs per step (log scale) →', grid: true },
    y: { label: null, domain: rows.map((r) => r.label) },
    marks: [
      Plot.text([title], { frameAnchor: 'top-left', dx: -290, dy: -46, fontSize: 13, fontWeight: 'bold', textAnchor: 'start' }),
      Plot.barX(rows, { x1: 0.1, x2: 'usPerStep', y: 'label', fill: '#4e79a7' }),
      Plot.text(rows, { x: 'usPerStep', y: 'label', text: (d: { usPerStep: number }) => d.usPerStep.toFixed(1), dx: 6, textAnchor: 'start' }),
    ],
  });
  return svgText(svg as unknown as Element);
}

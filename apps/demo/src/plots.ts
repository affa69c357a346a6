/** The demo's pictures, drawn with Observable Plot. */
import * as Plot from '@observablehq/plot';
import type { MethodSummary } from './runner.js';

/** Colours of the methods, fixed so that every picture agrees. */
export const METHOD_COLOURS: Readonly<Record<string, string>> = {
  sequential: '#555555',
  deer: '#d62728',
  'quasi-deer': '#ff7f0e',
  elk: '#1f77b4',
  'quasi-elk': '#17becf',
  auto: '#2ca02c',
};

const WIDTH = 1040;
const DASHES = ['none', '6 3', '2 2', '10 4', '4 2 1 2', '1 3'];

/**
 * The drawn channels over time: the sequential trajectory (thick, grey) and an iterate (coloured).
 * The y range is the reference's, with margin; iterates that leave it (DEER on an unstable model)
 * are clipped at the frame rather than squashing the reference flat.
 */
export function channelsPlot(reference: number[][], stride: number, iterate?: { label: string; method: string; channels: number[][] }): Element {
  const points = (lines: number[][], series: string) => lines.flatMap((line, c) => line.map((value, i) => ({ t: i * stride, value, channel: `state ${c}`, series })));
  const ref = points(reference, 'sequential');
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const p of ref) {
    lo = Math.min(lo, p.value);
    hi = Math.max(hi, p.value);
  }
  const pad = Math.max(0.25 * (hi - lo), 1e-3);
  const marks: Plot.Markish[] = [Plot.lineY(ref, { x: 't', y: 'value', fy: 'channel', stroke: '#bbbbbb', strokeWidth: 3 })];
  if (iterate) {
    const it = points(iterate.channels, iterate.label).map((p) => ({ ...p, value: Number.isFinite(p.value) ? p.value : Number.NaN }));
    marks.push(Plot.lineY(it, { x: 't', y: 'value', fy: 'channel', stroke: METHOD_COLOURS[iterate.method] ?? '#000', strokeWidth: 1.3, clip: true }));
    marks.push(Plot.text([iterate.label], { frameAnchor: 'top-right', dy: -14, fontSize: 13, fill: METHOD_COLOURS[iterate.method] ?? '#000' }));
  }
  return Plot.plot({
    width: WIDTH,
    height: 110 * reference.length + 40,
    ariaLabel: 'state channels over time',
    ariaDescription: `The first ${reference.length} state channels: the sequential trajectory in grey${iterate ? `, and ${iterate.label}` : ''}.`,
    marginLeft: 60,
    marginRight: 70,
    x: { label: 'time step' },
    y: { domain: [lo - pad, hi + pad], label: null, grid: true },
    fy: { label: null },
    marks,
  });
}

/** Residual against iteration, log scale, one line per method. */
export function residualPlot(rows: readonly MethodSummary[]): Element {
  const data = rows.flatMap((r) => r.history.map((h) => ({ method: r.method, iteration: h.iteration, residual: Math.max(h.residual, 1e-30) })));
  const methods = [...new Set(data.map((d) => d.method))];
  return Plot.plot({
    width: WIDTH,
    height: 300,
    marginLeft: 60,
    ariaLabel: 'residual per iteration',
    ariaDescription: `Residual against iteration on a log scale for ${methods.join(', ')}.`,
    x: { label: 'iteration', grid: true },
    y: { type: 'log', label: 'residual max‖s_t − f(s_{t−1})‖∞', grid: true },
    color: { domain: methods, range: methods.map((m) => METHOD_COLOURS[m] ?? '#000') },
    symbol: { legend: true, domain: methods },
    // Methods that take the same steps (ELK undamped is DEER) draw the same curve: dashes and
    // symbols keep the one underneath visible.
    marks: [
      ...methods.map((m, i) =>
        Plot.line(
          data.filter((d) => d.method === m),
          { x: 'iteration', y: 'residual', stroke: METHOD_COLOURS[m] ?? '#000', strokeWidth: 1.5, strokeDasharray: DASHES[i % DASHES.length] },
        ),
      ),
      Plot.dot(data, { x: 'iteration', y: 'residual', stroke: 'method', symbol: 'method', r: 4 }),
    ],
  });
}

/** Speed-up over sequential on the same backend (bars; 1 = as fast as sequential). */
export function speedupPlot(rows: readonly MethodSummary[]): Element {
  const data = rows.filter((r) => r.speedup !== null && Number.isFinite(r.speedup));
  return Plot.plot({
    width: WIDTH,
    height: 40 + 32 * data.length,
    marginLeft: 100,
    ariaLabel: 'speed-up over sequential',
    marginRight: 60,
    x: { label: 'speed-up over sequential on this backend (×)', grid: true },
    y: { label: null },
    marks: [
      Plot.barX(data, { x: 'speedup', y: 'method', fill: (d: MethodSummary) => METHOD_COLOURS[d.method] ?? '#000', sort: { y: null } }),
      Plot.text(data, { x: 'speedup', y: 'method', text: (d: MethodSummary) => `${d.speedup!.toPrecision(3)}×`, dx: 22 }),
      Plot.ruleX([1], { stroke: '#333', strokeDasharray: '4 3' }),
    ],
  });
}

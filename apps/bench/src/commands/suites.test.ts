import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeHtmlReport, writeOutputs } from '../report.js';
import { formatPeers, peersFiles, runPeers } from './peers.js';
import { formatScaling, runScaling, scalingFiles } from './scaling.js';

describe('scaling suite', () => {
  it('measures every method over the grid, checks each against sequential, and skips over budget', async () => {
    const report = await runScaling({
      backend: 'cpu',
      quick: true,
      dtype: 'float64',
      budgetSeconds: 1e-6, // every configuration after each method's first is predicted over budget
      quiet: true,
      grid: { steps: [40, 80], hidden: [3], batch: [1, 2], methods: ['sequential', 'quasi-deer', 'deer', 'quasi-elk', 'elk'], warmup: 0, runs: 1 },
    });
    expect(report.results).toHaveLength(2 * 2 * 5);
    const first = (m: { B: number; T: number }) => m.B === 1 && m.T === 40;
    const measured = report.results.filter(first);
    expect(measured).toHaveLength(5);
    for (const m of measured) {
      expect(m.refused).toBeUndefined();
      expect(m.converged).toBe(true);
      expect(m.maxAbsDiffVsSequential).toBeLessThanOrEqual(1e-6);
      expect(m.peakRssMiB).toBeGreaterThan(0);
    }
    for (const m of report.results.filter((r) => !first(r))) expect(m.refused).toMatch(/^skipped: predicted/);
    const files = scalingFiles(report, formatScaling(report));
    expect(Object.keys(files).sort()).toEqual(['scaling-memory.svg', 'scaling-time-B1.svg', 'scaling-time-B2.svg', 'scaling.json', 'scaling.txt']);
    expect(files['scaling-time-B1.svg']).toContain('sequence length T');
  });
});

describe('peers suite', () => {
  it('runs tf.layers.gru and pelk on the same weights and inputs, and they agree', async () => {
    const report = await runPeers({ quick: true, quiet: true, steps: [16] });
    expect(report.results.map((r) => `${r.implementation} on ${r.on}`)).toEqual([
      'tf.layers.gru on wasm',
      'pelk sequential on wasm',
      'pelk quasi-deer on wasm',
      'pelk deer on wasm',
      'tf.layers.gru on cpu',
      'pelk sequential on cpu',
      'pelk quasi-deer on cpu',
      'pelk deer on cpu',
      'pelk sequential on pelk-cpu',
      'pelk quasi-deer on pelk-cpu',
    ]);
    // float32 trajectories of the same GRU: sequential ones agree to float32 rounding over 16 steps;
    // the parallel ones stop when their residual is below float32's default tolerance, 1e-4.
    for (const r of report.results) expect(r.maxAbsDiffVsLayer).toBeLessThanOrEqual(r.implementation.includes('sequential') ? 1e-5 : 1e-4);
    // Every row was timed, and its speed-up is the ratio of the two measured medians (rounded to
    // three significant digits): the layer on the same tfjs backend, or on `versus` (wasm) for
    // pelk's own cpu backend.
    const layerMs = (on: string) => report.results.find((r) => r.implementation === 'tf.layers.gru' && r.on === on)!.medianMs;
    for (const r of report.results) {
      expect(r.refused, r.implementation).toBeUndefined();
      expect(Number.isFinite(r.medianMs) && r.medianMs > 0, `${r.implementation} on ${r.on}: median ${r.medianMs} ms`).toBe(true);
      const versus = r.on === 'pelk-cpu' ? r.versus : r.on;
      expect(versus).toBe(r.on === 'pelk-cpu' ? 'wasm' : r.on);
      const ratio = layerMs(versus!) / r.medianMs;
      expect(Math.abs(r.speedupVsLayer! - ratio), `${r.implementation} on ${r.on}: ${r.speedupVsLayer}× vs ${ratio}`).toBeLessThanOrEqual(5e-3 * ratio);
    }
    expect(report.profiles.map((p) => `${p.method} on ${p.on}`)).toEqual(['quasi-deer on wasm', 'deer on wasm', 'quasi-deer on cpu', 'deer on cpu']);
    // Each part of one iteration was measured (finite; the cell and the scan take some time, the
    // Jacobian's share is clamped at 0), and together they take no longer than the measured run of
    // the same method, backend and T, which performs at least one such iteration.
    for (const p of report.profiles) {
      const what = `${p.method} on ${p.on}`;
      expect(p.error, what).toBeUndefined();
      expect(p.T).toBe(16);
      for (const part of [p.cellMs, p.jacobianMs, p.scanMs]) expect(Number.isFinite(part), `${what}: ${part} ms`).toBe(true);
      expect(p.cellMs, what).toBeGreaterThan(0);
      expect(p.scanMs, what).toBeGreaterThan(0);
      expect(p.jacobianMs, what).toBeGreaterThanOrEqual(0);
      const run = report.results.find((r) => r.implementation === `pelk ${p.method}` && r.on === p.on && r.T === p.T)!;
      expect(run.iterations, what).toBeGreaterThanOrEqual(1);
      expect(p.cellMs + p.jacobianMs + p.scanMs, `${what}: parts of one iteration vs the whole run`).toBeLessThanOrEqual(run.medianMs);
    }
    expect(formatPeers(report)).toContain('× vs tf.layers.gru');
    expect(peersFiles(report, '')['peers-T16.svg']).toContain('<svg');
  }, 120_000);
});

describe('HTML report', () => {
  it('shows each suite present with its table, plots and JSON link; files are written atomically', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pelk-report-'));
    writeOutputs(dir, { 'peers.json': '{}', 'peers.txt': 'a < b', 'peers.svg': '<svg/>' });
    const index = writeHtmlReport(dir);
    const html = readFileSync(index, 'utf8');
    expect(html).toContain('<section id="peers">');
    expect(html).toContain('<img src="peers.svg"');
    expect(html).toContain('a &lt; b');
    expect(html).not.toContain('<section id="scaling">');
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});

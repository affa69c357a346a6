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
    // the parallel ones stop when a step is below float32's default tolerance, 1e-4.
    for (const r of report.results) expect(r.maxAbsDiffVsLayer).toBeLessThanOrEqual(r.implementation.includes('sequential') ? 1e-5 : 1e-4);
    for (const r of report.results) expect(r.speedupVsLayer).toBeGreaterThan(0);
    expect(report.profiles.map((p) => `${p.method} on ${p.on}`)).toEqual(['quasi-deer on wasm', 'deer on wasm', 'quasi-deer on cpu', 'deer on cpu']);
    for (const p of report.profiles) expect(p.cellMs + p.scanMs).toBeGreaterThan(0);
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

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_TOLERANCE } from '@pelk/core';
import { describe, expect, it } from 'vitest';
import { formatBench, gruFiles, runBench } from './bench.js';
import { runDemo } from './demo.js';

describe('pelk bench', () => {
  it('measures every method and dtype, checks them against sequential, and writes JSON', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pelk-bench-'));
    const json = join(dir, 'bench.json');
    const report = await runBench({
      backend: 'cpu',
      steps: 300,
      deerSteps: 100,
      hidden: 8,
      input: 2,
      batch: 2,
      methods: ['quasi-deer', 'sequential', 'deer'],
      dtypes: ['float64', 'float32'],
      warmup: 1,
      runs: 2,
      json,
      quiet: true,
    });
    expect(report.results).toHaveLength(6);
    for (const m of report.results) {
      expect(m.runsMs).toHaveLength(2);
      expect(m.medianMs).toBeGreaterThan(0);
      expect(m.converged).toBe(true);
      expect(m.maxAbsDiffVsSequential).toBeLessThanOrEqual(m.dtype === 'float64' ? 1e-6 : 1e-3);
      expect(m.T).toBe(m.method === 'deer' ? 100 : 300);
    }
    expect(report.results[0].method).toBe('sequential');
    // The adjoint rows: each run's adjoint over the same run's forward iteration.
    expect(report.adjoint?.map((a) => `${a.dtype} ${a.adjoint}`)).toEqual(['float64 sequential', 'float64 diagonal', 'float32 sequential', 'float32 diagonal']);
    for (const a of report.adjoint!) {
      expect([a.converged, a.fused]).toEqual([true, false]);
      expect(a.forwardIterationsRange[0]).toBeLessThanOrEqual(a.forwardIterations);
      expect(a.forwardIterations).toBeLessThanOrEqual(a.forwardIterationsRange[1]);
      expect(a.medianMs).toBeGreaterThan(0);
    }
    expect(formatBench(report)).toContain('in forward iterations of the same run');
    expect(JSON.parse(readFileSync(json, 'utf8')).machine.node).toBe(process.version);
    expect(readdirSync(dir)).toEqual(['bench.json']); // no temporary file left behind
    expect(formatBench(report)).toContain('µs/step');
    const files = gruFiles(report, formatBench(report));
    expect(Object.keys(files).sort()).toEqual(['gru.json', 'gru.svg', 'gru.txt']);
    expect(files['gru.svg']).toContain('µs per step');
  });

  it('adds a torch.nn.GRU peer row on the same weights and inputs, or says why it has none', async (ctx) => {
    const run = (python: string) => {
      const saved = process.env.PELK_PYTHON;
      process.env.PELK_PYTHON = python;
      const options = { backend: 'cpu', steps: 200, hidden: 8, input: 3, batch: 1, methods: ['sequential' as const], dtypes: ['float32' as const], warmup: 0, runs: 1, quiet: true };
      return runBench(options).finally(() => {
        if (saved === undefined) delete process.env.PELK_PYTHON;
        else process.env.PELK_PYTHON = saved;
      });
    };
    const missing = await run('/nonexistent/python3');
    expect(missing.peers).toEqual([{ implementation: 'torch.nn.GRU', T: 200, skipped: "no Python with torch at '/nonexistent/python3' (set PELK_PYTHON)" }]);
    expect(formatBench(missing)).toContain('skipped');
    const python = ['/usr/bin/python3', 'python3'].find((p) => spawnSync(p, ['-c', 'import torch']).status === 0);
    if (!python) ctx.skip('no Python with torch on this machine (Debian: apt install python3-torch)');
    const [row] = (await run(python!)).peers!;
    expect(row.skipped).toBeUndefined();
    expect(row.implementation).toMatch(/^torch\.nn\.GRU /);
    expect(row.usPerStep).toBeGreaterThan(0);
    // The same GRU in float32: torch and pelk's sequential float32 agree to float32 rounding.
    expect(row.maxAbsDiffVsPelk).toBeLessThanOrEqual(1e-5);
  });

  /** The demo's table as rows of named cells (columns are separated by two or more spaces). */
  function demoRows(text: string): Record<string, string>[] {
    const lines = text.split('\n');
    const start = lines.findIndex((l) => l.startsWith('method '));
    expect(start, text).toBeGreaterThanOrEqual(0);
    const header = lines[start].split(/ {2,}/);
    expect(lines[start + 1]).toMatch(/^-+( +-+)*$/);
    const rows: Record<string, string>[] = [];
    for (const line of lines.slice(start + 2)) {
      if (line.trim() === '') break;
      const cells = line.split(/ {2,}/);
      expect(cells, line).toHaveLength(header.length);
      rows.push(Object.fromEntries(header.map((h, k) => [h, cells[k]])));
    }
    return rows;
  }

  // The demo claims all three methods give the same trajectory to float precision: read that off
  // its table. The parallel methods stop at the dtype's default tolerance (DEFAULT_TOLERANCE), so
  // on this contractive GRU their distance to the sequential answer is within a small multiple of
  // it (float64: quasi-DEER ≈ 2e-8, DEER ≈ 3e-16; float32: ≈ 3e-5 and 1e-7); a wrong trajectory
  // is off by O(0.1).
  for (const dtype of ['float64', 'float32'] as const) {
    it(`the demo reports all three methods agreeing to float precision (${dtype})`, async () => {
      const text = await runDemo({ backend: 'cpu', steps: 400, hidden: 8, input: 2, dtype, deerSteps: 100 });
      const rows = demoRows(text);
      expect(rows.map((r) => r.method)).toEqual(['sequential', 'quasi-deer', 'deer']);
      // DEER runs on the --deer-steps prefix and says so (compared with that prefix of the sequential answer).
      expect(text).toMatch(/DEER ran on the first 100 steps \(--deer-steps/);
      const bound = 10 * DEFAULT_TOLERANCE[dtype];
      for (const row of rows) {
        expect(row.T, row.method).toBe(row.method === 'deer' ? '100' : '400');
        expect(row.converged, row.method).toBe('yes');
        expect(Number(row.iterations), row.method).toBeGreaterThanOrEqual(1);
        const delta = row['max |Δ| vs sequential'];
        expect(delta, `${row.method}: Δ column`).toMatch(/^\d\.\de[+-]\d+$/);
        if (row.method === 'sequential') expect(Number(delta)).toBe(0);
        else expect(Number(delta), `${row.method}: max |Δ| vs sequential`).toBeLessThanOrEqual(bound);
      }
    });
  }
});

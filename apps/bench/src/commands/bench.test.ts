import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
    expect(JSON.parse(readFileSync(json, 'utf8')).machine.node).toBe(process.version);
    expect(readdirSync(dir)).toEqual(['bench.json']); // no temporary file left behind
    expect(formatBench(report)).toContain('µs/step');
    const files = gruFiles(report, formatBench(report));
    expect(Object.keys(files).sort()).toEqual(['gru.json', 'gru.svg', 'gru.txt']);
    expect(files['gru.svg']).toContain('µs per step');
  });

  it('the demo reports all three methods agreeing', async () => {
    const text = await runDemo({ backend: 'cpu', steps: 400, hidden: 8, input: 2, dtype: 'float64', deerSteps: 100 });
    for (const method of ['sequential', 'quasi-deer', 'deer']) expect(text).toContain(method);
    expect(text).not.toContain('NO');
  });
});

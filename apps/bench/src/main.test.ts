import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createWebGpuBackend } from '@pelk/backend-webgpu';
import { readNpy, writeNpy } from './io/npy.js';
import { pelk } from './cli-test-support.js';

// Whether WebGPU is available here (Dawn with a GPU or SwiftShader); CI requires it.
const webgpu = await createWebGpuBackend().then(
  async (b) => {
    await b.destroy();
    return '';
  },
  (e: Error) => e.message,
);
const skipWebGpu = webgpu !== '' && process.env.PELK_REQUIRE_WEBGPU !== '1';

const fixture = (name: string) => fileURLToPath(new URL(`../../../packages/conformance/fixtures/${name}.json`, import.meta.url));


describe('pelk eval', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pelk-cli-'));
  });
  afterEach(() => vi.restoreAllMocks());

  for (const name of ['gru-torch-small', 'lstm-torch-small', 'elman-torch-small', 'lorenz96-small']) {
    for (const method of ['sequential', 'deer', 'quasi-deer', 'elk', 'quasi-elk', 'auto']) {
      it(`reproduces ${name} with ${method} (float64)`, async () => {
        const { code, out, err } = await pelk('eval', '--model', fixture(name), '--method', method, '--tol', '1e-11', '--json');
        expect(err).toBe('');
        expect(code).toBe(0);
        const summary = JSON.parse(out);
        // On the CPU backend 'auto' evaluates sequentially, and says so.
        expect(summary).toMatchObject({ method: method === 'auto' ? 'sequential' : method, backend: 'cpu', dtype: 'float64', converged: true });
        if (method === 'auto') expect(summary.methods[0].reason).toMatch(/sequentially faster/);
        expect(summary.maxAbsErrorVsSpec).toBeLessThanOrEqual(1e-9);
        expect(Object.keys(summary)).toEqual(
          expect.arrayContaining(['method', 'backend', 'dtype', 'T', 'D', 'iterations', 'converged', 'residual', 'ms']),
        );
      });
    }
  }

  // float32 backends: quasi-DEER and quasi-ELK against the float64 oracle (float32 tolerance).
  for (const backend of [['tfjs', '--tfjs-backend', 'wasm'], ['webgpu']]) {
    for (const method of ['quasi-deer', 'quasi-elk']) {
      const title = `reproduces gru-torch-small with ${method} on --backend ${backend.join(' ')} (float32)`;
      it.skipIf(backend[0] === 'webgpu' && skipWebGpu)(skipWebGpu && backend[0] === 'webgpu' ? `${title} — skipped: ${webgpu}` : title, async () => {
        // Tolerance 1e-5 (as the conformance suite uses in float32): the default, 1e-4, bounds the residual, and the error can be a multiple of it.
        const { code, out, err } = await pelk('eval', '--model', fixture('gru-torch-small'), '--method', method, '--backend', ...backend, '--tol', '1e-5', '--json');
        expect(err.replace(/.*XDG_RUNTIME_DIR.*\n/g, '')).toBe('');
        expect(code).toBe(0);
        const summary = JSON.parse(out);
        expect(summary).toMatchObject({ method, backend: backend[0], dtype: 'float32', converged: true });
        expect(summary.maxAbsErrorVsSpec).toBeLessThanOrEqual(1e-4);
      }, 300_000);
    }
  }

  it('writes .npy and .json states and reads --inputs from .npy, batched', async () => {
    const spec = JSON.parse(readFileSync(fixture('gru-torch-small'), 'utf8'));
    const npyOut = join(dir, 'states.npy');
    expect((await pelk('eval', '--model', fixture('gru-torch-small'), '--method', 'sequential', '--out', npyOut)).code).toBe(0);
    const states = readNpy(readFileSync(npyOut), 'states');
    expect(states.shape).toEqual([512, 8]);
    expect(Math.abs(states.data[4095] - spec.states[511][7])).toBeLessThan(1e-12);
    const jsonOut = join(dir, 'states.json');
    expect((await pelk('eval', '--model', fixture('gru-torch-small'), '--out', jsonOut)).code).toBe(0);
    expect(JSON.parse(readFileSync(jsonOut, 'utf8'))).toHaveLength(512);

    // Two copies of the inputs as a [2, T, I] batch give two copies of the states.
    const flat = spec.inputs.flat();
    const inputsPath = join(dir, 'inputs.npy');
    writeFileSync(inputsPath, writeNpy([...flat, ...flat], [2, 512, 3]));
    const batchOut = join(dir, 'batch.npy');
    const { code, out } = await pelk('eval', '--model', fixture('gru-torch-small'), '--inputs', inputsPath, '--out', batchOut, '--json');
    expect(code).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ B: 2, T: 512, D: 8 });
    const batch = readNpy(readFileSync(batchOut), 'batch');
    expect(batch.shape).toEqual([2, 512, 8]);
    expect(Math.abs(batch.data[2 * 4096 - 1] - spec.states[511][7])).toBeLessThan(1e-7);
  });

  const shared = fileURLToPath(new URL('../../../../shared/fixtures/argru-sine-trained.json', import.meta.url));
  // The trained AR-GRU carries the ELK authors' weights and lives outside the repository (CI has it).
  it.skipIf(!existsSync(shared))('reproduces the trained AR-GRU with ELK and quasi-ELK (adaptive damping)', async () => {
    for (const method of ['elk', 'quasi-elk']) {
      const { code, out } = await pelk('eval', '--model', shared, '--method', method, '--tol', '1e-10', '--json');
      expect(code).toBe(0);
      const summary = JSON.parse(out);
      expect(summary.converged).toBe(true);
      expect(summary.maxAbsErrorVsSpec).toBeLessThanOrEqual(1e-7);
    }
  });

  it('turns bad input into one line and a non-zero exit, without a stack trace', async () => {
    const cases: [string[], RegExp][] = [
      [['eval', '--model', join(dir, 'missing.json')], /--model: expected a readable file/],
      [['eval', '--model', fixture('gru-torch-small'), '--method', 'newton'], /options.method: expected one of 'sequential'/],
      [['eval', '--model', fixture('gru-torch-small'), '--dtype', 'float16'], /--dtype: expected 'float64' or 'float32'/],
      [['eval', '--model', fixture('gru-torch-small'), '--tol', '-1'], /--tol: expected a positive number/],
      [['eval', '--model', fixture('gru-torch-small'), '--out', join(dir, 'x.csv')], /--out: expected a path ending in .npy or .json/],
      [['eval', '--model', fixture('gru-torch-small'), '--backend', 'gpu'], /--backend/],
      [['eval', '--model', fixture('gru-torch-small'), '--method', 'elk', '--sigma-sq', '0'], /--sigma-sq: expected a positive number/],
      [['eval', '--model', fixture('gru-torch-small'), '--method', 'elk', '--kalman', 'rts'], /--kalman: expected 'filter' or 'smoother'/],
      [['bench', '--suite', 'speed'], /--suite: expected a comma-separated list of gru, scaling, stability, peers, or all/],
      [['bench', '--suite', 'stability', '--stability-set', 'tuned'], /--stability-set: expected 'tuning', 'held-out' or 'all'/],
      [['bench', '--methods', 'newton'], /options.method: expected one of/],
      [['bench', '--backend', 'gpu'], /--backend/],
      // DEER at D = 600, T = 200,000: a [T, D, D] Jacobian of 7.2e10 elements, over the CPU backend's
      // largest tensor (≤ 2^31 elements on any machine), and about 1.7 TB by estimateEvaluationBytes
      // (24·T·D² bytes and more) — refused before allocating, whatever the machine's memory.
      [
        ['bench', '--methods', 'deer', '--hidden', '600', '--deer-steps', '200000', '--dtypes', 'float64', '--out-dir', join(dir, 'b')],
        /options\.method: expected a problem (whose largest tensor )?fits backend 'cpu'/,
      ],
    ];
    for (const [args, message] of cases) {
      const { code, err } = await pelk(...args);
      expect(code, args.join(' ')).toBeGreaterThan(0);
      expect(err).toMatch(message);
      // One error line (progress lines of a started bench may precede it on stderr).
      expect(err.trim().split('\n').filter((l) => l.startsWith('pelk: '))).toHaveLength(1);
      expect(err.trim().split('\n').filter((l) => !l.startsWith('pelk bench: ') && !l.startsWith('pelk: '))).toHaveLength(0);
      expect(err).not.toMatch(/\n\s+at /);
    }
    const bad = join(dir, 'bad.json');
    const spec = JSON.parse(readFileSync(fixture('gru-torch-small'), 'utf8'));
    spec.cell.weights.weight_hh_l0[0].pop();
    writeFileSync(bad, JSON.stringify(spec));
    const { code, err } = await pelk('eval', '--model', bad);
    expect(code).toBe(2);
    expect(err).toMatch(/weight_hh_l0/);
  });
});

describe('npy', () => {
  it('round-trips float64 data with its shape', () => {
    const data = Float64Array.from({ length: 24 }, (_, i) => i / 7 - 1);
    const back = readNpy(writeNpy(data, [2, 3, 4]), 'x');
    expect(back.shape).toEqual([2, 3, 4]);
    expect(Array.from(back.data)).toEqual(Array.from(data));
    const bytes = writeNpy([1], [1]);
    expect((bytes.length - 0) % 64).toBe(8); // header padded to 64 bytes, then one float64
  });
});

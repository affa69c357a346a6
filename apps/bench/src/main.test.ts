import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { readNpy, writeNpy } from './io/npy.js';
import { pelk, probeWebGpu } from './cli-test-support.js';

// Whether WebGPU is available here (Dawn with a GPU or SwiftShader); CI requires it.
const { reason: webgpu, skip: skipWebGpu } = await probeWebGpu();

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
        if (backend[0] === 'webgpu') {
          // Device work in the summary: totals and one iteration's share.
          expect(summary.dispatches.total).toBeGreaterThan(0);
          expect(summary.submissions.total).toBeGreaterThan(0);
          if (method === 'quasi-deer' && summary.iterations >= 2) expect(summary.submissions.perIteration).toBe(1);
        } else expect(summary.dispatches).toBeUndefined();
      }, 300_000);
    }
  }

  it('reproduces gru-torch-small with quasi-deer on --backend wasm --threads 2 (float64); --threads needs --backend wasm', async () => {
    const { code, out, err } = await pelk('eval', '--model', fixture('gru-torch-small'), '--method', 'quasi-deer', '--backend', 'wasm', '--threads', '2', '--tol', '1e-11', '--json');
    expect(err).toBe('');
    expect(code).toBe(0);
    const summary = JSON.parse(out);
    expect(summary).toMatchObject({ method: 'quasi-deer', backend: 'wasm', dtype: 'float64', converged: true });
    expect(summary.maxAbsErrorVsSpec).toBeLessThanOrEqual(1e-9);
    const refused = await pelk('eval', '--model', fixture('gru-torch-small'), '--threads', '2');
    expect(refused.code).toBe(2);
    expect(refused.err).toBe("pelk: --threads: expected '--backend wasm' alongside it, received --backend cpu\n");
  }, 300_000);

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

  it('a model spec without data (absent or null) takes --inputs and gives the spec-with-data result', async () => {
    const spec = JSON.parse(readFileSync(fixture('gru-torch-small'), 'utf8'));
    const { inputs, steps: _steps, states: _states, ...model } = spec;
    const inputsPath = join(dir, 'x.npy');
    writeFileSync(inputsPath, writeNpy(inputs.flat(), [512, 3]));
    const withData = join(dir, 'with-data.npy');
    const ref = await pelk('eval', '--model', fixture('gru-torch-small'), '--method', 'deer', '--tol', '1e-11', '--out', withData, '--json');
    expect(ref.code).toBe(0);
    const want = readNpy(readFileSync(withData), 'with-data');
    for (const [how, json] of [['absent', model], ['null', { ...model, inputs: null, steps: null, states: null }]] as const) {
      const path = join(dir, `model-${how}.json`);
      writeFileSync(path, JSON.stringify(json));
      const out = join(dir, `states-${how}.npy`);
      const run = await pelk('eval', '--model', path, '--inputs', inputsPath, '--method', 'deer', '--tol', '1e-11', '--out', out, '--json');
      expect(run.err, how).toBe('');
      expect(run.code, how).toBe(0);
      const summary = JSON.parse(run.out);
      expect(summary).toMatchObject({ method: 'deer', T: 512, D: 8, converged: true });
      expect(summary.maxAbsErrorVsSpec).toBeUndefined(); // no reference states without the spec's data
      const got = readNpy(readFileSync(out), how);
      expect(got.shape).toEqual([512, 8]);
      expect(Array.from(got.data)).toEqual(Array.from(want.data));

      // Without --inputs: one line naming the field, saying --inputs can give it; exit 2.
      const refused = await pelk('eval', '--model', path);
      expect(refused.code, how).toBe(2);
      expect(refused.out).toBe('');
      expect(refused.err).toBe(
        "pelk: inputs: expected [T][3] data (the 'gru' cell takes inputs) in the spec or given separately " +
          `(pelk eval: --inputs FILE.npy; API: readModelSpec(json, { inputs })), received ${how === 'null' ? 'null' : "nothing (no 'inputs' key)"}\n`,
      );
    }
    // --inputs whose last dimension is not the cell's input size is refused before the run.
    const wrong = join(dir, 'wrong.npy');
    writeFileSync(wrong, writeNpy(new Float64Array(8), [4, 2]));
    const bad = await pelk('eval', '--model', join(dir, 'model-null.json'), '--inputs', wrong);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/^pelk: inputs: expected shape \[T, 3\] or \[B, T, 3\] .*received shape \[4, 2\]\n$/);
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
      [['bench', '--suite', 'speed'], /--suite: expected a comma-separated list of gru, scaling, stability, peers, kernels, gpu, or all/],
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

describe('pelk --version', () => {
  afterEach(() => vi.restoreAllMocks());

  it('prints the version of the pelk packages (@pelk/core\'s package.json), with --version and -V', async () => {
    const core = JSON.parse(readFileSync(fileURLToPath(new URL('../../../packages/core/package.json', import.meta.url)), 'utf8'));
    expect(core.version).toMatch(/^\d+\.\d+\.\d+/);
    for (const flag of ['--version', '-V']) {
      const { code, out, err } = await pelk(flag);
      expect(code, flag).toBe(0);
      expect(err).toBe('');
      expect(out).toBe(`${core.version}\n`);
    }
    expect((await pelk('--help')).out).toMatch(/-V, --version +print the version of the pelk packages/);
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

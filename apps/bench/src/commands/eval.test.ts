import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { readNpy } from '../io/npy.js';
import { pelk } from '../cli-test-support.js';
import { EXIT_NOT_CONVERGED } from './eval.js';

const fixture = (name: string) => fileURLToPath(new URL(`../../../../packages/conformance/fixtures/${name}.json`, import.meta.url));


const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

describe('pelk eval: --out is checked before the run', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pelk-eval-'));
  });
  afterEach(() => {
    vi.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The one error line of a refused run; checks exit status 2 and that nothing was written. */
  async function refused(...args: string[]): Promise<string> {
    const { code, out, err } = await pelk(...args);
    expect(code).toBe(2);
    expect(out).toBe('');
    const lines = err.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(err).not.toMatch(/\n\s+at /);
    return lines[0];
  }

  it('a missing folder is bad input (exit 2, one line), found before the model is even read', async () => {
    const out = join(dir, 'missing', 'states.npy');
    const line = await refused('eval', '--model', fixture('gru-torch-small'), '--out', out);
    expect(line).toBe(
      `pelk: --out: expected a file path in an existing, writable folder, received ${JSON.stringify(out)} (folder ${JSON.stringify(join(dir, 'missing'))} does not exist)`,
    );
    // Checked first: a missing model file is not even opened.
    expect(await refused('eval', '--model', join(dir, 'no-model.json'), '--out', out)).toMatch(/^pelk: --out: .*does not exist\)$/);
    expect(existsSync(join(dir, 'missing'))).toBe(false);
  });

  it('a parent that is a file, a path below a file, and an existing folder as the target are refused', async () => {
    const file = join(dir, 'file.txt');
    writeFileSync(file, 'x');
    expect(await refused('eval', '--model', fixture('gru-torch-small'), '--out', join(file, 'states.json'))).toBe(
      `pelk: --out: expected a file path in an existing, writable folder, received ${JSON.stringify(join(file, 'states.json'))} (${JSON.stringify(file)} is not a folder)`,
    );
    expect(await refused('eval', '--model', fixture('gru-torch-small'), '--out', join(file, 'sub', 'states.json'))).toMatch(
      /\(folder ".*file\.txt\/sub" cannot exist: part of its path is a file\)$/,
    );
    mkdirSync(join(dir, 'states.npy'));
    expect(await refused('eval', '--model', fixture('gru-torch-small'), '--out', join(dir, 'states.npy'))).toMatch(/\(an existing folder\)$/);
    expect(readdirSync(dir).sort()).toEqual(['file.txt', 'states.npy']);
  });

  it.skipIf(isRoot)(
    isRoot ? 'a read-only folder is refused — skipped: running as root, which may write anywhere' : 'a read-only folder is refused',
    async () => {
      const ro = join(dir, 'ro');
      mkdirSync(ro);
      chmodSync(ro, 0o555);
      try {
        expect(await refused('eval', '--model', fixture('gru-torch-small'), '--out', join(ro, 'states.npy'))).toMatch(
          /^pelk: --out: expected a file path in an existing, writable folder, received .* is not writable: EACCES\)$/,
        );
      } finally {
        chmodSync(ro, 0o755);
      }
    },
  );
});

describe('pelk eval: exit status and summary', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pelk-eval-'));
  });
  afterEach(() => {
    vi.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the --json summary says why it stopped and how many values were clipped', async () => {
    const { code, out, err } = await pelk('eval', '--model', fixture('elman-torch-small'), '--method', 'deer', '--tol', '1e-10', '--json');
    expect(err).toBe('');
    expect(code).toBe(0);
    const summary = JSON.parse(out);
    expect(summary).toMatchObject({ method: 'deer', converged: true, reason: 'converged', clippedValues: 0 });
  });

  it('the --json summary carries the Lyapunov exponent: > 0 on chaotic Lorenz-96, < 0 on a trained GRU, for any method', async () => {
    const chaotic = JSON.parse((await pelk('eval', '--model', fixture('lorenz96-small'), '--method', 'sequential', '--json')).out);
    expect(chaotic.lyapunov.exponent).toBeGreaterThan(0);
    expect(chaotic.lyapunov.steps).toBeGreaterThan(300);
    const calm = JSON.parse((await pelk('eval', '--model', fixture('gru-torch-small'), '--method', 'quasi-deer', '--json')).out);
    expect(calm.lyapunov).toMatchObject({ verdict: 'predictable', jacobian: 'dense' });
    expect(calm.lyapunov.exponent).toBeLessThan(0);
    expect(calm.lyapunov.reading).toMatch(/^predictable/);
    const { out } = await pelk('eval', '--model', fixture('gru-torch-small'), '--method', 'sequential');
    expect(out).toMatch(/predictability: predictable \(λ ≈ −/);
  });

  it(`a run that ends not converged writes --out and the summary, then exits ${EXIT_NOT_CONVERGED}`, async () => {
    expect(EXIT_NOT_CONVERGED).toBe(3);
    const states = join(dir, 'states.npy');
    // One DEER iteration cannot converge on T = 512 (DEER is exact after i iterations on the first i steps only).
    const { code, out, err } = await pelk(
      'eval', '--model', fixture('gru-torch-small'), '--method', 'deer', '--max-iters', '1', '--out', states, '--json',
    );
    expect(code).toBe(3);
    const summary = JSON.parse(out);
    expect(summary).toMatchObject({ method: 'deer', iterations: 1, converged: false, reason: 'max-iterations', clippedValues: 0 });
    expect(summary.residual).toBeGreaterThan(0);
    expect(err).toBe('pelk: not converged (max-iterations); exit status 3\n');
    const written = readNpy(readFileSync(states), 'states');
    expect(written.shape).toEqual([512, 8]);
    expect(readdirSync(dir)).toEqual(['states.npy']); // no temporary file left behind

    // Without --json the human summary says why as well.
    const human = await pelk('eval', '--model', fixture('gru-torch-small'), '--method', 'quasi-deer', '--max-iters', '1');
    expect(human.code).toBe(3);
    expect(human.out).toMatch(/NOT converged \(max-iterations\) after 1 iteration,/);
  });

  it('a ReLU Elman cell that grows past the clip is not converged (exit 3), whatever the method reports', async () => {
    // The issue's example: h' = relu(2h + 1) from 0 reaches 1e18 after 60 steps; iterates are clipped at 1e8.
    const spec = {
      cell: {
        type: 'elman',
        convention: 'torch',
        inputSize: 1,
        hiddenSize: 1,
        weights: { weight_ih_l0: [[0]], weight_hh_l0: [[2]], bias_ih_l0: [1], bias_hh_l0: [0] },
        nonlinearity: 'relu',
      },
      steps: 60,
      inputs: Array.from({ length: 60 }, () => [0]),
      initialState: [0],
    };
    const model = join(dir, 'relu.json');
    writeFileSync(model, JSON.stringify(spec));
    const states = join(dir, 'relu.json.out.json');
    const { code, out } = await pelk('eval', '--model', model, '--method', 'quasi-deer', '--out', states, '--json');
    const summary = JSON.parse(out);
    expect(summary.converged).toBe(false);
    expect(summary.reason).not.toBe('converged');
    expect(code).toBe(3);
    expect(JSON.parse(readFileSync(states, 'utf8'))).toHaveLength(60);
  });

  it('a typo in the model spec is bad input naming the key and the closest known one', async () => {
    const spec = JSON.parse(readFileSync(fixture('elman-torch-small'), 'utf8'));
    spec.cell.nonLinearity = spec.cell.nonlinearity;
    delete spec.cell.nonlinearity;
    const model = join(dir, 'typo.json');
    writeFileSync(model, JSON.stringify(spec));
    const { code, out, err } = await pelk('eval', '--model', model, '--json');
    expect(code).toBe(2);
    expect(out).toBe('');
    expect(err).toBe(
      'pelk: cell.nonLinearity: expected only the keys `type`, `convention`, `inputSize`, `hiddenSize`, `weights`, `nonlinearity`, ' +
        'received an unknown key `nonLinearity` (did you mean `nonlinearity`?)\n',
    );
  });

  it('the help text documents the exit statuses', async () => {
    const { code, out } = await pelk('eval', '--help');
    expect(code).toBe(0);
    expect(out).toMatch(/Exit codes:\n {2}0 {2}converged\n {2}1 {2}internal error\n {2}2 {2}bad input/);
    expect(out).toMatch(/\n {2}3 {2}finished without converging: --out and the summary are written first;/);
  });
});

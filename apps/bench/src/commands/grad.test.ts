import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pelk } from '../cli-test-support.js';
import { writeNpy } from '../io/npy.js';
import type { GradFile, GradSummary } from './grad.js';

const fixturePath = (name: string) => fileURLToPath(new URL(`../../../../packages/conformance/fixtures/${name}.json`, import.meta.url));
const flat = (x: unknown): number[] => (Array.isArray(x) ? x.flatMap(flat) : [x as number]);

/** `max |got − want| / max |want|`. */
function relativeError(got: unknown, want: unknown): number {
  const g = flat(got);
  const w = flat(want);
  expect(g.length).toBe(w.length);
  let err = 0;
  let scale = 0;
  for (let k = 0; k < w.length; k++) {
    err = Math.max(err, Math.abs(g[k] - w[k]));
    scale = Math.max(scale, Math.abs(w[k]));
  }
  return err / scale;
}

describe('pelk grad', () => {
  let dir: string;
  const fx = JSON.parse(readFileSync(fixturePath('grad-lstm-torch-small'), 'utf8'));
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pelk-grad-'));
    // The model spec of the gradient fixture (its cell, inputs and initial state), and its cotangent as .npy.
    writeFileSync(join(dir, 'model.json'), JSON.stringify({ name: 'lstm', cell: fx.cell, steps: fx.steps, inputs: fx.inputs, initialState: fx.initialState }));
    writeFileSync(join(dir, 'c.npy'), writeNpy(flat(fx.cotangent), [fx.steps, 16]));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes every gradient by the spec names, equal to PyTorch autograd, and prints a summary', async () => {
    const out = join(dir, 'g.json');
    const { code, out: stdout, err } = await pelk('grad', '--model', join(dir, 'model.json'), '--cotangent', join(dir, 'c.npy'), '--out', out, '--method', 'deer', '--tol', '1e-12', '--json');
    expect(err).toBe('');
    expect(code).toBe(0);
    const summary = JSON.parse(stdout) as GradSummary;
    expect(summary).toMatchObject({ backend: 'cpu', dtype: 'float64', T: 512, D: 16, forward: { method: 'deer', converged: true }, adjoint: { method: 'sequential', converged: true } });
    expect(Math.abs(summary.loss - fx.loss)).toBeLessThanOrEqual(1e-8 * Math.abs(fx.loss));
    const g = JSON.parse(readFileSync(out, 'utf8')) as GradFile;
    expect(Object.keys(g.parameters).sort()).toEqual(['bias_hh_l0', 'bias_ih_l0', 'weight_hh_l0', 'weight_ih_l0']);
    for (const [name, want] of Object.entries(fx.gradients.parameters)) expect(relativeError(g.parameters[name], want), name).toBeLessThanOrEqual(1e-8);
    expect(relativeError(g.inputs, fx.gradients.inputs)).toBeLessThanOrEqual(1e-8);
    expect(relativeError(g.initialState, fx.gradients.initialState)).toBeLessThanOrEqual(1e-8);
    // The human-readable form names both solves.
    const text = await pelk('grad', '--model', join(dir, 'model.json'), '--cotangent', join(dir, 'c.npy'), '--out', out, '--adjoint', 'diagonal');
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/forward quasi-deer: converged after \d+ iterations/);
    expect(text.out).toMatch(/adjoint diagonal \(requested\): converged after \d+ iterations/);
  });

  it('refuses a cotangent of the wrong shape, a bad --adjoint and a non-converged forward solve (exit 2, one line, nothing written)', async () => {
    const out = join(dir, 'g.json');
    writeFileSync(join(dir, 'bad.npy'), writeNpy(new Float64Array(3 * 16), [3, 16]));
    const bad = await pelk('grad', '--model', join(dir, 'model.json'), '--cotangent', join(dir, 'bad.npy'), '--out', out);
    expect(bad.code).toBe(2);
    expect(bad.err.trim()).toBe("pelk: --cotangent: expected shape [512, 16] (the states' shape), received shape [3, 16]");
    const adjoint = await pelk('grad', '--model', join(dir, 'model.json'), '--cotangent', join(dir, 'c.npy'), '--out', out, '--adjoint', 'backwards');
    expect(adjoint.code).toBe(2);
    expect(adjoint.err.trim()).toBe(`pelk: --adjoint: expected 'auto', 'sequential', 'dense', 'diagonal', received "backwards"`);
    const early = await pelk('grad', '--model', join(dir, 'model.json'), '--cotangent', join(dir, 'c.npy'), '--out', out, '--max-iters', '2');
    expect(early.code).toBe(2);
    expect(early.err.trim()).toMatch(/^pelk: forward evaluation: expected a converged evaluation .*, received quasi-deer stopped with reason 'max-iterations'/);
    expect(existsSync(out)).toBe(false);
    const allowed = await pelk('grad', '--model', join(dir, 'model.json'), '--cotangent', join(dir, 'c.npy'), '--out', out, '--max-iters', '2', '--allow-non-converged', '--json');
    // Written, but not certified: exit 3.
    expect(allowed.code).toBe(3);
    expect(allowed.err.trim()).toBe('pelk: not converged (forward max-iterations); exit status 3');
    expect(JSON.parse(allowed.out).forward).toMatchObject({ converged: false, reason: 'max-iterations' });
    expect(existsSync(out)).toBe(true);
  });
});

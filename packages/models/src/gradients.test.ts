/**
 * The cells' analytic vector–Jacobian products, checked through `grad` against central finite
 * differences of the loss `L = Σ C ⊙ states` of float64 sequential evaluations: every convention's
 * weights (by the spec's names), the inputs (drivers for `ar`) and the initial state.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CpuBackend } from '@pelk/backend-cpu';
import { type Cell, evaluate, grad, type ShapedArray } from '@pelk/core';
import { describe, expect, it } from 'vitest';
import { maxAbs, maxAbsDiff, randomArray, randomMatrix } from '../test/support.js';
import { ar } from './ar.js';
import { elman } from './elman.js';
import { gru } from './gru.js';
import { lorenz96 } from './lorenz96.js';
import { lstm } from './lstm.js';
import { readCellSpec, readModelSpec } from './spec.js';
import type { ModelCell } from './types.js';

const backend = new CpuBackend();
const T = 24;

async function loss(cell: Cell, inputs: ShapedArray | null, s0: Float64Array, C: Float64Array): Promise<number> {
  const r = await evaluate(cell, inputs, { backend, method: 'sequential', initialState: Array.from(s0), steps: inputs ? undefined : T, lyapunov: false });
  const s = await r.read();
  r.dispose();
  let L = 0;
  for (let k = 0; k < s.length; k++) L += C[k] * s[k];
  return L;
}

/** Sets element `index` (flat) of the numeric array at `path` in a copy of `spec`. */
function perturbed(spec: unknown, path: readonly string[], index: number, delta: number): unknown {
  const copy = structuredClone(spec) as Record<string, unknown>;
  let holder: Record<string, unknown> = copy;
  for (const key of path.slice(0, -1)) holder = holder[key] as Record<string, unknown>;
  const leaf = path[path.length - 1];
  if (typeof holder[leaf] === 'number') {
    holder[leaf] = (holder[leaf] as number) + delta;
    return copy;
  }
  let k = 0;
  const walk = (v: unknown): unknown => (Array.isArray(v) ? v.map(walk) : k++ === index ? (v as number) + delta : v);
  holder[leaf] = walk(holder[leaf]);
  return copy;
}

/** Central difference of `f` at step `h`, with the spacing as represented. */
async function central(f: (delta: number) => Promise<number>, h: number): Promise<number> {
  return ((await f(h)) - (await f(-h))) / (2 * h);
}

/** Checks a sample of every gradient against central differences (relative to the array's largest entry). */
async function checkCell(name: string, cell: ModelCell, inputSize: number, parameterPaths: Record<string, string[]>): Promise<void> {
  const D = cell.stateSize;
  const inputs = inputSize > 0 ? { data: randomArray(T * inputSize, 5, 0.8), shape: [T, inputSize] } : null;
  const s0 = randomArray(D, 6, 0.5);
  const C = randomArray(T * D, 7);
  const g = await grad(cell, inputs, { data: C, shape: [T, D] }, { backend, method: 'deer', initialState: Array.from(s0), steps: inputs ? undefined : T, tolerance: 1e-12, lyapunov: false });
  expect(g.adjoint.converged).toBe(true);
  expect(Object.keys(g.parameters).sort(), `${name}: parameter names`).toEqual(Object.keys(parameterPaths).sort());
  const spec = cell.toSpec();
  const h = 1e-5;
  const tolerance = 1e-6;
  for (const [param, path] of Object.entries(parameterPaths)) {
    const analytic = g.parameters[param].data;
    const scale = Math.max(maxAbs(analytic), 1e-3);
    for (const index of [0, Math.floor(analytic.length / 2), analytic.length - 1]) {
      const fd = await central(async (d) => loss(readCellSpec(perturbed(spec, path, index, d)), inputs, s0, C), h);
      expect(Math.abs(fd - analytic[index]) / scale, `${name}: ∂L/∂${param}[${index}] = ${analytic[index]}, FD ${fd}`).toBeLessThanOrEqual(tolerance);
    }
  }
  const s0Scale = Math.max(maxAbs(g.initialState.data), 1e-3);
  for (let j = 0; j < D; j++) {
    const fd = await central(async (d) => loss(cell, inputs, Float64Array.from(s0, (v, k) => (k === j ? v + d : v)), C), h);
    expect(Math.abs(fd - g.initialState.data[j]) / s0Scale, `${name}: ∂L/∂s0[${j}]`).toBeLessThanOrEqual(tolerance);
  }
  if (inputs) {
    const analytic = g.inputs!.data;
    const scale = Math.max(maxAbs(analytic), 1e-3);
    for (const index of [0, 7 % analytic.length, analytic.length - 1]) {
      const fd = await central(async (d) => loss(cell, { ...inputs, data: Float64Array.from(inputs.data, (v, k) => (k === index ? v + d : v)) }, s0, C), h);
      expect(Math.abs(fd - analytic[index]) / scale, `${name}: ∂L/∂u[${index}]`).toBeLessThanOrEqual(tolerance);
    }
  }
}

const torchNames = { weight_ih_l0: ['weights', 'weight_ih_l0'], weight_hh_l0: ['weights', 'weight_hh_l0'], bias_ih_l0: ['weights', 'bias_ih_l0'], bias_hh_l0: ['weights', 'bias_hh_l0'] };
const kerasNames = { kernel: ['weights', 'kernel'], recurrentKernel: ['weights', 'recurrentKernel'], bias: ['weights', 'bias'] };
const prefixed = (names: Record<string, string[]>, prefix: string) =>
  Object.fromEntries(Object.entries(names).map(([k, v]) => [`${prefix}.${k}`, [prefix, ...v]]));
const keras = (I: number, G: number, H: number, seed: number, rows: 1 | 2) => ({
  kernel: randomMatrix(I, G, seed, 0.6),
  recurrentKernel: randomMatrix(H, G, seed + 1, 0.6),
  bias: rows === 2 ? randomMatrix(2, G, seed + 2, 0.6) : Array.from(randomArray(G, seed + 2, 0.6)),
});
const flaxDense = (fan: number, H: number, seed: number, bias: boolean) => ({
  kernel: randomMatrix(fan, H, seed, 0.5),
  ...(bias ? { bias: Array.from(randomArray(H, seed + 10, 0.5)) } : {}),
});

describe('analytic gradients equal central differences (float64, CPU)', () => {
  it('GRU: torch, flax, keras (reset after and before)', async () => {
    await checkCell('gru torch', gru.random({ inputSize: 3, hiddenSize: 4, seed: 1, scale: 0.8 }), 3, torchNames);
    const flax = gru.flax({ ir: flaxDense(3, 4, 1, true), iz: flaxDense(3, 4, 2, true), in: flaxDense(3, 4, 3, true), hr: flaxDense(4, 4, 4, false), hz: flaxDense(4, 4, 5, false), hn: flaxDense(4, 4, 6, true) });
    const flaxNames = Object.fromEntries(
      ['ir', 'iz', 'in', 'hr', 'hz', 'hn'].flatMap((d) => [[`${d}.kernel`, ['weights', d, 'kernel']], ...(['hr', 'hz'].includes(d) ? [] : [[`${d}.bias`, ['weights', d, 'bias']]])]),
    );
    await checkCell('gru flax', flax, 3, flaxNames);
    await checkCell('gru keras resetAfter', gru.keras({ ...keras(3, 12, 4, 21, 2), resetAfter: true, recurrentActivation: 'sigmoid' }), 3, kerasNames);
    await checkCell('gru keras reset before', gru.keras({ ...keras(3, 12, 4, 31, 1), resetAfter: false, recurrentActivation: 'sigmoid' }), 3, kerasNames);
  });

  it('LSTM and Elman: torch and keras', async () => {
    await checkCell('lstm torch', lstm.random({ inputSize: 2, hiddenSize: 3, seed: 2, scale: 0.8 }), 2, torchNames);
    await checkCell('lstm keras', lstm.keras({ ...keras(2, 12, 3, 41, 1), recurrentActivation: 'sigmoid' }), 2, kerasNames);
    await checkCell('elman torch', elman.random({ inputSize: 2, hiddenSize: 4, seed: 3, scale: 0.8 }), 2, torchNames);
    await checkCell('elman keras', elman.keras({ ...keras(2, 4, 4, 51, 1), activation: 'tanh' }), 2, kerasNames);
  });

  it('ar over GRU (skip) and LSTM (no skip), drivers as inputs', async () => {
    const readout = (H: number, seed: number, skip: boolean) => ({ weight: randomMatrix(2, H, seed, 0.8), bias: Array.from(randomArray(2, seed + 1, 0.5)), skip });
    const ro = { 'readout.weight': ['readout', 'weight'], 'readout.bias': ['readout', 'bias'] };
    await checkCell('ar gru', ar({ inner: gru.random({ inputSize: 1, hiddenSize: 3, seed: 4, scale: 0.9 }), readout: readout(3, 61, true) }), 1, { ...prefixed(torchNames, 'inner'), ...ro });
    await checkCell('ar lstm', ar({ inner: lstm.random({ inputSize: 1, hiddenSize: 3, seed: 5, scale: 0.9 }), readout: readout(3, 71, false) }), 1, { ...prefixed(torchNames, 'inner'), ...ro });
  });

  it('Lorenz-96 (RK4 and Euler): the forcing and the initial state', async () => {
    for (const integrator of ['rk4', 'euler'] as const) {
      await checkCell(`lorenz96 ${integrator}`, lorenz96({ dimension: 5, forcing: 8, dt: 0.01, integrator }), 0, { forcing: ['forcing'] });
    }
  });
});

describe('the adjoint solves agree on a hard model', () => {
  it("the repository's AR-GRU (DEER overflows on it): the diagonal and dense iterations reach the host sweep's gradients", async () => {
    const fixture = JSON.parse(readFileSync(fileURLToPath(new URL('../../conformance/fixtures/argru-sine-pelk.json', import.meta.url)), 'utf8'));
    const spec = readModelSpec(fixture);
    const T = spec.steps;
    const C = new Float64Array(T * 4);
    C[(T - 1) * 4] = 1; // L = x_T: the cotangent must travel the whole sequence back
    const common = { backend, method: 'sequential' as const, initialState: spec.initialState ?? undefined, lyapunov: false };
    const reference = await grad(spec.cell, spec.inputs, { data: C, shape: [T, 4] }, { ...common, adjoint: 'sequential' });
    for (const adjoint of ['dense', 'diagonal'] as const) {
      const g = await grad(spec.cell, spec.inputs, { data: C, shape: [T, 4] }, { ...common, adjoint });
      expect(g.adjoint.converged, `${adjoint}: ${g.adjoint.reason} after ${g.adjoint.iterations}, residual ${g.adjoint.residual}`).toBe(true);
      for (const [name, p] of Object.entries(reference.parameters)) {
        expect(maxAbsDiff(g.parameters[name].data, p.data) / maxAbs(p.data), `${adjoint}: ${name}`).toBeLessThanOrEqual(1e-9);
      }
      // The certificate is relative to the adjoint's scale (here ~4.5, the drivers' gradient); this
      // model forgets its initial state (∂L/∂s_0 ~ 1e-6), so s_0's error is measured on that scale.
      expect(maxAbsDiff(g.initialState.data, reference.initialState.data) / maxAbs(reference.inputs!.data)).toBeLessThanOrEqual(1e-9);
      expect(maxAbsDiff(g.inputs!.data, reference.inputs!.data) / maxAbs(reference.inputs!.data)).toBeLessThanOrEqual(1e-9);
    }
  });
});

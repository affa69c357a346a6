/**
 * Test helpers for the cells' tests in ../src. They live outside `src` so they are not published
 * and the cells stay backend-neutral (only tests import a backend or vitest): the checks every cell
 * variant must pass, against the float64 CPU backend — analytic Jacobians vs central finite
 * differences of `apply`, the diagonal vs the dense diagonal, `apply` vs `step`, a fused rollout
 * vs stepping, and no leaked tensors.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type BoundCell, type Cell, type DType, InvalidArgumentError, type Tensor } from '@pelk/core';
import { CpuBackend } from '@pelk/backend-cpu';
import { expect, it } from 'vitest';
import { mulberry32 } from '../src/host.js';

/** Deterministic uniform numbers in `[-scale, scale)`. */
export function randomArray(n: number, seed: number, scale = 1): Float64Array {
  const next = mulberry32(seed);
  return Float64Array.from({ length: n }, () => (2 * next() - 1) * scale);
}

/** Nested `[r][c]` uniform numbers, for weights given as nested arrays. */
export function randomMatrix(r: number, c: number, seed: number, scale = 1): number[][] {
  const flat = randomArray(r * c, seed, scale);
  return Array.from({ length: r }, (_, i) => Array.from(flat.subarray(i * c, (i + 1) * c)));
}

/** Largest absolute difference. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** `states[:, t, :]` of a flat `[B, T, D]` array. */
function gather(states: ArrayLike<number>, B: number, T: number, D: number, t: number): Float64Array {
  const out = new Float64Array(B * D);
  for (let b = 0; b < B; b++) for (let i = 0; i < D; i++) out[b * D + i] = states[(b * T + t) * D + i];
  return out;
}

/** Largest absolute value. */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** Reads a shipped fixture. They live once, in @pelk/conformance (which publishes them); models tests read the file, not the package, to avoid a dependency cycle. */
export function readFixture(name: string): unknown {
  return JSON.parse(readFileSync(fileURLToPath(new URL(`../../conformance/fixtures/${name}.json`, import.meta.url)), 'utf8'));
}

/** What {@link cellContract} needs about one variant. */
export interface ContractOptions {
  readonly batch?: number;
  readonly steps?: number;
  /** Scale of the random previous states. */
  readonly stateScale?: number;
  /** Offset added to the random previous states (e.g. Lorenz-96 around F). */
  readonly stateOffset?: number;
  readonly inputScale?: number;
  /** Relative tolerance of the finite-difference check. Default 1e-6. */
  readonly fdTolerance?: number;
  readonly seed?: number;
}

/**
 * Registers the contract tests (a) dense Jacobian = central finite differences, (b) diagonal =
 * dense diagonal, (c) `apply` = `step` at every t, (f) bind/apply/linearize/dispose leave no tensors.
 */
export function cellContract(name: string, make: () => Cell, o: ContractOptions = {}): void {
  const B = o.batch ?? 2;
  const T = o.steps ?? 3;
  const seed = o.seed ?? 7;
  const backend = new CpuBackend();

  const setup = () => {
    const cell = make();
    const D = cell.stateSize;
    const I = cell.inputSize;
    const inputs = I > 0 ? backend.fromArray(randomArray(B * T * I, seed, o.inputScale ?? 1), [B, T, I], 'float64') : null;
    const prev = randomArray(B * T * D, seed + 1, o.stateScale ?? 1).map((v) => v + (o.stateOffset ?? 0));
    const bound = cell.bind(backend, { dtype: 'float64', inputs, batch: B, steps: T });
    const cleanup = () => {
      bound.dispose();
      if (inputs) backend.dispose(inputs);
    };
    return { cell, D, bound, prev, cleanup };
  };

  /** `apply` on host data, read back; its temporaries are freed. */
  function readAndFree(bound: BoundCell, prev: Float64Array, D: number): Float64Array {
    let data!: Float64Array;
    backend.tidy(() => {
      data = backend.readSync(bound.apply(backend.fromArray(prev, [B, T, D], 'float64'))) as Float64Array;
    });
    return data;
  }

  it(`${name}: dense Jacobian matches central finite differences`, () => {
    const { D, bound, prev, cleanup } = setup();
    let J!: Float64Array;
    let value!: Float64Array;
    backend.tidy(() => {
      const lin = bound.linearize(backend.fromArray(prev, [B, T, D], 'float64'), 'dense');
      expect(lin.jacobian.shape).toEqual([B, T, D, D]);
      J = backend.readSync(lin.jacobian) as Float64Array;
      value = backend.readSync(lin.value) as Float64Array;
    });
    expect(maxAbsDiff(value, readAndFree(bound, prev, D))).toBe(0);
    const fd = new Float64Array(B * T * D * D);
    for (let j = 0; j < D; j++) {
      const plus = prev.slice();
      const minus = prev.slice();
      const h = new Float64Array(B * T);
      for (let r = 0; r < B * T; r++) {
        const x = prev[r * D + j];
        h[r] = 1e-5 * Math.max(1, Math.abs(x));
        plus[r * D + j] = x + h[r];
        minus[r * D + j] = x - h[r];
      }
      const fp = readAndFree(bound, plus, D);
      const fm = readAndFree(bound, minus, D);
      for (let r = 0; r < B * T; r++) {
        for (let i = 0; i < D; i++) fd[r * D * D + i * D + j] = (fp[r * D + i] - fm[r * D + i]) / (plus[r * D + j] - minus[r * D + j]);
      }
    }
    const err = maxAbsDiff(J, fd);
    expect(err).toBeLessThan((o.fdTolerance ?? 1e-6) * Math.max(1, maxAbs(J)));
    // The check must not pass vacuously.
    expect(maxAbs(J)).toBeGreaterThan(1e-3);
    cleanup();
  });

  it(`${name}: diagonal Jacobian equals the dense diagonal`, () => {
    const { D, bound, prev, cleanup } = setup();
    let dense!: Float64Array;
    let diag!: Float64Array;
    let vDense!: Float64Array;
    let vDiag!: Float64Array;
    backend.tidy(() => {
      const p = backend.fromArray(prev, [B, T, D], 'float64');
      const a = bound.linearize(p, 'dense');
      const b = bound.linearize(p, 'diagonal');
      expect(b.jacobian.shape).toEqual([B, T, D]);
      dense = backend.readSync(a.jacobian) as Float64Array;
      diag = backend.readSync(b.jacobian) as Float64Array;
      vDense = backend.readSync(a.value) as Float64Array;
      vDiag = backend.readSync(b.value) as Float64Array;
    });
    const fromDense = Float64Array.from({ length: B * T * D }, (_, k) => dense[Math.floor(k / D) * D * D + (k % D) * (D + 1)]);
    expect(maxAbsDiff(diag, fromDense)).toBeLessThan(1e-12);
    expect(maxAbsDiff(vDense, vDiag)).toBe(0);
    cleanup();
  });

  it(`${name}: linearizeRange on steps [start, start + n) equals those rows of linearize`, () => {
    const { D, bound, prev, cleanup } = setup();
    expect(bound.linearizeRange, 'every cell of @pelk/models offers linearizeRange').toBeDefined();
    for (const kind of ['dense', 'diagonal'] as const) {
      const width = kind === 'dense' ? D * D : D;
      let whole!: { value: Float64Array; jacobian: Float64Array };
      backend.tidy(() => {
        const lin = bound.linearize(backend.fromArray(prev, [B, T, D], 'float64'), kind);
        whole = { value: backend.readSync(lin.value) as Float64Array, jacobian: backend.readSync(lin.jacobian) as Float64Array };
      });
      for (let start = 0; start < T; start++) {
        for (let n = 1; start + n <= T; n++) {
          backend.tidy(() => {
            const rows = Float64Array.from({ length: B * n * D }, (_, k) => {
              const b = Math.floor(k / (n * D));
              return prev[(b * T + start) * D + (k % (n * D))];
            });
            const part = bound.linearizeRange!(backend.fromArray(rows, [B, n, D], 'float64'), start, kind);
            const value = backend.readSync(part.value);
            const jac = backend.readSync(part.jacobian);
            for (let b = 0; b < B; b++) {
              const want = whole.value.subarray((b * T + start) * D, (b * T + start + n) * D);
              expect(maxAbsDiff(value.subarray(b * n * D, (b + 1) * n * D), want), `${kind} value, start ${start}, n ${n}`).toBe(0);
              const wantJ = whole.jacobian.subarray((b * T + start) * width, (b * T + start + n) * width);
              expect(maxAbsDiff(jac.subarray(b * n * width, (b + 1) * n * width), wantJ), `${kind} Jacobian, start ${start}, n ${n}`).toBe(0);
            }
          });
        }
      }
    }
    cleanup();
  });

  it(`${name}: apply on [B, T, D] equals step at every t`, () => {
    const { D, bound, prev, cleanup } = setup();
    const applied = readAndFree(bound, prev, D);
    backend.tidy(() => {
      const p = backend.fromArray(prev, [B, T, D], 'float64');
      for (let t = 0; t < T; t++) {
        const stepped = backend.readSync(bound.step(backend.timeStep(p, t), t));
        expect(stepped.length).toBe(B * D);
        for (let b = 0; b < B; b++) {
          for (let i = 0; i < D; i++) expect(Math.abs(stepped[b * D + i] - applied[(b * T + t) * D + i])).toBeLessThan(1e-13);
        }
      }
    });
    cleanup();
  });

  it(`${name}: a fused rollout (if any) equals stepping, in float64 and float32`, () => {
    for (const dtype of ['float64', 'float32'] as const) {
      const cell = make();
      const D = cell.stateSize;
      const I = cell.inputSize;
      const inputs = I > 0 ? backend.fromArray(randomArray(B * T * I, seed, o.inputScale ?? 1), [B, T, I], dtype) : null;
      const bound = cell.bind(backend, { dtype, inputs, batch: B, steps: T });
      const init = backend.fromArray(randomArray(B * D, seed + 2, o.stateScale ?? 1).map((v) => v + (o.stateOffset ?? 0)), [B, D], dtype);
      const rollout = bound.rollout?.(init);
      if (rollout) {
        // Advanced in uneven slices (2, then 1, 2, …) so slice boundaries fall mid-sequence.
        let done = 0;
        for (let slice = 2; done < T; slice = 3 - slice) {
          const next = rollout.advance(slice);
          expect(next).toBe(Math.min(T, done + slice));
          done = next;
        }
        expect(rollout.advance(1)).toBe(T);
        const fused = rollout.states;
        expect(fused.shape).toEqual([B, T, D]);
        const got = backend.readSync(fused);
        let prev = init;
        for (let t = 0; t < T; t++) {
          const next = backend.tidy(() => bound.step(prev, t));
          const want = backend.readSync(next);
          const tol = dtype === 'float64' ? 1e-13 : 1e-5;
          for (let b = 0; b < B; b++) {
            for (let i = 0; i < D; i++) expect(Math.abs(got[(b * T + t) * D + i] - want[b * D + i])).toBeLessThan(tol * (1 + Math.abs(want[b * D + i])));
          }
          if (prev !== init) backend.dispose(prev);
          // Continue from the fused trajectory, so float32 rounding does not compound.
          backend.dispose(next);
          prev = backend.fromArray(gather(got, B, T, D, t), [B, D], dtype);
        }
        backend.dispose([prev, fused]);
      }
      backend.dispose(init);
      bound.dispose();
      if (inputs) backend.dispose(inputs);
    }
  });

  it(`${name}: bind, apply, linearize, step and dispose free every tensor`, () => {
    const start = backend.memory().tensors;
    backend.tidy(() => {
      const { D, bound, prev, cleanup } = setup();
      const p = backend.fromArray(prev, [B, T, D], 'float64');
      bound.apply(p);
      bound.linearize(p, 'dense');
      bound.linearize(p, 'diagonal');
      bound.step(backend.timeStep(p, 0), 0);
      cleanup();
    });
    expect(backend.memory().tensors).toBe(start);
    // Outside any tidy: what bind created is freed by dispose alone.
    const { D, bound, prev, cleanup } = setup();
    const afterBind = backend.memory().tensors;
    backend.tidy(() => {
      bound.linearize(backend.fromArray(prev, [B, T, D], 'float64'), 'dense');
    });
    expect(backend.memory().tensors).toBe(afterBind);
    cleanup();
    expect(backend.memory().tensors).toBe(start);
  });
}

/** Steps a bound cell sequentially from `s0` for `T` steps (batch 1) and returns `[T * D]`. */
export function rollout(
  backend: CpuBackend,
  bound: BoundCell,
  s0: ArrayLike<number>,
  T: number,
  D: number,
  dtype: DType = 'float64',
): Float64Array {
  const out = new Float64Array(T * D);
  let prev: Tensor = backend.fromArray(s0, [1, D], dtype);
  for (let t = 0; t < T; t++) {
    const p = prev;
    const next = backend.tidy(() => bound.step(p, t));
    out.set(backend.readSync(next), t * D);
    backend.dispose(p);
    prev = next;
  }
  backend.dispose(prev);
  return out;
}

/** The InvalidArgumentError `fn` throws; fails when it throws nothing or something else. */
export function thrownBy(fn: () => unknown): InvalidArgumentError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidArgumentError);
    return e as InvalidArgumentError;
  }
  throw new Error('expected an InvalidArgumentError');
}

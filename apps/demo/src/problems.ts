/**
 * The demo's problems, built from the settings with @pelk/models: seeded random GRU / LSTM / Elman
 * networks driven by standard-normal inputs, a "hot" GRU (recurrent gain 5: DEER's iterates blow up
 * — at D = 16, T = 2,000, seed 1, float64 on the WebAssembly backend, residuals up to 5.9·10⁷ over
 * 574 iterations — while ELK's damping converges in 35), and Lorenz-96 (autonomous; at F = 8 chaotic, so parallel methods need
 * many iterations), and the AR-GRU the repository trains itself (`pnpm pelk train ar-sine`: the ELK
 * paper's stability experiment, on which DEER's iterates overflow and ELK converges in fewer
 * iterations), driven by standard-normal noise.
 */

// The repository's trained AR-GRU (the app is private and lives in the repository, so it reads the
// fixture where `pnpm pelk train ar-sine` writes it).
import arGruFixture from '../../../packages/conformance/fixtures/argru-sine-pelk.json' with { type: 'json' };
import type { Cell, EvaluateOptions, InputsLike } from '@pelk/core';
import { elman, gru, lorenz96, lstm, mulberry32, readCellSpec } from '@pelk/models';
import type { Settings } from './settings.js';

/** Inputs per step of the random RNNs. */
export const INPUT_SIZE = 8;

/** A problem ready for `evaluate`. */
export interface Problem {
  readonly cell: Cell;
  readonly inputs: InputsLike;
  /** `steps`, `batch` and `initialState` where the cell needs them. */
  readonly options: Pick<EvaluateOptions, 'steps' | 'batch' | 'initialState'>;
  /** One line for the page. */
  readonly description: string;
}

/** Standard-normal values from a seeded generator (mulberry32 and Box–Muller): the same on every browser. */
export function normals(n: number, seed: number): Float32Array {
  const uniform = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - uniform()));
    const phi = 2 * Math.PI * uniform();
    out[i] = r * Math.cos(phi);
    if (i + 1 < n) out[i + 1] = r * Math.sin(phi);
  }
  return out;
}

/** Input values the page generates at most (512 MiB of float32): beyond that it refuses before allocating. */
export const MAX_INPUT_VALUES = 2 ** 27;

/** One line describing the problem (nothing is generated). */
export function describeSettings(s: Settings): string {
  const T = s.T.toLocaleString('en-US');
  if (s.model === 'ar-gru') return `AR-GRU trained by pelk on noisy sine waves (state [x, h], D = 4), ${T} standard-normal drivers (seed ${s.seed}), B = ${s.B}`;
  if (s.model === 'lorenz96') return `Lorenz-96, D = ${s.D}, F = ${s.forcing}, dt = 0.01 (RK4), ${T} steps from F + 0.01·e₀, B = ${s.B}`;
  const name = s.model === 'hot-gru' ? 'hot GRU' : s.model === 'gru' ? 'GRU' : s.model === 'lstm' ? 'LSTM' : 'Elman RNN';
  return `random ${name}, D = ${s.D}, gain ${s.gain} (weights ±${s.gain}/√D, seed ${s.seed}), ${INPUT_SIZE} standard-normal inputs per step, B = ${s.B}, T = ${T}`;
}

/** Builds the cell and its inputs; refuses (RangeError, before allocating) inputs beyond {@link MAX_INPUT_VALUES}. */
export function buildProblem(s: Settings): Problem {
  const description = describeSettings(s);
  if (s.model === 'lorenz96') {
    const initialState: number[][] = Array.from({ length: s.B }, (_, b) => Array.from({ length: s.D }, (_, i) => s.forcing + (i === 0 ? 0.01 * (b + 1) : 0)));
    return {
      cell: lorenz96({ dimension: s.D, forcing: s.forcing }),
      inputs: null,
      options: { steps: s.T, batch: s.B, initialState },
      description,
    };
  }
  if (s.model === 'ar-gru') {
    if (s.B * s.T > MAX_INPUT_VALUES) throw new RangeError(`drivers of B·T = ${(s.B * s.T).toLocaleString('en-US')} values are more than this page generates (${MAX_INPUT_VALUES.toLocaleString('en-US')}); lower T or B`);
    return {
      cell: readCellSpec(arGruFixture.cell),
      inputs: { data: normals(s.B * s.T, s.seed + 1), shape: [s.B, s.T, 1] },
      options: {},
      description,
    };
  }
  const values = s.B * s.T * INPUT_SIZE;
  if (values > MAX_INPUT_VALUES) {
    throw new RangeError(`inputs of B·T·${INPUT_SIZE} = ${values.toLocaleString('en-US')} values are more than this page generates (${MAX_INPUT_VALUES.toLocaleString('en-US')}); lower T or B`);
  }
  const random = { inputSize: INPUT_SIZE, hiddenSize: s.D, seed: s.seed, scale: s.gain / Math.sqrt(s.D) };
  const cell = s.model === 'lstm' ? lstm.random(random) : s.model === 'elman' ? elman.random(random) : gru.random(random);
  return {
    cell,
    inputs: { data: normals(values, s.seed + 1), shape: [s.B, s.T, INPUT_SIZE] },
    options: {},
    description,
  };
}

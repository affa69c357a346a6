/**
 * The fused-kernel contract. A built-in cell describes itself with a plain, backend-neutral
 * {@link CellProgram} (what it computes, never how), and a backend that has fused kernels for that
 * description binds it with {@link ComputeBackend.bindProgram} into a {@link FusedCell}: one kernel
 * pass per sequential evaluation, per linearisation and per value sweep, instead of dozens of
 * op-by-op calls each writing a full `[B, T, ·]` intermediate. The same contract serves CPU
 * (host TypeScript, WebAssembly) and GPU (WGSL) backends; core falls back to the cell's op-by-op
 * {@link BoundCell} for cells without a program and backends without the kernel.
 */
import type { Tensor } from './backend.js';
import type { JacobianKind, Rollout } from './cell.js';

/** Activation functions a program may name (the same names the cells accept). */
export type ProgramActivation = 'sigmoid' | 'hardSigmoid' | 'tanh' | 'relu' | 'linear';

/** One activation on one number, and its derivative from the pre-activation `x` and value `y`. */
export interface ScalarActivation {
  value(x: number): number;
  derivative(x: number, y: number): number;
}

/**
 * The scalar form of every {@link ProgramActivation}: what host kernels evaluate, and the reference
 * the other kernels (WebAssembly, WGSL) follow. Derivatives use the value where it saves an `exp`.
 */
export const SCALAR_ACTIVATIONS: Readonly<Record<ProgramActivation, ScalarActivation>> = {
  // Branch-free: exp(−x) overflows to +∞ for x ≪ 0 and 1/∞ = 0, the correct limit.
  sigmoid: { value: (x) => 1 / (1 + Math.exp(-x)), derivative: (_x, y) => y * (1 - y) },
  // clip(0.2x + 0.5, 0, 1) (TensorFlow.js / Keras 2); derivative 0.2 inside |x| < 2.5.
  hardSigmoid: { value: (x) => Math.min(1, Math.max(0, 0.2 * x + 0.5)), derivative: (x) => (Math.abs(x) < 2.5 ? 0.2 : 0) },
  tanh: { value: Math.tanh, derivative: (_x, y) => 1 - y * y },
  // biome-ignore lint/complexity/useMathMinMax: NaN → 0 as in the backends' relu (Math.max gives NaN).
  relu: { value: (x) => (x > 0 ? x : 0), derivative: (x) => (x > 0 ? 1 : 0) },
  linear: { value: (x) => x, derivative: () => 1 },
};

/**
 * A GRU, LSTM or Elman transition in PyTorch layout, whatever convention the cell came from (the
 * cell converts flax and Keras weights on construction):
 *
 * - `gru` (gate order r, z, n; `G = 3H`, `D = H`):
 *   `r = ra(W_ir x + b_ir + W_hr h + b_hr)`, `z` likewise,
 *   `n = act(W_in x + b_in + r ⊙ (W_hn h + b_hn))` (`resetAfter`) or
 *   `n = act(W_in x + b_in + W_hn (r ⊙ h) + b_hn)` (not `resetAfter`), `h' = (1 − z) ⊙ n + z ⊙ h`.
 * - `lstm` (gate order i, f, g, o; `G = 4H`; state `[h, c]`, `D = 2H`):
 *   `i, f, o = ra(·)`, `g = act(·)` with `· = W_i* x + b_i* + W_h* h + b_h*`,
 *   `c' = f ⊙ c + i ⊙ g`, `h' = o ⊙ act(c')`.
 * - `elman` (`G = H`, `D = H`): `h' = act(W_ih x + b_ih + W_hh h + b_hh)`.
 *
 * Weights are row-major float64 host arrays; a backend computing in float32 rounds them to float32
 * first, exactly as it would store them for its ops.
 */
export interface RnnProgram {
  readonly kind: 'gru' | 'lstm' | 'elman';
  /** Where the weights came from (`'torch'`, `'flax'`, `'keras'`, …): informational only. */
  readonly convention: string;
  readonly inputSize: number;
  readonly hiddenSize: number;
  /** `D`: `H`, or `2H` for the LSTM. */
  readonly stateSize: number;
  /** Candidate (GRU `n`, LSTM `g` and `act(c')`) or Elman activation. */
  readonly activation: ProgramActivation;
  /** Gate activation (GRU `r`, `z`; LSTM `i`, `f`, `o`); the Elman cell has none. */
  readonly recurrentActivation?: ProgramActivation;
  /** GRU only: where the reset gate applies (see above). */
  readonly resetAfter?: boolean;
  /** `W_ih` `[G, I]`. */
  readonly weightIh: Float64Array;
  /** `W_hh` `[G, H]`. */
  readonly weightHh: Float64Array;
  /** `b_ih` `[G]`. */
  readonly biasIh: Float64Array;
  /** `b_hh` `[G]`. */
  readonly biasHh: Float64Array;
}

/**
 * The autoregressive cell over an RNN (`"type": "ar"`: the AR GRU of the ELK paper), packed state
 * `s = [x, h]` (`D = I + D_inner`), one driver `u_t` per emitted number:
 * `h' = inner(h, input = x)`, `o = h'[0..H) (+ x, broadcast when I = 1, with skip)`,
 * `[μ, ℓ] = W o + b` (`W` `[2I, H]`), `x' = μ + softplus(ℓ) ⊙ u_t`.
 */
export interface ArProgram {
  readonly kind: 'ar';
  readonly convention: string;
  /** `I`: the emitted value's size, also the inner cell's input size and the drivers' width. */
  readonly inputSize: number;
  /** `D = I + inner.stateSize`. */
  readonly stateSize: number;
  readonly inner: RnnProgram;
  readonly readout: {
    /** `[2I, H]`: rows 0..I−1 give μ, rows I..2I−1 give ℓ. */
    readonly weight: Float64Array;
    /** `[2I]`. */
    readonly bias: Float64Array;
    readonly skip: boolean;
  };
  /** How the driver enters: `x' = μ + softplus(ℓ) ⊙ u`. */
  readonly noise: 'softplus';
}

/** Every program a cell may describe itself with (more kinds join as backends get kernels for them). */
export type CellProgram = RnnProgram | ArProgram;

/**
 * A fused linearisation in progress, around the states `s` (`[B, T, D]`) entered from `s_0`:
 * `A_t = ∂f/∂s(s_{t−1}, u_t)` and the defects `d_t = f(s_{t−1}, u_t) − s_t`, written in place step
 * range by step range, with the reductions the solvers read computed in the same pass. The caller
 * advances it (in slices, to serve the event loop on the JavaScript thread) and owns both tensors.
 */
export interface FusedLinearization {
  /** `[B, T, D, D]` (dense) or `[B, T, D]` (diagonal), filled as steps are done. */
  readonly jacobian: Tensor;
  /** `[B, T, D]`, filled as steps are done. */
  readonly defect: Tensor;
  /** Linearises the next `count` steps of every batch entry (fewer at the end); returns the steps done so far. */
  advance(count: number): number;
  /**
   * Once every step is done: `max_t ‖d_t‖∞` (NaN when any defect is NaN) — the true residual of
   * `s` — and `Σ_t ‖d_t‖²` when asked for (ELK's merit is half of it), else NaN.
   */
  finish(): { readonly residual: Promise<number>; readonly sumSquares: Promise<number> };
}

/** What a fused linearisation is asked for. */
export interface FusedLinearizeOptions {
  readonly kind: JacobianKind;
  /** Also compute `Σ‖d_t‖²`. */
  readonly sumSquares?: boolean;
}

/**
 * A fused adjoint (reverse) sweep in progress: the exact gradient of `L = Σ_t ḡ_t · s_t` at a
 * trajectory (ALGORITHMS.md §9). From the last step backwards, `μ_t = ḡ_t + A_{t+1}ᵀ μ_{t+1}`, and
 * each step's vector–Jacobian products add their share of the parameters' gradients and give the
 * input's. The caller advances it in slices (to serve the event loop) and owns what `finish` returns.
 */
export interface FusedAdjoint {
  /** Sweeps the next `count` steps of every batch entry, backwards from the last (fewer at the start); returns the steps done so far. */
  advance(count: number): number;
  /** Once every step is done: the gradients, as new tensors of the binding's dtype that the caller owns. */
  finish(): FusedGradients;
  /** Frees the sweep's buffers, and the gradients if `finish` has not handed them over. A second call does nothing. */
  dispose(): void;
}

/** What a {@link FusedAdjoint} gives. */
export interface FusedGradients {
  /**
   * `∂L/∂θ` in the order, shapes and layout of core's `programVjp(program).parameters` — for an
   * {@link RnnProgram}, `W_ih` `[G, I]`, `W_hh` `[G, H]`, `b_ih` `[G]`, `b_hh` `[G]`.
   */
  readonly parameters: readonly Tensor[];
  /** `∂L/∂u_t` `[B, T, I]`, when asked for (else `null`). */
  readonly inputs: Tensor | null;
  /** `∂L/∂s_0 = A_1ᵀ μ_1`, `[B, D]`. */
  readonly initialState: Tensor;
}

/** What a fused adjoint is asked for. */
export interface FusedAdjointOptions {
  /** Also compute `∂L/∂u`. */
  readonly inputs: boolean;
}

/**
 * A {@link CellProgram} bound to a backend and to one sequence of inputs (its input projection done
 * once). Every result equals the op-by-op {@link BoundCell}'s up to rounding. It owns what it
 * uploaded; `dispose` frees it.
 */
export interface FusedCell {
  /** Sequential evaluation from `init` `[B, D]`, advanced in slices by the caller. */
  rollout(init: Tensor): Rollout;
  /** Starts a linearisation around `states` `[B, T, D]` entered from `init` `[B, D]`; nothing is computed until it advances. */
  linearize(states: Tensor, init: Tensor, options: FusedLinearizeOptions): FusedLinearization;
  /** `f(prev_t, u_t)` for every step at once: `prev` `[B, T, D]` → `[B, T, D]` (one Jacobi sweep). */
  apply(prev: Tensor): Tensor;
  /**
   * Optional: starts the adjoint sweep at the trajectory whose step `t` is entered from
   * `prev[:, t]` (`[B, T, D]`: `s_0, s_1, …, s_{T−1}`), for the cotangent `ḡ` (`[B, T, D]`, on
   * `s_1..s_T`); nothing is computed until it advances. It reads the binding's inputs (for
   * `∂L/∂W_ih`), which must still be alive. Core's host sweep serves bindings without it.
   */
  adjoint?(prev: Tensor, cotangent: Tensor, options: FusedAdjointOptions): FusedAdjoint;
  dispose(): void;
}

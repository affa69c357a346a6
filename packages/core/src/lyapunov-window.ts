/** Most steps of the window the Lyapunov exponent is estimated on (`diagnostics.lyapunov`). */
export const LYAPUNOV_WINDOW = 2048;

/** Most sequences of a batch the estimate looks at (it reports the largest exponent among them). */
const LYAPUNOV_ROWS = 4;

/**
 * Most entries of the window's dense Jacobians (`rows · W · D²`, 16 MiB in float64), which bounds
 * the estimate's memory and its cost (a dense linearisation of the window): the window shrinks for
 * large states — 512 steps at D = 64 for one sequence, 128 for a batch of 4 — and below 8 steps there is no estimate. Long windows matter
 * for discretised ODEs, whose exponent per step is small (Lorenz-96 at dt = 0.01: ~0.01 per step,
 * resolved from a few standard errors only over ~10³ steps); they have small states.
 */
const LYAPUNOV_ELEMENTS = 2 ** 21;

/**
 * The window of a Lyapunov estimate for a `[B, T, D]` trajectory: how many batch rows and steps,
 * or undefined when not even 8 steps of dense Jacobians fit {@link LYAPUNOV_ELEMENTS}.
 */
export function lyapunovWindow(batch: number, steps: number, stateSize: number): { rows: number; steps: number } | undefined {
  const rows = Math.min(batch, LYAPUNOV_ROWS);
  const w = Math.min(steps, LYAPUNOV_WINDOW, Math.floor(LYAPUNOV_ELEMENTS / (rows * stateSize * stateSize)));
  return w < 8 ? undefined : { rows, steps: w };
}

/**
 * `bindProgram` of the WebAssembly backend: uploads a program's weights in the layouts the kernels
 * stream (assembly/kernels.ts), projects the inputs once with the SIMD GEMM kernel, and returns a
 * `FusedCell` whose rollout, linearisation and sweep are single kernel calls.
 */
import {
  type BindContext,
  type RnnProgram,
  type FusedAdjoint,
  type FusedCell,
  type FusedLinearization,
  type FusedLinearizeOptions,
  InvalidArgumentError,
  type ProgramActivation,
  type Tensor,
  adjointRun,
  checkAdjoint,
  checkBindContext,
  checkLinearize,
  checkProgram,
  checkShape,
  describeValue,
  driveBias,
  linearizationRun,
  transpose,
  windowEnd,
} from '@pelk/core';
import type { KernelCall } from './threads.js';
import type { WasmBackend } from './wasm-backend.js';

/** Activation codes of the kernels. */
const ACTIVATION_CODE: Readonly<Record<ProgramActivation, number>> = { sigmoid: 0, hardSigmoid: 1, tanh: 2, relu: 3, linear: 4 };
const KIND_CODE = { gru: 0, lstm: 1, elman: 2 } as const;
const GATES = { gru: 3, lstm: 4, elman: 1 } as const;
/** f64 slots of a kernel descriptor (assembly/kernels.ts, `Desc`). */
const DESCRIPTOR_SLOTS = 13;
/** Rows (steps) below which a fused kernel runs on one thread. */
const PARALLEL_ROWS = 256;
/** Bytes of one window of the adjoint sweep's tape and gate cotangents (all batch entries): they stay in cache between its passes. */
const ADJOINT_WINDOW_BYTES = 8 * 2 ** 20;

/** Binds a GRU, LSTM or Elman program to the backend and one sequence of inputs. */
export function bindWasmProgram(backend: WasmBackend, program: RnnProgram, context: BindContext): FusedCell {
  checkProgram(program);
  checkBindContext(context, program.inputSize, program.kind);
  const { batch: B, steps: T, dtype } = context;
  const H = program.hiddenSize;
  const I = program.inputSize;
  const G = GATES[program.kind] * H;
  const D = program.stateSize;
  const f64 = dtype === 'float64';
  const owned: Tensor[] = [];
  const upload = (data: Float64Array | number[], shape: number[], as = dtype): Tensor => {
    const t = backend.fromArray(data, shape, as);
    owned.push(t);
    return t;
  };
  const at = (t: Tensor, field?: string) => backend.offsetOf(t, field);
  // A disposed or foreign input tensor is refused before anything is allocated.
  if (context.inputs) at(context.inputs, 'context.inputs');
  try {
    const Whh = program.weightHh; // [G, H]
    const diag = new Float64Array(G);
    for (let g = 0; g < G / H; g++) for (let i = 0; i < H; i++) diag[g * H + i] = Whh[(g * H + i) * H + i];
    const resetAfter = program.resetAfter ?? true;
    // E (GRU, resetAfter false) for diagonal Jacobians, and the scratch of one step, sized by kind:
    // GRU 11H (+ H² for W_hn diag(q) W_hr when resetAfter is false), LSTM 4H, Elman H.
    const gruMixed = program.kind === 'gru' && !resetAfter;
    const E = new Float64Array(gruMixed ? H * H : 1);
    if (gruMixed) {
      for (let i = 0; i < H; i++) for (let j = 0; j < H; j++) E[i * H + j] = Whh[(2 * H + i) * H + j] * Whh[j * H + i];
    }
    const whhT = upload(transpose(Whh, G, H), [H, G]);
    const whh = upload(Whh, [G, H]);
    const bHn = upload(program.kind === 'gru' ? program.biasHh.slice(2 * H) : new Float64Array(H), [H]);
    const diagT = upload(diag, [G]);
    const eT = upload(E, [E.length]);
    // One descriptor and one scratch area per thread (identical but for the scratch).
    const W = backend.threads;
    const stepScratch = program.kind === 'gru' ? 11 * H + (gruMixed ? H * H : 0) : program.kind === 'lstm' ? 4 * H : H;
    const scratchSize = stepScratch + D;
    const scratch = backend.empty([W * scratchSize], dtype);
    owned.push(scratch);
    const elementBytes = dtype === 'float64' ? 8 : 4;
    const descriptor = (w: number): number[] => [
      KIND_CODE[program.kind],
      H,
      resetAfter ? 1 : 0,
      ACTIVATION_CODE[program.activation],
      ACTIVATION_CODE[program.recurrentActivation ?? 'sigmoid'],
      at(whhT),
      at(whh),
      at(bHn),
      at(diagT),
      at(eT),
      at(scratch) + w * scratchSize * elementBytes,
      G,
      at(scratch) + (w * scratchSize + stepScratch) * elementBytes,
    ];
    const desc = upload(Array.from({ length: W }, (_, w) => descriptor(w)).flat(), [W, DESCRIPTOR_SLOTS], 'float64');
    // The drive rows W_ih u_t + b of every step, by the SIMD GEMM kernel (rows split across the
    // threads); its weights are then freed.
    const drive = backend.empty([B, T, G], dtype);
    owned.push(drive);
    {
      const weights: Tensor[] = [];
      try {
        const wihT = backend.fromArray(transpose(program.weightIh, G, I), [I, G], dtype);
        weights.push(wihT);
        const bias = backend.fromArray(driveBias(program), [G], dtype);
        weights.push(bias);
        const x = context.inputs ? at(context.inputs) : at(bias); // I = 0 reads no input
        const e = elementBytes;
        backend.run(
          backend.shares(B * T, PARALLEL_ROWS, 1).map(([r0, r1]) => ({
            fn: f64 ? 'project64' : 'project32',
            args: [at(wihT), at(bias), x + r0 * I * e, at(drive) + r0 * G * e, r1 - r0, I, G],
          })),
        );
      } finally {
        backend.dispose(weights);
      }
    }
    // W_ih as bound, for the adjoint's input gradients (small: G·I values).
    const weightIh = I > 0 ? upload(program.weightIh, [G, I]) : null;
    return makeFusedCell(backend, program, { B, T, D, G, dtype: f64 }, { desc, drive, inputs: context.inputs, weightIh }, owned);
  } catch (err) {
    backend.dispose(owned);
    throw err;
  }
}

interface Sizes {
  readonly B: number;
  readonly T: number;
  readonly D: number;
  readonly G: number;
  /** float64 kernels (else float32). */
  readonly dtype: boolean;
}

/**
 * What a bound cell's kernels read: the descriptors (one per thread), the drive rows, `W_ih` `[G, I]`
 * (`null` when `I = 0`), and the inputs the drive came from — the caller's tensor, which the
 * adjoint reads for `∂L/∂W_ih` (refused with a typed error once disposed).
 */
interface Bound {
  readonly desc: Tensor;
  readonly drive: Tensor;
  readonly weightIh: Tensor | null;
  readonly inputs: Tensor | null;
}

function makeFusedCell(backend: WasmBackend, program: RnnProgram, sizes: Sizes, bound: Bound, owned: Tensor[]): FusedCell {
  const { B, T, D, G, dtype: f64 } = sizes;
  const { desc, drive } = bound;
  const kind = program.kind;
  const dt = f64 ? 'float64' : 'float32';
  const sfx = f64 ? '64' : '32';
  const e = f64 ? 8 : 4;
  const at = (t: Tensor, field?: string) => backend.offsetOf(t, field);
  /** Thread `w`'s descriptor. */
  const d = (w: number) => at(desc) + w * DESCRIPTOR_SLOTS * 8;
  let disposed = false;
  const alive = (): void => {
    if (disposed) throw new InvalidArgumentError(`${kind} fused cell`, 'a cell that is still bound', 'a disposed one');
  };
  const same = (t: Tensor, field: string): void => {
    if (t.dtype !== dt) throw new InvalidArgumentError(`${field}.dtype`, `'${dt}'`, describeValue(t.dtype));
  };
  return {
    rollout(init) {
      alive();
      checkShape(init, 'init', [B, D]);
      same(init, 'init');
      at(init, 'init'); // a live tensor of this backend, before allocating
      const out = backend.empty([B, T, D], dt);
      let done = 0;
      return {
        states: out,
        advance(count) {
          alive();
          const end = windowEnd(done, count, T);
          if (end > done) {
            // Sequential in time; batch entries split across the threads.
            const calls = backend.shares(B, 2, 1).map(([b0, b1], w) => ({
              fn: `rollout${sfx}`,
              args: [d(w), at(drive) + b0 * T * G * e, at(init, 'init') + b0 * D * e, at(out) + b0 * T * D * e, b1 - b0, T, done, end],
            }));
            backend.run(calls);
          }
          done = end;
          return done;
        },
      };
    },
    linearize(states: Tensor, init: Tensor, options: FusedLinearizeOptions): FusedLinearization {
      alive();
      const dense = checkLinearize(states, init, options, [B, T, D]);
      same(states, 'states');
      const jacSize = dense ? D * D : D;
      at(states, 'states'); // live tensors of this backend, before allocating
      at(init, 'init');
      const jacobian = backend.empty(dense ? [B, T, D, D] : [B, T, D], dt);
      const defect = backend.empty([B, T, D], dt);
      const fn = `linearize${sfx}`;
      // One call: batch entries [b0, b1), steps [j0, j1) of each. Offsets are taken per window, so a
      // tensor disposed between windows is refused rather than written through.
      const call = (w: number, b0: number, b1: number, j0: number, j1: number): KernelCall => {
        const [s, s0, x, jac, def] = [at(states, 'states'), at(init, 'init'), at(drive), at(jacobian, 'jacobian'), at(defect, 'defect')];
        return {
        fn,
        args: [
          d(w),
          x + b0 * T * G * e,
          s + (b0 * T + j0) * D * e,
          s0 + b0 * D * e,
          jac + (b0 * T + j0) * jacSize * e,
          def + (b0 * T + j0) * D * e,
          b1 - b0,
          j1 - j0,
          T,
          T,
          j0,
          dense ? 1 : 0,
          backend.slot(w),
        ],
        };
      };
      const slots = new Float64Array(backend.heap.memory.buffer, backend.slot(0), 2 * backend.threads);
      return linearizationRun(jacobian, defect, T, options, alive, (from, to) => {
        // Long windows split in time (all entries per call), short ones by batch entry.
        const calls =
          to - from >= PARALLEL_ROWS
            ? backend.shares(to - from, PARALLEL_ROWS, 1).map(([j0, j1], w) => call(w, 0, B, from + j0, from + j1))
            : backend.shares(B, 2, 1).map(([b0, b1], w) => call(w, b0, b1, from, to));
        backend.run(calls);
        let residual = 0;
        let sumSquares = 0;
        for (let w = 0; w < calls.length; w++) {
          const r = slots[2 * w];
          residual = Number.isNaN(residual) || Number.isNaN(r) ? Number.NaN : Math.max(residual, r);
          sumSquares += slots[2 * w + 1];
        }
        return { residual, sumSquares };
      });
    },
    apply(prev) {
      alive();
      checkShape(prev, 'prev', [B, T, D]);
      same(prev, 'prev');
      const p = at(prev, 'prev'); // before allocating
      const out = backend.empty([B, T, D], dt);
      backend.run(
        backend.shares(B * T, PARALLEL_ROWS, 1).map(([r0, r1], w) => ({
          fn: `sweep${sfx}`,
          args: [d(w), at(drive) + r0 * G * e, p + r0 * D * e, at(out) + r0 * D * e, r1 - r0],
        })),
      );
      return out;
    },
    adjoint(prev, cotangent, options) {
      alive();
      const inputs = checkAdjoint(prev, cotangent, options, [B, T, D], dt) && program.inputSize > 0;
      at(prev, 'prev'); // live tensors of this backend, before allocating
      at(cotangent, 'cotangent');
      if (bound.inputs) at(bound.inputs, "context.inputs (the binding's inputs)");
      return wasmAdjoint(backend, program, sizes, bound, d, alive, { prev, cotangent, inputs });
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      backend.dispose(owned);
    },
  };
}

/**
 * @internal The adjoint sweep's layout for a program: `K` tape coefficients per step
 * (assembly/kernels.ts: GRU 5H with resetAfter, else 6H; LSTM 6H; Elman H), whether the input
 * pre-activations' cotangent is kept apart from the recurrent ones' (only the GRU with resetAfter
 * has them differ), and the steps of one window.
 */
export function adjointWindow(program: RnnProgram, B: number, T: number, f64: boolean): { K: number; separate: boolean; steps: number } {
  const H = program.hiddenSize;
  const G = GATES[program.kind] * H;
  const resetAfter = program.resetAfter ?? true;
  const K = program.kind === 'gru' ? (resetAfter ? 5 * H : 6 * H) : program.kind === 'lstm' ? 6 * H : H;
  const separate = program.kind === 'gru' && resetAfter;
  const bytesPerStep = B * (K + (separate ? 2 : 1) * G) * (f64 ? 8 : 4);
  return { K, separate, steps: Math.max(1, Math.min(T, Math.floor(ADJOINT_WINDOW_BYTES / bytesPerStep))) };
}

/**
 * The adjoint sweep of a bound RNN program (assembly/kernels.ts, `adjointTape`…): windows of steps
 * from the last backwards, each one a tape pass (threads split steps), the reverse recurrence
 * (threads split batch entries), and the parameter and input gradients of its steps (threads split
 * gate rows, then steps). Gradients accumulate in the binding's dtype.
 */
function wasmAdjoint(
  backend: WasmBackend,
  program: RnnProgram,
  { B, T, D, G, dtype: f64 }: Sizes,
  bound: Bound,
  d: (w: number) => number,
  alive: () => void,
  request: { prev: Tensor; cotangent: Tensor; inputs: boolean },
): FusedAdjoint {
  const dt = f64 ? 'float64' : 'float32';
  const sfx = f64 ? '64' : '32';
  const e = f64 ? 8 : 4;
  const at = (t: Tensor, field?: string) => backend.offsetOf(t, field);
  const H = program.hiddenSize;
  const I = program.inputSize;
  const resetAfter = program.resetAfter ?? true;
  const { K, separate, steps: Wn } = adjointWindow(program, B, T, f64);
  const owned: Tensor[] = [];
  const keep = <X extends Tensor>(t: X): X => {
    owned.push(t);
    return t;
  };
  let handed: Tensor[] = [];
  try {
    const tape = keep(backend.empty([B, Wn, K], dt));
    const dgh = keep(backend.empty([B, Wn, G], dt));
    const dgi = separate ? keep(backend.empty([B, Wn, G], dt)) : dgh;
    const carry = keep(backend.fill([B, D], 0, dt));
    const parameters = [keep(backend.fill([G, I], 0, dt)), keep(backend.fill([G, H], 0, dt)), keep(backend.fill([G], 0, dt)), keep(backend.fill([G], 0, dt))];
    const du = request.inputs ? keep(backend.empty([B, T, I], dt)) : null;
    const wih = request.inputs ? bound.weightIh : null;
    const scratch = [tape, dgh, dgi];
    const { prev, cotangent } = request;
    // The GRU that resets first takes its candidate block of ∂L/∂W_hh from r ⊙ h (on the tape).
    const hnRows = program.kind === 'gru' && !resetAfter ? 2 * H : G;
    const [dWih, dWhh, dBih, dBhh] = parameters;
    /** Calls of `outerAccumulate` over gate rows `[g0, g1)`, split across the threads. */
    const outer = (g0: number, g1: number, A: number, X: number, ldx: number, K2: number, n: number, xBatch: number, out: Tensor, bias: Tensor) =>
      backend.shares(g1 - g0, 32, 2).map(([a, b]) => ({
        fn: `outerAccumulate${sfx}`,
        args: [A, G, g0 + a, g0 + b, X, ldx, K2, B, n, Wn * G, xBatch, at(out), at(bias)],
      }));
    const window = (lo: number, n: number): void => {
      // Offsets per window: a tensor disposed meanwhile is refused rather than written through.
      const [x, p, g, tp, c, h, i] = [at(bound.drive), at(prev, 'prev'), at(cotangent, 'cotangent'), at(tape), at(carry), at(dgh), at(dgi)];
      backend.run(
        backend.shares(n, 64, 1).map(([j0, j1], w) => ({
          fn: `adjointTape${sfx}`,
          args: [d(w), x + (lo + j0) * G * e, p + (lo + j0) * D * e, tp + j0 * K * e, B, j1 - j0, T, Wn],
        })),
      );
      backend.run(
        backend.shares(B, 2, 1).map(([b0, b1], w) => ({
          fn: `adjointSweep${sfx}`,
          args: [d(w), tp + b0 * Wn * K * e, g + (b0 * T + lo) * D * e, c + b0 * D * e, h + b0 * Wn * G * e, separate ? i + b0 * Wn * G * e : 0, b1 - b0, n, T, Wn],
        })),
      );
      // ∂L/∂W_hh from the states entering each step (and r ⊙ h), and ∂L/∂b_hh.
      backend.run(outer(0, hnRows, h, p + lo * D * e, D, H, n, T * D, dWhh, dBhh));
      if (hnRows < G) backend.run(outer(hnRows, G, h, tp + 5 * H * e, K, H, n, Wn * K, dWhh, dBhh));
      // ∂L/∂W_ih and ∂L/∂b_ih (the bias alone when there is no input), then ∂L/∂u.
      const u = bound.inputs && I > 0 ? at(bound.inputs, "context.inputs (the binding's inputs)") + lo * I * e : 0;
      backend.run(outer(0, G, i, u, I, I, n, T * I, dWih, dBih));
      if (du && wih) {
        const [o, wt] = [at(du), at(wih)];
        backend.run(
          backend.shares(n, 64, 1).map(([j0, j1]) => ({
            fn: `inputGrad${sfx}`,
            args: [wt, i + j0 * G * e, o + (lo + j0) * I * e, B, j1 - j0, Wn, T, G, I],
          })),
        );
      }
    };
    return adjointRun(T, alive, {
      sweepSteps(from, to) {
        for (let hi = to; hi > from; hi -= Wn) {
          const lo = Math.max(from, hi - Wn);
          window(lo, hi - lo);
        }
      },
      gradients() {
        handed = [...parameters, carry, ...(du ? [du] : [])];
        // The scratch is not needed any more: freed now, not at dispose.
        backend.dispose(owned.filter((t) => scratch.includes(t)));
        owned.splice(0, owned.length, ...owned.filter((t) => !scratch.includes(t)));
        return { parameters, inputs: du, initialState: carry };
      },
      release() {
        backend.dispose(owned.filter((t) => !handed.includes(t)));
      },
    });
  } catch (err) {
    backend.dispose(owned);
    throw err;
  }
}

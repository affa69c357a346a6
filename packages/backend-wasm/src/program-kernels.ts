/**
 * `bindProgram` of the WebAssembly backend: uploads a program's weights in the layouts the kernels
 * stream (assembly/kernels.ts), projects the inputs once with the SIMD GEMM kernel, and returns a
 * `FusedCell` whose rollout, linearisation and sweep are single kernel calls.
 */
import {
  type BindContext,
  type RnnProgram,
  type FusedCell,
  type FusedLinearization,
  type FusedLinearizeOptions,
  InvalidArgumentError,
  type ProgramActivation,
  type Tensor,
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
    return makeFusedCell(backend, program.kind, { B, T, D, G, dtype: f64 }, { desc, drive }, owned);
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

function makeFusedCell(
  backend: WasmBackend,
  kind: string,
  { B, T, D, G, dtype: f64 }: Sizes,
  { desc, drive }: { desc: Tensor; drive: Tensor },
  owned: Tensor[],
): FusedCell {
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
    dispose() {
      if (disposed) return;
      disposed = true;
      backend.dispose(owned);
    },
  };
}

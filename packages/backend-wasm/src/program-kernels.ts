/**
 * `bindProgram` of the WebAssembly backend: uploads a program's weights in the layouts the kernels
 * stream (assembly/kernels.ts), projects the inputs once with the SIMD GEMM kernel, and returns a
 * `FusedCell` whose rollout, linearisation and sweep are single kernel calls.
 */
import {
  type BindContext,
  type CellProgram,
  type FusedCell,
  type FusedLinearizeOptions,
  InvalidArgumentError,
  type ProgramActivation,
  ShapeError,
  type Tensor,
  checkBindContext,
  checkProgram,
  describeValue,
  driveBias,
} from '@pelk/core';
import type { WasmBackend } from './wasm-backend.js';

/** Activation codes of the kernels. */
const ACTIVATION_CODE: Readonly<Record<ProgramActivation, number>> = { sigmoid: 0, hardSigmoid: 1, tanh: 2, relu: 3, linear: 4 };
const KIND_CODE = { gru: 0, lstm: 1, elman: 2 } as const;
const GATES = { gru: 3, lstm: 4, elman: 1 } as const;

function transpose(a: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

const text = (shape: readonly number[] | undefined) => (shape ? `shape [${shape.join(', ')}]` : 'no tensor');

function checkShape(t: Tensor, field: string, expected: readonly number[]): void {
  if (!t?.shape || t.shape.length !== expected.length || t.shape.some((d, i) => d !== expected[i])) {
    throw new ShapeError(field, text(expected), text(t?.shape));
  }
}

/** Binds a GRU, LSTM or Elman program to the backend and one sequence of inputs. */
export function bindWasmProgram(backend: WasmBackend, program: CellProgram, context: BindContext): FusedCell {
  checkProgram(program);
  checkBindContext(context, program.inputSize, program.kind);
  const { batch: B, steps: T, dtype } = context;
  const H = program.hiddenSize;
  const I = program.inputSize;
  const G = GATES[program.kind] * H;
  const D = program.stateSize;
  const k = backend.kernels;
  const f64 = dtype === 'float64';
  const owned: Tensor[] = [];
  const upload = (data: Float64Array | number[], shape: number[], as = dtype): Tensor => {
    const t = backend.fromArray(data, shape, as);
    owned.push(t);
    return t;
  };
  const at = (t: Tensor) => backend.offsetOf(t);
  try {
    const W = program.weightHh; // [G, H]
    const diag = new Float64Array(G);
    for (let g = 0; g < G / H; g++) for (let i = 0; i < H; i++) diag[g * H + i] = W[(g * H + i) * H + i];
    const resetAfter = program.resetAfter ?? true;
    const E = new Float64Array(H * H);
    if (program.kind === 'gru' && !resetAfter) {
      for (let i = 0; i < H; i++) for (let j = 0; j < H; j++) E[i * H + j] = W[(2 * H + i) * H + j] * W[j * H + i];
    }
    const whhT = upload(transpose(W, G, H), [H, G]);
    const whh = upload(W, [G, H]);
    const bHn = upload(program.kind === 'gru' ? program.biasHh.slice(2 * H) : new Float64Array(H), [H]);
    const diagT = upload(diag, [G]);
    const eT = upload(E, [H, H]);
    const scratch = backend.empty([8 * G + H * H], dtype);
    owned.push(scratch);
    const desc = upload(
      [
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
        at(scratch),
        G,
      ],
      [12],
      'float64',
    );
    const result = upload([0, 0], [2], 'float64');
    // The drive rows W_ih u_t + b of every step, by the SIMD GEMM kernel; its weights are then freed.
    const drive = backend.empty([B, T, G], dtype);
    owned.push(drive);
    {
      const wihT = backend.fromArray(transpose(program.weightIh, G, I), [I, G], dtype);
      const bias = backend.fromArray(driveBias(program), [G], dtype);
      try {
        const x = context.inputs ? at(context.inputs) : at(bias); // I = 0 reads no input
        (f64 ? k.project64 : k.project32)(at(wihT), at(bias), x, at(drive), B * T, I, G);
      } finally {
        backend.dispose([wihT, bias]);
      }
    }
    return makeFusedCell(backend, program.kind, { B, T, D, G, dtype: f64 }, { desc, drive, result }, owned);
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
  { B, T, D, dtype: f64 }: Sizes,
  { desc, drive, result }: { desc: Tensor; drive: Tensor; result: Tensor },
  owned: Tensor[],
): FusedCell {
  const k = backend.kernels;
  const dt = f64 ? 'float64' : 'float32';
  const at = (t: Tensor, field?: string) => backend.offsetOf(t, field);
  const d = at(desc);
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
      const out = backend.empty([B, T, D], dt);
      let done = 0;
      return {
        states: out,
        advance(count) {
          alive();
          const end = Math.min(T, done + Math.max(0, Math.floor(count)));
          if (end > done) (f64 ? k.rollout64 : k.rollout32)(d, at(drive), at(init, 'init'), at(out), B, T, done, end);
          done = end;
          return done;
        },
      };
    },
    linearize(states: Tensor, entering: Tensor, start: number, options: FusedLinearizeOptions) {
      alive();
      const n = states?.shape?.[1] ?? 0;
      const kindOf = options?.kind;
      if (kindOf !== 'dense' && kindOf !== 'diagonal') {
        throw new InvalidArgumentError('options.kind', "'dense' or 'diagonal'", describeValue(kindOf));
      }
      if (!Number.isInteger(start) || start < 0 || start + n > T) {
        throw new InvalidArgumentError('start', `an integer in [0, ${T - n}] (states cover ${n} steps)`, describeValue(start));
      }
      checkShape(states, 'states', [B, n, D]);
      checkShape(entering, 'entering', [B, D]);
      same(states, 'states');
      same(entering, 'entering');
      const dense = kindOf === 'dense';
      const jacobian = backend.empty(dense ? [B, n, D, D] : [B, n, D], dt);
      const defect = backend.empty([B, n, D], dt);
      (f64 ? k.linearize64 : k.linearize32)(d, at(drive), at(states), at(entering), at(jacobian), at(defect), B, n, T, start, dense ? 1 : 0, at(result));
      const r = backend.hostData(result);
      return {
        jacobian,
        defect,
        residual: Promise.resolve(r[0]),
        sumSquares: Promise.resolve(options.sumSquares ? r[1] : Number.NaN),
      };
    },
    apply(prev) {
      alive();
      checkShape(prev, 'prev', [B, T, D]);
      same(prev, 'prev');
      const out = backend.empty([B, T, D], dt);
      (f64 ? k.sweep64 : k.sweep32)(d, at(drive), at(prev, 'prev'), at(out), B * T);
      return out;
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      backend.dispose(owned);
    },
  };
}

/**
 * Gradients by a model spec's own weight names. `grad` differentiates a cell through its program,
 * whose weights are in PyTorch layout (`weightIh`, `weightHh`, `biasIh`, `biasHh`); a cell read
 * from flax or Keras weights was converted into that layout by transposes, gate reorders and bias
 * splits — each program weight is one spec weight or a structural zero. The map between the two is
 * read off by building the cell once from a spec whose weights are replaced by their own (1-based)
 * positions: every program entry then holds the position it came from, and the gradient of each
 * spec weight is the sum of the program gradients gathered there.
 */
import { type CellProgram, type DType, type HostVjp, type NamedGradient, type ParameterInfo, programVjp, shapeSize } from '@pelk/core';
import { readCellSpec } from './spec.js';
import type { CellSpec, ModelCell } from './types.js';

/** One weight of a spec: its name (path in the spec, `weights.` dropped) and shape. */
interface SpecWeight extends ParameterInfo {
  /** The path of the weight inside the spec object. */
  readonly path: readonly string[];
  /** Position of its first element in the flattened list of all weights. */
  readonly offset: number;
}

/** Whether `x` is a (nested) array of numbers. */
function isNumeric(x: unknown): boolean {
  return Array.isArray(x) && x.length > 0 && (typeof x[0] === 'number' || isNumeric(x[0]));
}

function shapeOf(x: unknown): number[] {
  const shape: number[] = [];
  let v = x;
  while (Array.isArray(v)) {
    shape.push(v.length);
    v = v[0];
  }
  return shape;
}

/** Every numeric array of a spec (its weights), in a fixed order. */
function specWeights(spec: unknown): SpecWeight[] {
  const out: SpecWeight[] = [];
  let offset = 0;
  const walk = (value: unknown, path: string[]): void => {
    if (isNumeric(value)) {
      const shape = shapeOf(value);
      const name = path.filter((p) => p !== 'weights').join('.');
      out.push({ name, shape, path, offset });
      offset += shapeSize(shape);
      return;
    }
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      for (const [key, v] of Object.entries(value)) walk(v, [...path, key]);
    }
  };
  walk(spec, []);
  return out;
}

/** A copy of `spec` with every weight element replaced by its 1-based position. */
function markedSpec(spec: CellSpec, weights: readonly SpecWeight[]): unknown {
  const copy = structuredClone(spec) as unknown as Record<string, unknown>;
  for (const w of weights) {
    let holder = copy as Record<string, unknown>;
    for (const key of w.path.slice(0, -1)) holder = holder[key] as Record<string, unknown>;
    let next = w.offset + 1;
    const mark = (v: unknown): unknown => (Array.isArray(v) ? v.map(mark) : next++);
    holder[w.path[w.path.length - 1]] = mark(holder[w.path[w.path.length - 1]]);
  }
  return copy;
}

/** The program's weights in the order `programVjp` accumulates them. */
function programWeights(p: CellProgram): Float64Array[] {
  const rnn = (q: Extract<CellProgram, { kind: 'gru' | 'lstm' | 'elman' }>) => [q.weightIh, q.weightHh, q.biasIh, q.biasHh];
  return p.kind === 'ar' ? [...rnn(p.inner), p.readout.weight, p.readout.bias] : rnn(p);
}

/**
 * The host vector–Jacobian products of a cell with a program, reporting gradients by the weight
 * names of the cell's spec (`weight_hh_l0`, `recurrentKernel`, `hn.kernel`, `inner.weight_ih_l0`,
 * `readout.weight`, …) in the spec's shapes.
 */
export function specVjp(cell: ModelCell, dtype: DType): HostVjp {
  const vjp = programVjp(programOf(cell), dtype);
  const spec = cell.toSpec();
  const weights = specWeights(spec);
  const total = weights.reduce((n, w) => n + shapeSize(w.shape), 0);
  // source[k][e]: the 0-based spec position program entry e of accumulator k came from, or −1.
  const source = programWeights(programOf(readCellSpec(markedSpec(spec, weights)))).map((a) =>
    Int32Array.from(a, (m) => {
      if (m === 0) return -1;
      if (!Number.isInteger(m) || m < 1 || m > total) throw new Error(`pelk: internal error: a program weight is not one spec weight (${m})`);
      return m - 1;
    }),
  );
  return {
    ...vjp,
    step: vjp.step,
    report(accumulated: readonly Float64Array[]): NamedGradient[] {
      const flat = new Float64Array(total);
      accumulated.forEach((a, k) => {
        const from = source[k];
        for (let e = 0; e < a.length; e++) if (from[e] >= 0) flat[from[e]] += a[e];
      });
      return weights.map((w) => {
        const n = shapeSize(w.shape);
        return { name: w.name, shape: w.shape, data: flat.slice(w.offset, w.offset + n) };
      });
    },
  };
}

function programOf(cell: ModelCell): CellProgram {
  const program = cell.program?.();
  if (!program) throw new Error(`pelk: internal error: a '${cell.kind}' cell read back from its spec has no program`);
  return program;
}

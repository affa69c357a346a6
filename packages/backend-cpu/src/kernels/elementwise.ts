/**
 * Elementwise kernels on flat typed arrays. The op is switched on outside each loop so that every
 * inner loop is a tight, monomorphic loop V8 can optimise.
 */
import type { BinaryOp, HostArray, UnaryOp } from '@pelk/core';

/** `out[i] = op(x[i])`. */
export function unaryKernel(op: UnaryOp, x: HostArray, out: HostArray): void {
  const n = x.length;
  switch (op) {
    case 'neg':
      for (let i = 0; i < n; i++) out[i] = -x[i];
      return;
    case 'abs':
      for (let i = 0; i < n; i++) out[i] = Math.abs(x[i]);
      return;
    case 'square':
      for (let i = 0; i < n; i++) out[i] = x[i] * x[i];
      return;
    case 'sqrt':
      for (let i = 0; i < n; i++) out[i] = Math.sqrt(x[i]);
      return;
    case 'exp':
      for (let i = 0; i < n; i++) out[i] = Math.exp(x[i]);
      return;
    case 'log':
      for (let i = 0; i < n; i++) out[i] = Math.log(x[i]);
      return;
    case 'tanh':
      for (let i = 0; i < n; i++) out[i] = Math.tanh(x[i]);
      return;
    case 'sigmoid':
      for (let i = 0; i < n; i++) out[i] = sigmoid(x[i]);
      return;
    case 'hardSigmoid':
      for (let i = 0; i < n; i++) {
        const v = 0.2 * x[i] + 0.5;
        out[i] = v < 0 ? 0 : v > 1 ? 1 : v;
      }
      return;
    case 'hardSigmoidGrad':
      for (let i = 0; i < n; i++) out[i] = x[i] > -2.5 && x[i] < 2.5 ? 0.2 : 0;
      return;
    case 'relu':
      for (let i = 0; i < n; i++) out[i] = x[i] > 0 ? x[i] : 0;
      return;
    case 'step':
      for (let i = 0; i < n; i++) out[i] = x[i] > 0 ? 1 : 0;
      return;
    case 'softplus':
      for (let i = 0; i < n; i++) out[i] = softplus(x[i]);
      return;
    default:
      throw new Error(`unknown unary op '${op as string}'`);
  }
}

/** Numerically stable logistic function. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** Numerically stable `log(1 + exp(x))`. */
export function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/**
 * `out[i] = op(a[i], b[i mod bn])` — covers equal shapes (bn = n), a scalar `b` (bn = 1) and a
 * `b` that broadcasts along leading axes (its shape a suffix of `a`'s).
 */
export function binaryCycleB(op: BinaryOp, a: HostArray, b: HostArray, out: HostArray): void {
  const n = a.length;
  const bn = b.length;
  if (bn === n) {
    switch (op) {
      case 'add':
        for (let i = 0; i < n; i++) out[i] = a[i] + b[i];
        return;
      case 'sub':
        for (let i = 0; i < n; i++) out[i] = a[i] - b[i];
        return;
      case 'mul':
        for (let i = 0; i < n; i++) out[i] = a[i] * b[i];
        return;
      case 'div':
        for (let i = 0; i < n; i++) out[i] = a[i] / b[i];
        return;
      case 'max':
        for (let i = 0; i < n; i++) out[i] = Math.max(a[i], b[i]);
        return;
      case 'min':
        for (let i = 0; i < n; i++) out[i] = Math.min(a[i], b[i]);
        return;
    }
  }
  for (let base = 0; base < n; base += bn) {
    switch (op) {
      case 'add':
        for (let j = 0; j < bn; j++) out[base + j] = a[base + j] + b[j];
        break;
      case 'sub':
        for (let j = 0; j < bn; j++) out[base + j] = a[base + j] - b[j];
        break;
      case 'mul':
        for (let j = 0; j < bn; j++) out[base + j] = a[base + j] * b[j];
        break;
      case 'div':
        for (let j = 0; j < bn; j++) out[base + j] = a[base + j] / b[j];
        break;
      case 'max':
        for (let j = 0; j < bn; j++) out[base + j] = Math.max(a[base + j], b[j]);
        break;
      case 'min':
        for (let j = 0; j < bn; j++) out[base + j] = Math.min(a[base + j], b[j]);
        break;
    }
  }
}

/** Applies a binary op to two scalars (the generic broadcasting path). */
export function applyBinary(op: BinaryOp, x: number, y: number): number {
  switch (op) {
    case 'add':
      return x + y;
    case 'sub':
      return x - y;
    case 'mul':
      return x * y;
    case 'div':
      return x / y;
    case 'max':
      return Math.max(x, y);
    case 'min':
      return Math.min(x, y);
  }
}

/**
 * General NumPy broadcasting. `sa`, `sb` are the operands' strides over the output shape (0 on
 * broadcast axes). The innermost axis runs as a tight loop.
 */
export function binaryBroadcast(
  op: BinaryOp,
  a: HostArray,
  b: HostArray,
  out: HostArray,
  shape: readonly number[],
  sa: readonly number[],
  sb: readonly number[],
): void {
  const rank = shape.length;
  const inner = rank ? shape[rank - 1] : 1;
  const ia = rank ? sa[rank - 1] : 0;
  const ib = rank ? sb[rank - 1] : 0;
  const outer = out.length / Math.max(inner, 1);
  const idx = new Array<number>(Math.max(rank - 1, 0)).fill(0);
  let offA = 0;
  let offB = 0;
  let o = 0;
  for (let r = 0; r < outer; r++) {
    for (let j = 0; j < inner; j++) out[o++] = applyBinary(op, a[offA + j * ia], b[offB + j * ib]);
    // Advance the multi-index over the outer axes.
    for (let ax = rank - 2; ax >= 0; ax--) {
      idx[ax]++;
      offA += sa[ax];
      offB += sb[ax];
      if (idx[ax] < shape[ax]) break;
      offA -= sa[ax] * shape[ax];
      offB -= sb[ax] * shape[ax];
      idx[ax] = 0;
    }
  }
}

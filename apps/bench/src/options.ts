/** Parsing of shared command-line values into typed, validated options. */
import { ADJOINT_METHODS, type AdjointMethod, type DType, InvalidArgumentError, type KalmanMode, METHODS, type Method, UnknownMethodError } from '@pelk/core';

/** `--method`. */
export function parseMethod(value: string): Method {
  if (!(METHODS as readonly string[]).includes(value)) throw new UnknownMethodError(value, METHODS);
  return value as Method;
}

/** `--adjoint`. */
export function parseAdjoint(value: string): AdjointMethod {
  if (!(ADJOINT_METHODS as readonly string[]).includes(value)) {
    throw new InvalidArgumentError('--adjoint', ADJOINT_METHODS.map((m) => `'${m}'`).join(', '), JSON.stringify(value));
  }
  return value as AdjointMethod;
}

/** `--dtype`. */
export function parseDType(value: string, flag = '--dtype'): DType {
  if (value !== 'float32' && value !== 'float64') throw new InvalidArgumentError(flag, "'float64' or 'float32'", JSON.stringify(value));
  return value;
}

/** A positive number flag such as `--tol`. */
export function parsePositive(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(flag, 'a positive number', JSON.stringify(value));
  return n;
}

/** A positive integer flag such as `--max-iters`. */
export function parsePositiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(flag, 'a positive integer', JSON.stringify(value));
  return n;
}

/** A non-negative integer flag such as `--warmup`. */
export function parseNonNegativeInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(flag, 'a non-negative integer', JSON.stringify(value));
  return n;
}

/** `--kalman`. */
export function parseKalman(value: string): KalmanMode {
  if (value !== 'filter' && value !== 'smoother') throw new InvalidArgumentError('--kalman', "'filter' or 'smoother'", JSON.stringify(value));
  return value;
}

/** `--stability-set`: which problems of the stability suite to run. */
export function parseStabilitySet(value: string): 'tuning' | 'held-out' | 'all' {
  if (value !== 'tuning' && value !== 'held-out' && value !== 'all') throw new InvalidArgumentError('--stability-set', "'tuning', 'held-out' or 'all'", JSON.stringify(value));
  return value;
}

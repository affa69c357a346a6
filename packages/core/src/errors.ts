/**
 * Typed errors. Every error pelk throws on purpose is a {@link PelkError} with a stable `code`;
 * input errors also name the offending `field`, what was `expected` and what was `received`,
 * and are thrown before anything is allocated on a backend.
 */

/** Stable machine-readable error codes. */
export type PelkErrorCode =
  | 'INVALID_ARGUMENT'
  | 'SHAPE_MISMATCH'
  | 'NON_FINITE'
  | 'UNKNOWN_METHOD'
  | 'UNKNOWN_BACKEND'
  | 'BACKEND_UNAVAILABLE'
  | 'RESOURCE_LIMIT'
  | 'UNSUPPORTED'
  | 'ABORTED'
  | 'NOT_CONVERGED';

/** Base class of every error pelk throws on purpose. */
export class PelkError extends Error {
  readonly code: PelkErrorCode;
  constructor(code: PelkErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PelkError';
    this.code = code;
  }
}

/** Describes a received value briefly and safely for an error message. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name} of length ${(value as unknown as ArrayLike<number>).length}`;
  return typeof value === 'object' ? `an object (${Object.prototype.toString.call(value)})` : typeof value;
}

/** A value has the wrong type, range or form. */
export class InvalidArgumentError extends PelkError {
  readonly field: string;
  readonly expected: string;
  readonly received: string;
  constructor(field: string, expected: string, received: string, code: PelkErrorCode = 'INVALID_ARGUMENT') {
    super(code, `${field}: expected ${expected}, received ${received}`);
    this.name = 'InvalidArgumentError';
    this.field = field;
    this.expected = expected;
    this.received = received;
  }
}

/** A tensor or array has the wrong shape (or shapes disagree with each other). */
export class ShapeError extends InvalidArgumentError {
  constructor(field: string, expected: string, received: string) {
    super(field, expected, received, 'SHAPE_MISMATCH');
    this.name = 'ShapeError';
  }
}

/** An input, weight or initial state holds NaN or ±Infinity. */
export class NonFiniteError extends InvalidArgumentError {
  constructor(field: string, index: number, value: number) {
    super(field, 'finite numbers', `${describeValue(value)} at flat index ${index}`, 'NON_FINITE');
    this.name = 'NonFiniteError';
  }
}

/** The requested solver method does not exist. */
export class UnknownMethodError extends InvalidArgumentError {
  constructor(received: unknown, known: readonly string[]) {
    super('options.method', `one of ${known.map((m) => `'${m}'`).join(', ')}`, describeValue(received), 'UNKNOWN_METHOD');
    this.name = 'UnknownMethodError';
  }
}

/** No backend with that name is registered. */
export class UnknownBackendError extends InvalidArgumentError {
  constructor(received: unknown, known: readonly string[]) {
    super(
      'options.backend',
      known.length ? `a backend instance or one of ${known.map((m) => `'${m}'`).join(', ')}` : 'a backend instance (no backend is registered)',
      describeValue(received),
      'UNKNOWN_BACKEND',
    );
    this.name = 'UnknownBackendError';
  }
}

/** Every candidate backend failed to initialise; `reasons` says why each one failed. */
export class BackendUnavailableError extends PelkError {
  readonly reasons: ReadonlyArray<{ name: string; reason: string }>;
  constructor(reasons: ReadonlyArray<{ name: string; reason: string }>) {
    super(
      'BACKEND_UNAVAILABLE',
      `no backend could be initialised:\n${reasons.map((r) => `  - ${r.name}: ${r.reason}`).join('\n')}`,
    );
    this.name = 'BackendUnavailableError';
    this.reasons = reasons;
  }
}

/** The problem needs more memory than the backend declares it can hold. */
export class ResourceLimitError extends InvalidArgumentError {
  constructor(field: string, expected: string, received: string) {
    super(field, expected, received, 'RESOURCE_LIMIT');
    this.name = 'ResourceLimitError';
  }
}

/**
 * A gradient was asked for at an evaluation that did not converge: its trajectory is not the
 * solution, so no gradient of the solution can be computed there. `grad`'s `allowNonConverged`
 * accepts it explicitly (the gradient is then of the recurrence linearised along that trajectory).
 */
export class NotConvergedError extends InvalidArgumentError {
  constructor(field: string, expected: string, received: string) {
    super(field, expected, received, 'NOT_CONVERGED');
    this.name = 'NotConvergedError';
  }
}

/** The evaluation was cancelled through its `AbortSignal`. */
export class AbortError extends PelkError {
  readonly iteration: number;
  constructor(iteration: number, reason?: unknown) {
    super('ABORTED', `evaluation aborted at iteration ${iteration}`, { cause: reason });
    this.name = 'AbortError';
    this.iteration = iteration;
  }
}

/**
 * @pelk/core — parallel-in-time evaluation of nonlinear recurrent models.
 *
 * Solvers (sequential, DEER, quasi-DEER) written against the abstract {@link ComputeBackend};
 * backends live in their own packages (`@pelk/backend-cpu`, …) and cells in `@pelk/models`.
 */
export type {
  BackendCapabilities,
  BackendMemory,
  BinaryOp,
  ComputeBackend,
  DType,
  HostArray,
  KalmanModel,
  KalmanMoments,
  KalmanOptions,
  Sanitized,
  Corrected,
  DeviceCounters,
  ScanOptions,
  Tensor,
  UnaryOp,
} from './backend.js';
export { shapeSize } from './backend.js';
export type { BindContext, BoundCell, Cell, JacobianKind, Rollout } from './cell.js';
export {
  type ArProgram,
  type CellProgram,
  type FusedAdjoint,
  type FusedAdjointOptions,
  type FusedCell,
  type FusedGradients,
  type FusedLinearization,
  type FusedLinearizeOptions,
  type ProgramActivation,
  type RnnProgram,
  SCALAR_ACTIVATIONS,
  type ScalarActivation,
} from './program.js';
export { type HostStepFn, adjointRun, bindHostProgram, checkAdjoint, checkLinearize, checkProgram, checkShape, hostKernel, hostRollout, linearizationRun, windowEnd } from './fused/host-bind.js';
export { type HostRnnKernel, driveBias, hostMatVec, hostRnnKernel, storedAs, transpose } from './fused/host-rnn.js';
export {
  AbortError,
  BackendUnavailableError,
  InvalidArgumentError,
  NonFiniteError,
  NotConvergedError,
  PelkError,
  type PelkErrorCode,
  ResourceLimitError,
  ShapeError,
  UnknownBackendError,
  UnknownMethodError,
  describeValue,
} from './errors.js';
export { checkKnownKeys, closestKey } from './keys.js';
export { ADAPTIVE_DAMPING, DAMPED_MIN_ITERATIONS, DEFAULT_CLIP, DEFAULT_TOLERANCE, MIN_TOLERANCE, evaluate, nest } from './evaluate.js';
export { type EvaluationSize, bytesPerElement, estimateEvaluationBytes } from './memory.js';
export {
  LYAPUNOV_FLOOR,
  type LyapunovEstimate,
  type LyapunovOptions,
  type LyapunovVerdict,
  estimateLyapunov,
  lyapunovVerdict,
} from './lyapunov.js';
export { LYAPUNOV_WINDOW, lyapunovWindow } from './lyapunov-window.js';
export type { ElkDamping } from './solvers/elk.js';
export { LINEARIZE_SEGMENT_STEPS } from './solvers/newton.js';
export { SEGMENT_STEPS } from './solvers/sequential.js';
export { type BackendFactory, registerBackend, registeredBackends, resolveBackend, unregisterBackend } from './registry.js';
export {
  type EvaluateOptions,
  type EvaluateResult,
  type InputsLike,
  type DeviceWork,
  type IterationInfo,
  type IterateSnapshot,
  type KalmanMode,
  METHODS,
  type Method,
  type MethodRun,
  type ShapedArray,
  type StopReason,
} from './types.js';
export {
  type HostTensor,
  assertFinite,
  assertPositiveInteger,
  assertPositiveNumber,
  checkBindContext,
  checkKalmanModel,
  shapeOfInputs,
  toHostTensor,
} from './validate.js';
export {
  ADJOINT_METHODS,
  type AdjointIteration,
  type AdjointMethod,
  type AdjointReport,
  type CotangentLike,
  DEFAULT_ADJOINT_TOLERANCE,
  type GradOptions,
  type GradResult,
  type GradientArray,
  type Trajectory,
  type TrajectoryGradient,
  grad,
  gradAt,
} from './grad/grad.js';
export { type HostVjp, type NamedGradient, type ParameterInfo, type VjpOutputs, programVjp } from './grad/host-vjp.js';

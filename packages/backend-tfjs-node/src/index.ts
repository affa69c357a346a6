/**
 * @pelk/backend-tfjs-node — pelk's solvers on TensorFlow.js: native TensorFlow through tfjs-node
 * where it is installed, else tfjs's `wasm` or `cpu` backend.
 * Import `@pelk/backend-tfjs-node/register` to register it as `'tfjs'`.
 */
export { createTfjsBackend, type TfjsBackendName, type TfjsBackendOptions } from './runtime.js';
export { TfjsBackend, type TfjsLimitsOptions, defaultTfjsMemoryBudget } from './tfjs-backend.js';
export { associativeScan, type Combine, type Element, type Tf } from './programs/scan.js';
export { denseRecurrence, diagonalRecurrence } from './programs/linear.js';
export { kalmanDenseProgram, kalmanDiagonalProgram, type KalmanInputs, type Moments } from './programs/kalman.js';
export { solve } from './programs/linalg.js';
export { type PelkRecurrent, type PelkRecurrentOptions, type SolvedRecurrence, type WeightValue, pelkRecurrent } from './training.js';

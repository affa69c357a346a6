/**
 * Backends the CLI can name. Each entry imports its package lazily, so a user who installed only
 * @pelk/backend-cpu never loads another backend. A TensorFlow.js backend is named `tfjs` or
 * `tfjs:<tfjs backend>` (`tfjs:wasm`, `tfjs:cpu`, `tfjs:tensorflow`), which is what
 * `--backend tfjs --tfjs-backend wasm` becomes (see {@link backendSpec}).
 */
import { type ComputeBackend, type DType, InvalidArgumentError } from '@pelk/core';

const FACTORIES: Record<string, (variant: string | undefined) => Promise<ComputeBackend>> = {
  cpu: async () => new (await import('@pelk/backend-cpu')).CpuBackend(),
  wasm: async (threads) => (await import('@pelk/backend-wasm')).createWasmBackend(threads ? { threads: Number(threads) } : {}),
  tfjs: async (variant) => (await import('@pelk/backend-tfjs-node')).createTfjsBackend(variant ? { backend: variant } : {}),
  webgpu: async () => (await import('@pelk/backend-webgpu')).createWebGpuBackend(),
};

/** Names accepted by `--backend`. */
export const BACKEND_NAMES = Object.keys(FACTORIES);

/** tfjs backends accepted by `--tfjs-backend`. */
export const TFJS_BACKEND_NAMES = ['wasm', 'cpu', 'tensorflow'];

/**
 * The backend spec for `--backend`, `--tfjs-backend` and `--threads`: `'tfjs:wasm'` for `tfjs` +
 * `wasm`, `'wasm:2'` for `wasm` on 2 threads.
 *
 * @example
 * ```ts
 * backendSpec('tfjs', 'wasm'); // 'tfjs:wasm'
 * backendSpec('wasm', undefined, 2); // 'wasm:2'
 * ```
 */
export function backendSpec(backend: string, tfjsBackend: string | undefined, threads?: number): string {
  if (threads !== undefined) {
    if (backend !== 'wasm') throw new InvalidArgumentError('--threads', "'--backend wasm' alongside it", `--backend ${backend}`);
    return `wasm:${threads}`;
  }
  if (tfjsBackend === undefined) return backend;
  if (backend !== 'tfjs') throw new InvalidArgumentError('--tfjs-backend', "'--backend tfjs' alongside it", `--backend ${backend}`);
  return `tfjs:${tfjsBackend}`;
}

/**
 * The dtypes to run on a backend by default: float64 and float32 on the CPU and WebAssembly
 * backends, float32 on the tfjs and WebGPU backends (they compute in float32 only).
 *
 * @example
 * ```ts
 * defaultDTypes('tfjs:wasm'); // ['float32']
 * ```
 */
export function defaultDTypes(spec: string): DType[] {
  const name = spec.split(':')[0];
  return name === 'cpu' || name === 'wasm' ? ['float64', 'float32'] : ['float32'];
}

/**
 * Creates the backend named on the command line (`cpu`, `tfjs`, `tfjs:wasm`, `webgpu`, …).
 *
 * @example
 * ```ts
 * const backend = await createBackend('tfjs:wasm');
 * ```
 */
export async function createBackend(spec: string): Promise<ComputeBackend> {
  const [name, variant] = spec.split(':', 2);
  const factory = FACTORIES[name];
  if (!factory) {
    throw new InvalidArgumentError('--backend', `one of ${BACKEND_NAMES.join(', ')}`, JSON.stringify(name));
  }
  const backend = await factory(variant);
  created.push(backend);
  return backend;
}

/** Backends created by this process, released by {@link releaseBackends} when a command ends. */
const created: ComputeBackend[] = [];

/**
 * Releases what the backends created so far hold beyond their tensors (a WebGPU device keeps
 * Node alive until it is destroyed). `main` calls it after every command, on success and on error.
 *
 * @example
 * ```ts
 * await releaseBackends();
 * ```
 */
export async function releaseBackends(): Promise<void> {
  for (const backend of created.splice(0)) {
    const destroy = (backend as { destroy?: () => Promise<void> }).destroy;
    if (typeof destroy === 'function') await destroy.call(backend);
  }
}

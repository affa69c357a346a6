/**
 * Choosing and initialising the tfjs backend pelk computes on. The native `tensorflow` backend
 * comes from `@tensorflow/tfjs-node-gpu` or `@tensorflow/tfjs-node` (optional peers: their install
 * downloads libtensorflow, so nothing in this workspace installs them); `wasm` and `cpu` from
 * `@tensorflow/tfjs-backend-wasm` / `-cpu`; any other name must already be registered with tfjs.
 */
import { BackendUnavailableError, InvalidArgumentError, describeValue } from '@pelk/core';
import * as tf from '@tensorflow/tfjs-core';
import { TfjsBackend, type TfjsLimitsOptions } from './tfjs-backend.js';

/** tfjs backends pelk knows how to load; others work when already registered with tfjs. */
export type TfjsBackendName = 'tensorflow' | 'wasm' | 'cpu' | (string & {});

/** Options of {@link createTfjsBackend}. */
export interface TfjsBackendOptions extends TfjsLimitsOptions {
  /**
   * The tfjs backend. Default: `tensorflow` when tfjs-node(-gpu) is installed, else `wasm`, else
   * `cpu` (whichever package is installed).
   */
  readonly backend?: TfjsBackendName;
}

/** Packages that provide each backend, in the order they are tried. */
const PROVIDERS: Record<string, readonly string[]> = {
  tensorflow: ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'],
  wasm: ['@tensorflow/tfjs-backend-wasm'],
  cpu: ['@tensorflow/tfjs-backend-cpu'],
};

const INSTALL_HINT: Record<string, string> = {
  tensorflow:
    'install @tensorflow/tfjs-node (or @tensorflow/tfjs-node-gpu with CUDA) next to @pelk/backend-tfjs-node: `npm install @tensorflow/tfjs-node` — its install script downloads libtensorflow, so it needs access to storage.googleapis.com',
  wasm: 'install @tensorflow/tfjs-backend-wasm: `npm install @tensorflow/tfjs-backend-wasm`',
  cpu: 'install @tensorflow/tfjs-backend-cpu: `npm install @tensorflow/tfjs-backend-cpu`',
};

// A variable specifier keeps bundlers and TypeScript from resolving optional peers up front.
const importOptional = (specifier: string): Promise<unknown> => import(/* @vite-ignore */ specifier);

/** Imports the first provider of `name` that loads; returns why each failed otherwise. */
async function loadProvider(name: string): Promise<string | null> {
  // Already registered (the caller imported the package, as browser bundles must): nothing to load.
  if (tf.findBackendFactory(name)) return null;
  const providers = PROVIDERS[name];
  if (!providers) {
    return tf.findBackendFactory(name) ? null : `no tfjs backend named '${name}' is registered (import its package first)`;
  }
  const failures: string[] = [];
  for (const pkg of providers) {
    try {
      await importOptional(pkg);
      if (tf.findBackendFactory(name)) return null;
      failures.push(`${pkg} loaded but registered no '${name}' backend`);
    } catch (err) {
      failures.push(`${pkg} is not installed or failed to load (${(err as Error).message.split('\n')[0]})`);
    }
  }
  return `${failures.join('; ')} — ${INSTALL_HINT[name]}`;
}

/**
 * Creates a pelk backend on TensorFlow.js, loading and activating the tfjs backend it needs.
 * Asking for a backend whose package is missing throws a `BackendUnavailableError` that says
 * what to install.
 *
 * @example
 * ```ts
 * import { createTfjsBackend } from '@pelk/backend-tfjs-node';
 * const backend = await createTfjsBackend();                    // tensorflow if tfjs-node is installed, else wasm/cpu
 * const wasm = await createTfjsBackend({ backend: 'wasm' });    // a named tfjs backend
 * ```
 */
export async function createTfjsBackend(options: TfjsBackendOptions = {}): Promise<TfjsBackend> {
  const requested = options.backend;
  if (requested !== undefined && (typeof requested !== 'string' || requested.length === 0)) {
    throw new InvalidArgumentError('options.backend', "a tfjs backend name such as 'tensorflow', 'wasm' or 'cpu'", describeValue(requested));
  }
  const candidates = requested === undefined ? ['tensorflow', 'wasm', 'cpu'] : [requested];
  const reasons: { name: string; reason: string }[] = [];
  for (const name of candidates) {
    const problem = await loadProvider(name);
    if (problem) {
      reasons.push({ name: `tfjs ${name}`, reason: problem });
      continue;
    }
    if (!(await tf.setBackend(name))) {
      reasons.push({ name: `tfjs ${name}`, reason: `tf.setBackend('${name}') failed to initialise it` });
      continue;
    }
    await tf.ready();
    return new TfjsBackend(tf, name, options);
  }
  throw new BackendUnavailableError(reasons);
}

/**
 * Backends the CLI can name. Each entry imports its package lazily, so a user who installed only
 * @pelk/backend-cpu never loads another backend.
 */
import { type ComputeBackend, InvalidArgumentError } from '@pelk/core';

const FACTORIES: Record<string, () => Promise<ComputeBackend>> = {
  cpu: async () => new (await import('@pelk/backend-cpu')).CpuBackend(),
};

/** Names accepted by `--backend`. */
export const BACKEND_NAMES = Object.keys(FACTORIES);

/**
 * Creates the backend named on the command line.
 *
 * @example
 * ```ts
 * const backend = await createBackend('cpu');
 * ```
 */
export async function createBackend(name: string): Promise<ComputeBackend> {
  const factory = FACTORIES[name];
  if (!factory) {
    throw new InvalidArgumentError('--backend', `one of ${BACKEND_NAMES.join(', ')}`, JSON.stringify(name));
  }
  return factory();
}

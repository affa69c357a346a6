import type { ComputeBackend } from './backend.js';
import { BackendUnavailableError, InvalidArgumentError, UnknownBackendError, describeValue } from './errors.js';

/** Creates a backend; may be async (GPU adapters are). */
export type BackendFactory = () => ComputeBackend | Promise<ComputeBackend>;

interface Entry {
  readonly factory: BackendFactory;
  readonly priority: number;
  instance?: Promise<ComputeBackend>;
}

/**
 * One registry per process, kept on `globalThis` under a `Symbol.for` key so that two copies of
 * @pelk/core in one process (a bundling accident) still share it.
 */
const REGISTRY_KEY = Symbol.for('@pelk/core/backend-registry');

function registry(): Map<string, Entry> {
  const g = globalThis as unknown as Record<symbol, Map<string, Entry> | undefined>;
  let map = g[REGISTRY_KEY];
  if (!map) {
    map = new Map();
    g[REGISTRY_KEY] = map;
  }
  return map;
}

/**
 * Registers a backend factory under a name. Higher `priority` is tried first when no backend is named.
 *
 * @example
 * ```ts
 * import { registerBackend } from '@pelk/core';
 * import { CpuBackend } from '@pelk/backend-cpu';
 * registerBackend('cpu', () => new CpuBackend(), 1);
 * ```
 */
export function registerBackend(name: string, factory: BackendFactory, priority = 0): void {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidArgumentError('name', 'a non-empty string', describeValue(name));
  }
  if (typeof factory !== 'function') {
    throw new InvalidArgumentError('factory', 'a function returning a ComputeBackend', describeValue(factory));
  }
  registry().set(name, { factory, priority });
}

/** Names of the registered backends, highest priority first. */
export function registeredBackends(): string[] {
  return [...registry().entries()].sort((a, b) => b[1].priority - a[1].priority).map(([name]) => name);
}

/** Removes a registered backend (tests use it). */
export function unregisterBackend(name: string): boolean {
  return registry().delete(name);
}

async function instantiate(name: string, entry: Entry): Promise<ComputeBackend> {
  if (!entry.instance) {
    entry.instance = Promise.resolve().then(entry.factory);
    // A failed initialisation is not cached: the next call tries again.
    entry.instance.catch(() => {
      entry.instance = undefined;
    });
  }
  return entry.instance.then((b) => {
    if (!b || typeof b.linearScanDiagonal !== 'function') {
      throw new Error(`factory for '${name}' did not return a ComputeBackend`);
    }
    return b;
  });
}

/**
 * Returns a backend: the instance itself, the registered backend of that name, or — when `backend`
 * is undefined — the first registered backend (by priority) that initialises. When every candidate
 * fails, the error lists why each one failed.
 *
 * @example
 * ```ts
 * const backend = await resolveBackend('cpu');
 * ```
 */
export async function resolveBackend(backend?: string | ComputeBackend): Promise<ComputeBackend> {
  if (backend !== undefined && typeof backend === 'object' && backend !== null) return backend;
  const map = registry();
  if (backend !== undefined) {
    const entry = typeof backend === 'string' ? map.get(backend) : undefined;
    if (!entry) throw new UnknownBackendError(backend, registeredBackends());
    try {
      return await instantiate(backend as string, entry);
    } catch (err) {
      throw new BackendUnavailableError([{ name: backend as string, reason: errorText(err) }]);
    }
  }
  const names = registeredBackends();
  if (names.length === 0) {
    throw new BackendUnavailableError([
      { name: '(none)', reason: "no backend is registered; import '@pelk/backend-cpu/register' or pass options.backend" },
    ]);
  }
  const reasons: { name: string; reason: string }[] = [];
  for (const name of names) {
    try {
      return await instantiate(name, map.get(name)!);
    } catch (err) {
      reasons.push({ name, reason: errorText(err) });
    }
  }
  throw new BackendUnavailableError(reasons);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

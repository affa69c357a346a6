import { afterEach, describe, expect, it } from 'vitest';
import type { ComputeBackend } from './backend.js';
import { BackendUnavailableError, UnknownBackendError } from './errors.js';
import { registerBackend, registeredBackends, resolveBackend, unregisterBackend } from './registry.js';

/** Only what the registry looks at: a name and a scan function. */
const fake = (name: string) => ({ name, linearScanDiagonal: () => undefined }) as unknown as ComputeBackend;

describe('backend registry', () => {
  afterEach(() => {
    for (const n of registeredBackends()) unregisterBackend(n);
  });

  it('resolves by name, by priority, and passes instances through', async () => {
    registerBackend('low', () => fake('low'), 0);
    registerBackend('high', () => fake('high'), 10);
    expect(registeredBackends()).toEqual(['high', 'low']);
    expect((await resolveBackend()).name).toBe('high');
    expect((await resolveBackend('low')).name).toBe('low');
    const inst = fake('mine');
    expect(await resolveBackend(inst)).toBe(inst);
  });

  it('falls back past a failing backend and lists every reason when all fail', async () => {
    registerBackend('gpu', () => {
      throw new Error('no adapter');
    }, 10);
    registerBackend('cpu', () => fake('cpu'), 0);
    expect((await resolveBackend()).name).toBe('cpu');
    unregisterBackend('cpu');
    const err = await resolveBackend().catch((e) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect(err.message).toContain('gpu: no adapter');
  });

  it('names the known backends when an unknown one is asked for', async () => {
    registerBackend('cpu', () => fake('cpu'));
    const err = await resolveBackend('webgpu').catch((e) => e);
    expect(err).toBeInstanceOf(UnknownBackendError);
    expect(err.field).toBe('options.backend');
    expect(err.expected).toContain("'cpu'");
  });

  it('shares one registry per process through globalThis', () => {
    registerBackend('cpu', () => fake('cpu'));
    const key = Symbol.for('@pelk/core/backend-registry');
    expect((globalThis as unknown as Record<symbol, Map<string, unknown>>)[key].has('cpu')).toBe(true);
  });
});

/** The machine a benchmark ran on, recorded with its results. */
import { cpus, totalmem } from 'node:os';
import type { ComputeBackend } from '@pelk/core';

export interface MachineDescription {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly node: string;
  readonly platform: string;
  readonly backend: string;
  readonly device: string;
}

/**
 * Describes this machine and the backend in use.
 *
 * @example
 * ```ts
 * const machine = machineDescription(await createBackend('cpu'));
 * ```
 */
export function machineDescription(backend: ComputeBackend): MachineDescription {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    backend: backend.name,
    device: backend.capabilities.device,
  };
}

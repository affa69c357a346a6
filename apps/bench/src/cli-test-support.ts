/** Test support (not part of the CLI): runs the `pelk` command in-process; probes for WebGPU. */
import { createWebGpuBackend } from '@pelk/backend-webgpu';
import { vi } from 'vitest';
import { main } from './main.js';

/**
 * Why WebGPU is not available here (`''` when it is: Dawn with a GPU, or SwiftShader), and whether
 * WebGPU tests skip (visibly, with that reason) — never under PELK_REQUIRE_WEBGPU=1 (CI), where a
 * missing adapter fails them instead.
 */
export async function probeWebGpu(): Promise<{ reason: string; skip: boolean }> {
  const reason = await createWebGpuBackend().then(
    async (b) => {
      await b.destroy();
      return '';
    },
    (e: Error) => e.message,
  );
  return { reason, skip: reason !== '' && process.env.PELK_REQUIRE_WEBGPU !== '1' };
}

/** Runs the CLI in-process, capturing stdout and stderr. */
export async function pelk(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    out += String(s);
    return true;
  });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
    err += String(s);
    return true;
  });
  try {
    const code = await main(args);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

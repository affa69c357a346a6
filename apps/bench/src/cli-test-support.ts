/** Test support (not part of the CLI): runs the `pelk` command in-process. */
import { vi } from 'vitest';
import { main } from './main.js';

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

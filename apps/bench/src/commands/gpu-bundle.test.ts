/**
 * `pelk gpu-bundle`: the folder is built (Node.js from the npm registry), stays under its budget,
 * and runs the gpu suite from an empty folder with no node_modules and no usable system Node — on
 * SwiftShader here. Needs a WebGPU adapter: skipped visibly without one, unless
 * PELK_REQUIRE_WEBGPU=1 (CI).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { probeWebGpu } from '../cli-test-support.js';
import { GPU_BUNDLE_MAX_BYTES, buildGpuBundle } from './gpu-bundle.js';

const { reason: noAdapter, skip } = await probeWebGpu();
const icd = process.env.VK_ICD_FILENAMES ?? '/usr/lib/chromium/vk_swiftshader_icd.json';

describe('pelk gpu-bundle', () => {
  const root = mkdtempSync(join(tmpdir(), 'pelk-gpu-bundle-test-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const title = 'writes a self-contained folder under 60 MB that runs the gpu suite from an empty folder';
  it.skipIf(skip)(skip ? `${title} — skipped: ${noAdapter}` : title, async () => {
    const bundle = await buildGpuBundle({ out: join(root, 'bundle'), quiet: true });
    expect(bundle.bytes).toBeLessThanOrEqual(GPU_BUNDLE_MAX_BYTES);
    expect(bundle.nodeVersion).toBe(process.version.slice(1));
    // A bare folder elsewhere: the bundle alone, and a `node` on PATH that fails if anything runs it.
    const empty = join(root, 'elsewhere');
    mkdirSync(join(empty, 'bin'), { recursive: true });
    cpSync(bundle.dir, join(empty, 'pelk-gpu'), { recursive: true });
    writeFileSync(join(empty, 'bin/node'), '#!/bin/sh\necho "the system node was run" >&2\nexit 99\n');
    chmodSync(join(empty, 'bin/node'), 0o755);
    const env = { PATH: `${join(empty, 'bin')}:/usr/bin:/bin`, HOME: empty, TMPDIR: empty, VK_ICD_FILENAMES: icd };
    // --budget 1: the first length of each method runs; a longer one only when predicted within 1 s.
    const run = spawnSync('/bin/sh', ['pelk-gpu/run.sh', 'results', '--quick', '--budget', '1'], { cwd: empty, env, encoding: 'utf8', timeout: 480_000 });
    expect(run.status, run.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(empty, 'results/gpu.json'), 'utf8'));
    expect(report.kind).toBe('pelk-bench-gpu');
    expect(report.adapter).toMatch(/SwiftShader|WebGPU/i);
    const measured = report.runs.filter((r: { refused?: string }) => !r.refused);
    expect([...new Set(measured.map((r: { method: string }) => r.method))].sort()).toEqual(['deer', 'quasi-deer', 'quasi-elk', 'sequential']);
    for (const r of measured) expect(r.converged, r.method).toBe(true);
    expect(readFileSync(join(empty, 'results/index.html'), 'utf8')).toContain('WebGPU');
    // No usable Vulkan driver: a non-zero exit that says what is missing.
    const bad = spawnSync('/bin/sh', ['pelk-gpu/run.sh', 'results-bad', '--quick'], { cwd: empty, env: { ...env, VK_ICD_FILENAMES: '/nonexistent/icd.json' }, encoding: 'utf8', timeout: 120_000 });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/no WebGPU adapter/);
    // The unpacked payload: Node, the bundled CLI, Dawn, and nothing from this checkout.
    const listing = execFileSync('tar', ['-tzf', join(bundle.dir, 'payload.tar.gz')], { encoding: 'utf8' });
    for (const f of ['./node', './pelk.mjs', './node_modules/webgpu/dist/linux-x64/dawn.node']) expect(listing).toContain(f);
  }, 600_000);
});

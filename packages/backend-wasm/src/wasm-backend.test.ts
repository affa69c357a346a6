/** The WebAssembly backend beyond the conformance suite: its heap, its creation errors, and leaks. */
import { CpuBackend } from '@pelk/backend-cpu';
import { failingCell, maxAbs, maxAbsDiff } from '@pelk/conformance';
import {
  AbortError,
  BackendUnavailableError,
  InvalidArgumentError,
  ResourceLimitError,
  evaluate,
  grad,
  gradAt,
  registerBackend,
  resolveBackend,
  unregisterBackend,
} from '@pelk/core';
import { gru, lstm } from '@pelk/models';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WasmHeap } from './heap.js';
import { createWasmBackend } from './wasm-backend.js';

describe('WasmHeap', () => {
  const heap = () => new WasmHeap(new WebAssembly.Memory({ initial: 1, maximum: 1 }), 1000);

  it('hands out 16-byte-aligned blocks first fit and coalesces freed neighbours back into one block', () => {
    const h = heap();
    expect(h.base).toBe(1008);
    const a = h.allocBytes(100);
    const b = h.allocBytes(1);
    const c = h.allocBytes(48);
    expect([a, b, c]).toEqual([1008, 1120, 1136]);
    expect(h.usedBytes).toBe(112 + 16 + 48);
    h.freeBytes(b, 1);
    expect(h.allocBytes(16)).toBe(b); // the hole is reused first
    h.freeBytes(b, 16);
    h.freeBytes(a, 100);
    h.freeBytes(c, 48);
    expect(h.usedBytes).toBe(0);
    // Everything coalesced: the whole capacity is one block again.
    expect(h.allocBytes(h.capacity)).toBe(1008);
  });

  it('refuses a block larger than what is free with a ResourceLimitError naming the memory', () => {
    const h = heap();
    h.allocBytes(60_000);
    const err = (() => {
      try {
        h.allocBytes(10_000);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ResourceLimitError);
    expect(err).toMatchObject({ field: 'memory' });
    expect(h.usedBytes).toBe(60_000);
    // Sizes that are not byte counts are refused before anything is taken.
    expect(() => h.allocBytes(Number.NaN)).toThrow(InvalidArgumentError);
    expect(() => h.allocBytes(-16)).toThrow(InvalidArgumentError);
    expect(h.usedBytes).toBe(60_000);
  });
});

describe('createWasmBackend', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    unregisterBackend('wasm-under-test');
    unregisterBackend('cpu-under-test');
  });

  it('refuses a memory size outside [16 MiB, 4 GiB] before reserving anything', async () => {
    await expect(createWasmBackend({ memoryBytes: 1024 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(createWasmBackend({ memoryBytes: 2 ** 33 })).rejects.toMatchObject({ field: 'options.memoryBytes' });
  });

  it('without WebAssembly SIMD, rejects naming it, and auto selection falls back to the next backend', async () => {
    vi.spyOn(WebAssembly, 'validate').mockReturnValue(false);
    const err = await createWasmBackend({ memoryBytes: 2 ** 24 }).catch((e) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect(err.message).toMatch(/WebAssembly SIMD/);
    registerBackend('wasm-under-test', () => createWasmBackend({ memoryBytes: 2 ** 24 }), 1e9);
    registerBackend('cpu-under-test', () => new CpuBackend(), 1e9 - 1);
    expect((await resolveBackend()).name).toBe('cpu');
  });

  it('describes itself: both dtypes, a WebAssembly device, a budget within the reserved memory', async () => {
    const backend = await createWasmBackend({ memoryBytes: 2 ** 26 });
    expect(backend.name).toBe('wasm');
    expect(backend.capabilities.dtypes).toEqual(['float64', 'float32']);
    expect(backend.capabilities.device).toMatch(/^WebAssembly SIMD \(128-bit\), \d+ threads?, 64 MiB memory/);
    expect(backend.capabilities.limits.maxTotalBytes).toBeLessThanOrEqual(backend.heapUsage().capacityBytes);
    // A tensor of the CPU backend is not this backend's.
    const foreign = new CpuBackend().fill([2], 0, 'float64');
    expect(() => backend.unary('neg', foreign)).toThrow(/a tensor of this wasm backend/);
  });
});

describe('memory', () => {
  it('returns to its baseline after 1,000 evaluations, including failing and aborted ones', async () => {
    const backend = await createWasmBackend({ memoryBytes: 2 ** 26 });
    const cells = [gru.random({ inputSize: 2, hiddenSize: 4, seed: 1 }), lstm.random({ inputSize: 2, hiddenSize: 3, seed: 2 })];
    const inputs = { data: Float64Array.from({ length: 24 * 2 }, (_, i) => Math.sin(i)), shape: [24, 2] };
    const methods = ['sequential', 'quasi-deer', 'deer', 'quasi-elk', 'elk'] as const;
    const baseline = backend.heapUsage().usedBytes;
    let failed = 0;
    let aborted = 0;
    for (let i = 0; i < 1000; i++) {
      const dtype = i % 2 === 0 ? 'float64' : 'float32';
      const method = methods[i % methods.length];
      if (i % 10 === 3) {
        // A cell that throws mid-run (op by op: custom cells have no program).
        await expect(evaluate(failingCell(3, 2), inputs, { backend, dtype, method })).rejects.toThrow('cell failed');
        failed++;
      } else if (i % 10 === 7) {
        // Aborted from the first iteration report, on the fused path.
        const controller = new AbortController();
        const run = evaluate(cells[i % 2], inputs, { backend, dtype, method: 'quasi-deer', signal: controller.signal, onIteration: () => controller.abort() });
        await expect(run).rejects.toBeInstanceOf(AbortError);
        aborted++;
      } else {
        const result = await evaluate(cells[i % 2], inputs, { backend, dtype, method });
        expect(result.diagnostics.fused).toBe(true);
        result.dispose();
      }
      expect(backend.memory().tensors).toBe(0);
    }
    expect([failed, aborted]).toEqual([100, 100]);
    expect(backend.heapUsage().usedBytes).toBe(baseline);
  });
});

describe('grad', () => {
  const wave = (n: number, seed: number) => Float64Array.from({ length: n }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233) * 0.9);

  it('sweeps the adjoint with the fused kernels, in float64 for float32 solves too: the host sweep\'s gradients at the same trajectory', async () => {
    const wasm = await createWasmBackend({ memoryBytes: 2 ** 28 });
    try {
      const [T, I] = [700, 3];
      const cells = [
        { cell: gru.random({ inputSize: I, hiddenSize: 12, seed: 8 }), G: 36 },
        { cell: lstm.random({ inputSize: I, hiddenSize: 6, seed: 9 }), G: 24 },
      ];
      for (const { cell, G } of cells) {
        const D = cell.stateSize;
        for (const B of [1, 2]) {
          const shape = (w: number) => (B === 1 ? [T, w] : [B, T, w]);
          const inputs = { data: wave(B * T * I, 1), shape: shape(I) };
          const cotangent = { data: wave(B * T * D, 2), shape: shape(D) };
          for (const dtype of ['float64', 'float32'] as const) {
            const got = await grad(cell, inputs, cotangent, { method: 'quasi-deer', dtype, backend: wasm });
            expect([got.adjoint.method, got.adjoint.fused, got.adjoint.converged, got.adjoint.residual]).toEqual(['sequential', true, true, 0]);
            expect(got.adjoint.why).toMatch(/fused adjoint kernels/);
            // Core's host sweep at the trajectory the fused one differentiated, with the weights and
            // inputs rounded as this dtype stores them: both compute in float64, in different orders.
            const want = gradAt(
              cell,
              {
                states: { data: Float64Array.from(got.states.data), shape: [B, T, D] },
                inputs: { data: inputs.data, shape: [B, T, I] },
                initialState: { data: new Float64Array(B * D), shape: [B, D] },
                dtype,
              },
              { data: cotangent.data, shape: [B, T, D] },
            );
            // Each gradient sums B·T products of chains of width G + I over up to T steps.
            const bound = 4 * (B * T + T * (G + I)) * 2 ** -52;
            const pairs = [
              ...Object.keys(want.parameters).map((k) => [k, got.parameters[k].data, want.parameters[k].data] as const),
              ['inputs', got.inputs!.data, want.inputs!.data] as const,
              ['initial state', got.initialState.data, want.initialState.data] as const,
            ];
            for (const [name, a, b] of pairs) expect(maxAbsDiff(a, b), `${cell.kind} B=${B} ${dtype}: ${name}`).toBeLessThanOrEqual(bound * maxAbs(b));
          }
        }
      }
      expect(wasm.memory().tensors, 'tensors left alive').toBe(0);
    } finally {
      wasm.destroy();
    }
  });

  it('an aborted fused sweep rejects with an AbortError and frees everything', async () => {
    const wasm = await createWasmBackend({ memoryBytes: 2 ** 28 });
    try {
      const cell = gru.random({ inputSize: 2, hiddenSize: 8, seed: 3 });
      const T = 400;
      const forward = await evaluate(cell, { data: wave(T * 2, 4), shape: [T, 2] }, { backend: wasm, method: 'sequential' });
      const controller = new AbortController();
      controller.abort();
      await expect(grad(cell, { data: wave(T * 2, 4), shape: [T, 2] }, { data: wave(T * 8, 5), shape: [T, 8] }, { backend: wasm, forward, signal: controller.signal })).rejects.toThrow(AbortError);
      forward.dispose();
      expect(wasm.memory().tensors, 'tensors left alive').toBe(0);
    } finally {
      wasm.destroy();
    }
  });
});

import type { DType, HostArray, Tensor } from '@pelk/core';

/** Typed-array storage shared by a tensor and its views (reshape); freed when the last one is disposed. */
export interface Storage {
  readonly data: HostArray;
  refs: number;
}

/**
 * Where a backend's tensors live: plain typed arrays (the CPU backend's pool) or a WebAssembly
 * memory (`@pelk/backend-wasm`). The ops only see `Storage.data`.
 */
export interface TensorStorage {
  /** New storage of `length` elements; its contents are stale (every op writes all of its output). */
  allocate(dtype: DType, length: number): Storage;
  /** Returns storage whose last tensor was disposed. */
  release(storage: Storage): void;
  /** Drops cached free storage (see `ComputeBackend.trim`). */
  trim(): void;
}

/** Tensor storage in typed arrays recycled through a {@link BufferPool}. */
export class PooledStorage implements TensorStorage {
  constructor(private readonly pool: BufferPool) {}
  allocate(dtype: DType, length: number): Storage {
    return { data: this.pool.take(dtype, length), refs: 1 };
  }
  release(storage: Storage): void {
    this.pool.give(storage.data);
  }
  trim(): void {
    this.pool.clear();
  }
}

/** A tensor of the CPU backend: a row-major typed array with a shape. */
export class CpuTensor implements Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly size: number;
  readonly storage: Storage;
  /** The backend that made it (a tensor is only valid on its own backend). */
  readonly owner: object;
  disposed = false;
  kept = false;
  constructor(storage: Storage, shape: readonly number[], dtype: DType, owner: object) {
    this.storage = storage;
    this.owner = owner;
    this.shape = shape;
    this.dtype = dtype;
    this.size = storage.data.length;
  }
  /** The elements (read-only by convention: ops never mutate their inputs). */
  get data(): HostArray {
    return this.storage.data;
  }
}

/**
 * Recycles typed arrays by dtype and length, so loops that create same-sized temporaries every step
 * (the sequential path, every solver iteration) reuse buffers instead of allocating. Arrays that
 * come out of the pool hold stale data: every op writes all of its output.
 */
export class BufferPool {
  // Keyed by length, one map per dtype: numeric keys keep the lookup cheap in per-step loops.
  private readonly free64 = new Map<number, Float64Array[]>();
  private readonly free32 = new Map<number, Float32Array[]>();
  private pooledBytes = 0;
  /** Arrays larger than this are not kept (bytes), so one huge temporary does not stay resident. */
  constructor(private readonly maxPooledBytes: number) {}

  take(dtype: DType, length: number): HostArray {
    const list = dtype === 'float64' ? this.free64.get(length) : this.free32.get(length);
    const hit = list?.pop();
    if (hit) {
      this.pooledBytes -= hit.byteLength;
      return hit;
    }
    return dtype === 'float64' ? new Float64Array(length) : new Float32Array(length);
  }

  give(data: HostArray): void {
    if (this.pooledBytes + data.byteLength > this.maxPooledBytes) return;
    const map = (data instanceof Float64Array ? this.free64 : this.free32) as Map<number, HostArray[]>;
    let list = map.get(data.length);
    if (!list) {
      list = [];
      map.set(data.length, list);
    }
    list.push(data);
    this.pooledBytes += data.byteLength;
  }

  clear(): void {
    this.free64.clear();
    this.free32.clear();
    this.pooledBytes = 0;
  }

  get bytes(): number {
    return this.pooledBytes;
  }
}

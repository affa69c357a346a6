/**
 * Tensor storage in one WebAssembly memory, managed from JavaScript.
 *
 * The memory is reserved at its full size when the backend is created and never grows: growing a
 * WebAssembly memory detaches every typed-array view of it, and the CPU backend's ops (which this
 * backend reuses) hold views across allocations. A reservation costs address space, not memory —
 * pages are committed when first touched (measured in Node: a 4 GiB reservation adds ~1 MB of
 * resident memory) — but touched pages stay committed for the memory's lifetime.
 *
 * Blocks are 16-byte aligned (v128 loads), handed out first fit by address from a free list that
 * coalesces neighbours, so a workload that frees what it allocates returns to the same footprint.
 */
import type { DType, HostArray } from '@pelk/core';
import { InvalidArgumentError, ResourceLimitError, describeValue } from '@pelk/core';
import type { Storage, TensorStorage } from '@pelk/backend-cpu';

const ALIGN = 16;
const PAGE = 65536;

/** Storage of one tensor: a view of its block of the memory. */
export class HeapStorage implements Storage {
  refs = 1;
  constructor(
    readonly data: HostArray,
    /** Byte offset of the block in the memory. */
    readonly offset: number,
    /** Bytes the block occupies (its size rounded up to the alignment). */
    readonly blockBytes: number,
  ) {}
}

/** A free block: `[offset, offset + size)`. */
interface Block {
  offset: number;
  size: number;
}

/**
 * Reserves the largest memory it can, up to `maxBytes` (halving on refusal, down to 16 MiB);
 * `shared` for worker threads (its buffer is a SharedArrayBuffer).
 */
export function reserveMemory(maxBytes: number, shared = false): WebAssembly.Memory {
  let pages = Math.min(65536, Math.max(256, Math.ceil(maxBytes / PAGE)));
  for (;;) {
    try {
      return new WebAssembly.Memory({ initial: pages, maximum: pages, shared });
    } catch (err) {
      if (pages <= 256) throw err;
      pages = Math.max(256, Math.floor(pages / 2));
    }
  }
}

/** A first-fit allocator over `[base, memory size)` of a fixed-size memory. */
export class WasmHeap implements TensorStorage {
  readonly memory: WebAssembly.Memory;
  /** Free blocks, sorted by offset, never adjacent (coalesced). */
  private readonly free: Block[];
  private used = 0;
  private highWater: number;
  readonly base: number;

  constructor(memory: WebAssembly.Memory, base: number) {
    this.memory = memory;
    this.base = Math.ceil(base / ALIGN) * ALIGN;
    this.highWater = this.base;
    this.free = [{ offset: this.base, size: memory.buffer.byteLength - this.base }];
  }

  /** Bytes the heap can hand out in all. */
  get capacity(): number {
    return this.memory.buffer.byteLength - this.base;
  }

  /** Bytes in allocated blocks now. */
  get usedBytes(): number {
    return this.used;
  }

  /** The highest address ever handed out: the pages touched so far (they stay committed). */
  get footprintBytes(): number {
    return this.highWater - this.base;
  }

  /** A 16-byte-aligned block of at least `bytes` bytes; its byte offset. */
  allocBytes(bytes: number): number {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new InvalidArgumentError('bytes', 'an integer number of bytes ≥ 0', describeValue(bytes));
    const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    const free = this.free;
    for (let i = 0; i < free.length; i++) {
      const b = free[i];
      if (b.size < size) continue;
      const offset = b.offset;
      if (b.size === size) free.splice(i, 1);
      else {
        b.offset += size;
        b.size -= size;
      }
      this.used += size;
      if (offset + size > this.highWater) this.highWater = offset + size;
      return offset;
    }
    throw new ResourceLimitError(
      'memory',
      `at most ${this.capacity - this.used} free bytes of WebAssembly memory in one block`,
      `a tensor of ${size} bytes (the wasm backend holds at most ${this.capacity} bytes; use a smaller T or batch, a diagonal method, or the cpu backend)`,
    );
  }

  /** Returns a block from {@link allocBytes} (`size` as allocated, rounded up to the alignment). */
  freeBytes(offset: number, bytes: number): void {
    const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    this.used -= size;
    const free = this.free;
    // Binary search for the first free block after `offset`.
    let lo = 0;
    let hi = free.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (free[mid].offset < offset) lo = mid + 1;
      else hi = mid;
    }
    const before = lo > 0 ? free[lo - 1] : undefined;
    const after = lo < free.length ? free[lo] : undefined;
    if (before && before.offset + before.size === offset) {
      before.size += size;
      if (after && before.offset + before.size === after.offset) {
        before.size += after.size;
        free.splice(lo, 1);
      }
    } else if (after && offset + size === after.offset) {
      after.offset = offset;
      after.size += size;
    } else {
      free.splice(lo, 0, { offset, size });
    }
  }

  /** A typed-array view of `length` elements at `offset`. */
  view(dtype: DType, offset: number, length: number): HostArray {
    return dtype === 'float64' ? new Float64Array(this.memory.buffer, offset, length) : new Float32Array(this.memory.buffer, offset, length);
  }

  allocate(dtype: DType, length: number): HeapStorage {
    const bytes = length * (dtype === 'float64' ? 8 : 4);
    const offset = this.allocBytes(bytes);
    return new HeapStorage(this.view(dtype, offset, length), offset, Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN));
  }

  release(storage: Storage): void {
    const s = storage as HeapStorage;
    this.freeBytes(s.offset, s.blockBytes);
  }

  /** Nothing is cached: freed blocks return to the free list at once. */
  trim(): void {}
}

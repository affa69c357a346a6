/**
 * Worker threads over the backend's shared WebAssembly memory, fork–join: the calling thread hands
 * each worker one kernel call (an export of the same module, instantiated in every worker over the
 * same memory), runs its own share, and waits on each worker's control word with `Atomics.wait`.
 * Ops stay synchronous, as the `ComputeBackend` contract wants. `Atomics.wait` is allowed in Node's
 * main thread and in Web Workers, not on a browser page's main thread: there the backend runs with
 * one thread (or from a Worker).
 *
 * A worker's control block (in the shared memory): an Int32 state (0 idle, 1 call posted, 2 done,
 * 3 exit), the export's index, the argument count, an error flag; then 16 f64 arguments, whose last
 * slot receives the call's return value.
 */

const CONTROL_BYTES = 16 + 16 * 8;
const STATE_IDLE = 0;
const STATE_POSTED = 1;
const STATE_DONE = 2;
const STATE_EXIT = 3;

/**
 * The worker, as a plain script (no imports): it runs in Node (`worker_threads`, eval) and in
 * browsers (a Blob URL), instantiates the module over the shared memory and serves calls forever.
 */
const WORKER_SOURCE = `
const serve = (data, ready) => {
  const instance = new WebAssembly.Instance(data.module, { env: { memory: data.memory, abort() { throw new Error('pelk wasm kernel aborted'); } } });
  const fns = data.names.map((name) => instance.exports[name]);
  const state = new Int32Array(data.memory.buffer, data.control, 4);
  const args = new Float64Array(data.memory.buffer, data.control + 16, 16);
  ready();
  for (;;) {
    const s = Atomics.load(state, 0);
    if (s === ${STATE_EXIT}) return;
    if (s !== ${STATE_POSTED}) {
      // Sleep until the state changes from what was seen (idle, or done until the caller resets it).
      Atomics.wait(state, 0, s);
      continue;
    }
    try {
      const r = fns[state[1]](...args.subarray(0, state[2]));
      args[15] = typeof r === 'number' ? r : 0;
      state[3] = 0;
    } catch (err) {
      state[3] = 1;
    }
    Atomics.store(state, 0, ${STATE_DONE});
    Atomics.notify(state, 0);
  }
};
if (typeof require === 'function' && require('node:worker_threads').parentPort) {
  const wt = require('node:worker_threads');
  serve(wt.workerData, () => wt.parentPort.postMessage('ready'));
} else {
  self.onmessage = (e) => serve(e.data, () => self.postMessage('ready'));
}
`;

/** One kernel call: an export's name and its arguments (numbers: byte offsets, sizes, flags). */
export interface KernelCall {
  readonly fn: string;
  readonly args: readonly number[];
}

interface WorkerHandle {
  terminate(): unknown;
}

type NodeWorkerThreads = {
  Worker: new (
    code: string,
    options: { eval: true; workerData: unknown },
  ) => WorkerHandle & { once(event: string, fn: (v: unknown) => void): void; unref(): void };
};

/** Why worker threads cannot run here, or undefined when they can. */
export function missingThreadSupport(): string | undefined {
  if (typeof SharedArrayBuffer !== 'function') return 'SharedArrayBuffer (browsers: a cross-origin isolated page)';
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
  } catch {
    return 'Atomics.wait on this thread (a browser page: run pelk in a Web Worker)';
  }
  if (nodeWorkerThreads() === undefined && typeof Worker !== 'function') return 'worker threads (worker_threads or Web Workers)';
  return undefined;
}

function nodeWorkerThreads(): NodeWorkerThreads | undefined {
  const g = globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } };
  try {
    return g.process?.getBuiltinModule?.('node:worker_threads') as NodeWorkerThreads | undefined;
  } catch {
    return undefined;
  }
}

/** Starts one worker and resolves once it has instantiated the module. */
function startWorker(data: { module: WebAssembly.Module; memory: WebAssembly.Memory; control: number; names: readonly string[] }): Promise<WorkerHandle> {
  const node = nodeWorkerThreads();
  if (node) {
    const worker = new node.Worker(WORKER_SOURCE, { eval: true, workerData: data });
    worker.unref(); // an idle pool never keeps Node alive
    return new Promise((resolve, reject) => {
      worker.once('message', () => resolve(worker));
      worker.once('error', reject);
    });
  }
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: 'text/javascript' }));
  const worker = new Worker(url);
  worker.postMessage(data);
  return new Promise((resolve, reject) => {
    worker.onmessage = () => {
      URL.revokeObjectURL(url);
      resolve(worker);
    };
    worker.onerror = (e) => reject(new Error(`pelk wasm worker failed to start: ${e.message}`));
  });
}

/** A pool of `size − 1` workers plus the calling thread. */
export class ThreadPool {
  private readonly index: Map<string, number>;
  private destroyed = false;

  private constructor(
    /** Threads, the calling one included. */
    readonly size: number,
    private readonly workers: WorkerHandle[],
    private readonly states: Int32Array[],
    private readonly args: Float64Array[],
    names: readonly string[],
    private readonly local: Record<string, (...a: number[]) => number | undefined>,
  ) {
    this.index = new Map(names.map((n, i) => [n, i]));
  }

  /**
   * Starts `threads − 1` workers over `memory` (shared), with control blocks at `control`
   * (`threads − 1` blocks of {@link ThreadPool.controlBytes}).
   */
  static async create(
    threads: number,
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    control: number,
    local: Record<string, unknown>,
  ): Promise<ThreadPool> {
    const names = Object.keys(local).filter((n) => typeof local[n] === 'function');
    const workers: WorkerHandle[] = [];
    try {
      for (let w = 0; w < threads - 1; w++) {
        workers.push(await startWorker({ module, memory, control: control + w * CONTROL_BYTES, names }));
      }
    } catch (err) {
      for (const w of workers) w.terminate();
      throw err;
    }
    const states = workers.map((_, w) => new Int32Array(memory.buffer, control + w * CONTROL_BYTES, 4));
    const args = workers.map((_, w) => new Float64Array(memory.buffer, control + w * CONTROL_BYTES + 16, 16));
    return new ThreadPool(threads, workers, states, args, names, local as Record<string, (...a: number[]) => number | undefined>);
  }

  /** Bytes of one worker's control block. */
  static readonly controlBytes = CONTROL_BYTES;

  /**
   * Runs the calls at once — the first on the calling thread, the others on workers 1, 2, … — and
   * returns their return values (0 for kernels that return nothing). At most {@link size} calls.
   */
  run(calls: readonly KernelCall[]): number[] {
    if (this.destroyed) throw new Error('the thread pool of this wasm backend was destroyed');
    if (calls.length > this.size) throw new Error(`at most ${this.size} calls at once, received ${calls.length}`);
    for (const { fn } of calls) if (!this.index.has(fn)) throw new Error(`no kernel '${fn}' in the pelk wasm module`);
    for (let w = 1; w < calls.length; w++) {
      const { fn, args } = calls[w];
      const state = this.states[w - 1];
      const slots = this.args[w - 1];
      for (let i = 0; i < args.length; i++) slots[i] = args[i];
      state[1] = this.index.get(fn)!;
      state[2] = args.length;
      Atomics.store(state, 0, STATE_POSTED);
      Atomics.notify(state, 0);
    }
    const results = new Array<number>(calls.length).fill(0);
    let failed: unknown;
    try {
      if (calls.length > 0) results[0] = this.local[calls[0].fn](...calls[0].args) ?? 0;
    } catch (err) {
      failed = err;
    }
    for (let w = 1; w < calls.length; w++) {
      const state = this.states[w - 1];
      while (Atomics.load(state, 0) === STATE_POSTED) Atomics.wait(state, 0, STATE_POSTED);
      if (state[3] !== 0) failed ??= new Error(`pelk wasm kernel '${calls[w].fn}' failed in worker ${w}`);
      results[w] = this.args[w - 1][15];
      Atomics.store(state, 0, STATE_IDLE);
    }
    if (failed) throw failed;
    return results;
  }

  /** Stops the workers. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const state of this.states) {
      Atomics.store(state, 0, STATE_EXIT);
      Atomics.notify(state, 0);
    }
    for (const w of this.workers) w.terminate();
  }
}

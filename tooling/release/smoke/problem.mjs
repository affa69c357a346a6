// The smoke problem and its float64 oracle: a GRU in PyTorch's convention (gates r, z, n; the reset
// gate applied after the recurrent matmul), written out here so that it shares no code with pelk.

/** Deterministic weights and inputs (a linear congruential generator; no dependencies). */
export function smokeProblem({ T = 300, I = 3, H = 8, seed = 7 } = {}) {
  let state = seed;
  const uniform = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32 - 0.5; // in [-0.5, 0.5)
  };
  const matrix = (rows, cols, scale) => Array.from({ length: rows }, () => Array.from({ length: cols }, () => scale * uniform()));
  const stateDict = {
    weight_ih_l0: matrix(3 * H, I, 1),
    weight_hh_l0: matrix(3 * H, H, 1),
    bias_ih_l0: matrix(1, 3 * H, 0.5)[0],
    bias_hh_l0: matrix(1, 3 * H, 0.5)[0],
  };
  return { stateDict, inputs: matrix(T, I, 2), T, I, H };
}

const sigmoid = (x) => 1 / (1 + Math.exp(-x));

/** h_t for t = 1..T from h_0 = 0, in float64: `[T][H]`. */
export function gruReference(stateDict, inputs) {
  const { weight_ih_l0: wi, weight_hh_l0: wh, bias_ih_l0: bi, bias_hh_l0: bh } = stateDict;
  const H = wh[0].length;
  let h = new Array(H).fill(0);
  const out = [];
  for (const x of inputs) {
    const gi = wi.map((row, k) => bi[k] + row.reduce((acc, w, j) => acc + w * x[j], 0));
    const gh = wh.map((row, k) => bh[k] + row.reduce((acc, w, j) => acc + w * h[j], 0));
    h = h.map((hPrev, j) => {
      const r = sigmoid(gi[j] + gh[j]);
      const z = sigmoid(gi[H + j] + gh[H + j]);
      const n = Math.tanh(gi[2 * H + j] + r * gh[2 * H + j]);
      return (1 - z) * n + z * hPrev;
    });
    out.push(h);
  }
  return out;
}

/** Each backend: its package, the name its `/register` entry registers, how to open it, its dtype. */
export const BACKENDS = {
  cpu: { pkg: '@pelk/backend-cpu', registers: 'cpu', dtype: 'float64', open: async (m) => ({ backend: new m.CpuBackend(), close: async () => {} }) },
  wasm: { pkg: '@pelk/backend-wasm', registers: 'wasm', dtype: 'float64', open: async (m) => ({ backend: await m.createWasmBackend({ memoryBytes: 2 ** 28 }), close: async () => {} }) },
  tfjs: { pkg: '@pelk/backend-tfjs-node', registers: 'tfjs', dtype: 'float32', open: async (m) => ({ backend: await m.createTfjsBackend({ backend: 'cpu' }), close: async () => {} }) },
  webgpu: {
    pkg: '@pelk/backend-webgpu',
    registers: 'webgpu',
    dtype: 'float32',
    open: async (m) => {
      const backend = await m.createWebGpuBackend();
      return { backend, close: () => backend.destroy() };
    },
  },
};

/**
 * Evaluates the smoke GRU with quasi-DEER on one backend and compares it with {@link gruReference}.
 * The modules are passed in, loaded by `import` (eval.mjs) or `require` (require.cjs).
 * Returns the summary printed by the caller; `ok` is false on any mismatch or leak.
 */
export async function runSmoke({ which, core, models, backendModule, loadedWith }) {
  const spec = BACKENDS[which];
  if (!spec) throw new Error(`unknown backend '${which}' (expected ${Object.keys(BACKENDS).join(', ')})`);
  const { stateDict, inputs, T, H } = smokeProblem();
  const want = gruReference(stateDict, inputs);
  const { backend, close } = await spec.open(backendModule);
  try {
    // float64: a tolerance far below the comparison bound; float32: the conformance suite's bound.
    const tolerance = spec.dtype === 'float64' ? 1e-12 : 1e-5;
    const bound = spec.dtype === 'float64' ? 1e-10 : 1e-4;
    const result = await core.evaluate(models.gru.torch(stateDict), inputs, { backend, dtype: spec.dtype, method: 'quasi-deer', tolerance });
    const got = await result.toArray();
    const { converged, reason, iterations, residual } = result;
    result.dispose();
    let maxError = 0;
    for (let t = 0; t < T; t++) for (let i = 0; i < H; i++) maxError = Math.max(maxError, Math.abs(got[t][i] - want[t][i]));
    const liveTensors = backend.memory().tensors;
    const ok = converged && maxError <= bound && liveTensors === 0;
    return { ok, backend: which, loadedWith, device: backend.capabilities.device, dtype: spec.dtype, converged, reason, iterations, residual, maxError, bound, liveTensors };
  } finally {
    await close();
  }
}

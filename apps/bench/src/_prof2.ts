import { evaluate } from '@pelk/core';
import { CpuBackend } from '@pelk/backend-cpu';
import { gru } from '@pelk/models';
import { randomInputs } from './data.js';
const backend = new CpuBackend();
const cell = gru.random({ inputSize: 8, hiddenSize: 64, seed: 1 });
const inputs = randomInputs(1, 20000, 8, 7);
for (let k = 0; k < 4; k++) {
  const r = await evaluate(cell, inputs, { backend, method: 'sequential' });
  console.log((r.diagnostics.elapsedMs * 1000 / 20000).toFixed(2), 'us/step');
  r.dispose();
}

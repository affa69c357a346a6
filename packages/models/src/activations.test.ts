import { CpuBackend } from '@pelk/backend-cpu';
import { InvalidArgumentError } from '@pelk/core';
import { describe, expect, it } from 'vitest';
import { ACTIVATIONS, activation } from './activations.js';

describe('activations', () => {
  const backend = new CpuBackend();
  // Points away from the kinks of relu (0) and hardSigmoid (±2.5).
  const xs = [-4, -2.4, -0.7, -0.1, 0.3, 1.1, 2.4, 3.5];

  for (const name of ACTIVATIONS) {
    it(`${name}: derivative matches central differences of forward`, () => {
      const act = activation(name, 'activation');
      const h = 1e-6;
      backend.tidy(() => {
        const at = (v: number[]) => backend.readSync(act.forward(backend, backend.fromArray(v, [v.length], 'float64')));
        const x = backend.fromArray(xs, [xs.length], 'float64');
        const d = backend.readSync(act.derivative(backend, x, act.forward(backend, x)));
        const plus = at(xs.map((v) => v + h));
        const minus = at(xs.map((v) => v - h));
        for (let i = 0; i < xs.length; i++) expect(Math.abs(d[i] - (plus[i] - minus[i]) / (2 * h))).toBeLessThan(1e-8);
      });
    });
  }

  it("accepts Keras's 'hard_sigmoid' and rejects unknown names naming the field", () => {
    expect(activation('hard_sigmoid', 'x').name).toBe('hardSigmoid');
    expect(() => activation('gelu', 'config.activation')).toThrow(InvalidArgumentError);
    expect(() => activation('gelu', 'config.activation')).toThrow(
      "config.activation: expected one of 'sigmoid', 'hardSigmoid', 'tanh', 'relu', 'linear', received \"gelu\"",
    );
    expect(() => activation('toString', 'a')).toThrow(InvalidArgumentError);
    expect(() => activation(undefined, 'a')).toThrow(InvalidArgumentError);
  });
});

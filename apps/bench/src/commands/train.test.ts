import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CpuBackend } from '@pelk/backend-cpu';
import { evaluate } from '@pelk/core';
import { readModelSpec } from '@pelk/models';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pelk } from '../cli-test-support.js';
import type { TrainSummary } from './train.js';

describe('pelk train ar-sine', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pelk-train-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const train = async (out: string, seed: string) => {
    const run = await pelk('train', 'ar-sine', '--steps', '4', '--batch', '2', '--length', '40', '--seed', seed, '--out', join(dir, out), '--json');
    expect(run.err).toBe('');
    expect(run.code).toBe(0);
    return JSON.parse(run.out) as Omit<TrainSummary, 'text'>;
  };

  it('is reproducible: the same seed writes the same fixture, another seed another; the fixture is its own rollout', async () => {
    const a = await train('a.json', '7');
    await train('b.json', '7');
    await train('c.json', '8');
    const text = (name: string) => readFileSync(join(dir, name), 'utf8');
    expect(text('a.json')).toBe(text('b.json'));
    expect(text('a.json')).not.toBe(text('c.json'));
    expect(a.stability.map((r) => r.method)).toEqual(['deer', 'elk', 'quasi-deer', 'quasi-elk']);
    expect(a.stability.every((r) => r.converged)).toBe(true);
    expect(a.finalLoss).toBeLessThan(a.firstLoss);
    // The fixture reads as a model spec, and its states are the model's sequential rollout.
    const spec = readModelSpec(JSON.parse(text('a.json')));
    expect(spec.cell.kind).toBe('ar');
    expect(spec.cell.stateSize).toBe(4);
    const backend = new CpuBackend();
    const r = await evaluate(spec.cell, spec.inputs, { backend, method: 'sequential', initialState: spec.initialState ?? undefined });
    expect(Array.from(await r.read())).toEqual(spec.states!.flat());
    r.dispose();
  });

  it('refuses an unknown task and a bad --out (exit 2, one line)', async () => {
    const task = await pelk('train', 'mnist', '--out', join(dir, 'x.json'));
    expect(task.code).toBe(2);
    expect(task.err.trim()).toBe(`pelk: task: expected 'ar-sine', received "mnist"`);
    const out = await pelk('train', 'ar-sine', '--out', join(dir, 'x.npy'));
    expect(out.code).toBe(2);
    expect(out.err.trim()).toMatch(/^pelk: --out: expected a path ending in \.json/);
  });
});

/**
 * What an evaluation queued on a device backend: dispatches and submissions, in total and per
 * iteration (`diagnostics.device`), read from the backend's `deviceCounters`.
 */
import type { DeviceCounters } from './backend.js';
import type { DeviceWork } from './types.js';

/** Follows a backend's counters through one evaluation; `mark()` at the end of every iteration. */
export class DeviceTrace {
  private readonly start: DeviceCounters;
  private readonly marks: DeviceCounters[] = [];

  constructor(private readonly read: () => DeviceCounters) {
    this.start = read();
  }

  /** Records the counters at the end of an iteration. */
  mark(): void {
    this.marks.push(this.read());
  }

  /** The evaluation's totals so far, and the median iteration after the first. */
  work(): DeviceWork {
    const end = this.read();
    const total = { dispatches: end.dispatches - this.start.dispatches, submissions: end.submissions - this.start.submissions };
    if (this.marks.length < 2) return total;
    const deltas = (key: keyof DeviceCounters) => this.marks.slice(1).map((m, i) => m[key] - this.marks[i][key]);
    return { ...total, perIteration: { dispatches: median(deltas('dispatches')), submissions: median(deltas('submissions')) } };
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

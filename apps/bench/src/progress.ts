/**
 * Progress on long runs, on stderr (stdout stays clean for `--json`). Uses `cli-progress` on a
 * terminal; elsewhere (logs, CI) it prints a plain line per solver iteration instead.
 */
import type { IterationInfo } from '@pelk/core';
import cliProgress from 'cli-progress';

/** One progress bar for one measured method. */
export class ProgressLine {
  private readonly bar?: cliProgress.SingleBar;
  private started = false;
  private readonly plain: boolean;
  private lastQuarter = -1;

  constructor(
    private readonly label: string,
    quiet = false,
  ) {
    this.plain = !quiet && !process.stderr.isTTY;
    if (quiet || !process.stderr.isTTY) return;
    this.bar = new cliProgress.SingleBar(
      {
        format: `${label.padEnd(28)} {bar} {percentage}% | run {run} | {detail}`,
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: true,
      },
      cliProgress.Presets.shades_classic,
    );
  }

  /**
   * Sequential runs report the fraction of steps done; parallel runs report iterations, shown
   * against the residual's progress from its first value down to 1e-12 on a log scale.
   */
  update(run: number, totalRuns: number, info: IterationInfo): void {
    if (this.plain) {
      this.plainLine(run, totalRuns, info);
      return;
    }
    if (!this.bar) return;
    if (!this.started) {
      this.bar.start(100, 0, { run: '', detail: '' });
      this.started = true;
    }
    const within = info.fraction ?? Math.min(1, Math.max(0, Math.log10(1 / Math.max(info.step, 1e-12)) / 12));
    const detail =
      info.fraction !== undefined
        ? `${(info.elapsedMs / 1000).toFixed(1)} s`
        : `iteration ${info.iteration}, step ${info.step.toExponential(1)}, residual ${info.residual.toExponential(1)}`;
    this.bar.update(Math.round(((run + within) / totalRuns) * 100), { run: `${run + 1}/${totalRuns}`, detail });
  }

  private plainLine(run: number, totalRuns: number, info: IterationInfo): void {
    const prefix = `${this.label} run ${run + 1}/${totalRuns}:`;
    if (info.fraction === undefined) {
      process.stderr.write(`${prefix} iteration ${info.iteration}, step ${info.step.toExponential(1)}, residual ${info.residual.toExponential(1)}\n`);
      return;
    }
    const quarter = Math.floor(info.fraction * 4) + run * 4;
    if (quarter === this.lastQuarter) return;
    this.lastQuarter = quarter;
    process.stderr.write(`${prefix} ${Math.round(info.fraction * 100)}% of steps\n`);
  }

  done(): void {
    if (this.started) this.bar?.stop();
  }
}

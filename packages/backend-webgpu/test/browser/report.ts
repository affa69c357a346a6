/**
 * What the browser page (page/main.ts) hands back to browser.test.ts: plain JSON, so it crosses
 * `page.evaluate`. The page installs two functions on `window` under the names below.
 */

/** `window[PROBE]()`: is there an adapter, and which checks would run (names fix the test list). */
export const PROBE = '__pelkProbe';
/** `window[RUN_CHECKS]()`: runs every check on a fresh backend, then destroys it. */
export const RUN_CHECKS = '__pelkRunChecks';

/** What the probe found. */
export type ProbeResult =
  | { readonly available: false; readonly reason: string }
  | {
      readonly available: true;
      /** `GPUAdapterInfo` fields. */
      readonly adapter: { readonly vendor: string; readonly architecture: string; readonly description: string };
      readonly checks: readonly string[];
    };

/** One check run in the page. */
export interface BrowserCheck {
  readonly name: string;
  readonly ok: boolean;
  /** What failed, or a one-line summary of what was measured. */
  readonly detail: string;
  readonly ms: number;
}

/** The run: each check's outcome, the backend's device description, and any failure outside the checks. */
export interface RunReport {
  readonly device: string;
  readonly checks: readonly BrowserCheck[];
  /** Creating or destroying the backend failed. */
  readonly error?: string;
}

// Prints the totals of a vitest JSON report as one line: "N passed, N failed[, N skipped]".
// A missing or empty report counts as a failure, so a run that executed no test cannot pass unnoticed.
// An optional second argument adds failed checks run outside vitest (the release rehearsal).
import { existsSync, readFileSync } from 'node:fs';

const file = process.argv[2];
const extraFailures = Number(process.argv[3] ?? 0);
if (!file || !existsSync(file)) {
  console.log(`0 passed, ${1 + extraFailures} failed`);
  process.exit(1);
}
const report = JSON.parse(readFileSync(file, 'utf8'));
const passed = report.numPassedTests ?? 0;
const failed = (report.numFailedTests ?? 0) + (report.numTotalTests === 0 ? 1 : 0) + extraFailures;
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);

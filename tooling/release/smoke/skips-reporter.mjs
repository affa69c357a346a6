// A vitest reporter for the release rehearsal's conformance run: writes one JSON line per skipped
// test (its full name and the reason given to `ctx.skip(reason)`, if any) to the file named by
// PELK_SKIPS_FILE, so the rehearsal can log every skip and check that each says why.
import { appendFileSync } from 'node:fs';

export default class SkipsReporter {
  onTestCaseResult(testCase) {
    const result = testCase.result();
    if (result.state !== 'skipped') return;
    appendFileSync(process.env.PELK_SKIPS_FILE, `${JSON.stringify({ name: testCase.fullName, note: result.note ?? null })}\n`);
  }
}

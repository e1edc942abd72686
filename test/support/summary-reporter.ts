import type { Reporter, TestModule } from "vitest/node";

// CI reads a plain "N passed, N failed" closing line. In CI a skipped test is a failure: host tests must never
// pass by quietly not running.
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const counts = { passed: 0, failed: 0, skipped: 0 };
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === "passed") counts.passed++;
        else if (state === "failed") counts.failed++;
        else counts.skipped++;
      }
      if (module.state() === "failed" && module.children.size === 0) counts.failed++;
    }
    if (process.env.CI === "true" && counts.skipped > 0) {
      console.error(`vitest: ${counts.skipped} test(s) skipped in CI; every test must run here`);
      process.exitCode = 1;
    }
    console.log(`\nvitest: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
  }
}

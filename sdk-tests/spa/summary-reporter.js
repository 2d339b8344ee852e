// Prints one plain closing line, "spa-js: N passed, N failed, N skipped", that CI's log reader recognises.
class SummaryReporter {
  constructor() { this.counts = { passed: 0, failed: 0, skipped: 0 }; }
  onTestEnd(test, result) {
    if (result.status === 'skipped') this.counts.skipped++;
    else if (result.status === 'passed') this.counts.passed++;
    else if (result.retry >= test.retries) this.counts.failed++;
  }
  onEnd() {
    const { passed, failed, skipped } = this.counts;
    console.log(`\nspa-js: ${passed} passed, ${failed} failed, ${skipped} skipped`);
  }
  printsToStdio() { return true; }
}
module.exports = SummaryReporter;

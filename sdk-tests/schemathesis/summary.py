"""Prints the run's figures from Schemathesis' JSON report, ending with the line CI reads.

Usage: summary.py REPORT_JSON EXIT_STATUS SECONDS
"""

import json
import sys

path, status, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3]
try:
    report = json.load(open(path))
except (OSError, ValueError) as e:
    print(f"schemathesis: no report ({e})")
    print("schemathesis: 0 passed, 1 failed")
    sys.exit(0)

ops = report["operations"]
cases = report["test_cases"]
failing_ops = sorted({op for f in report["failures"] for op in f["operations"]})
errored = ops.get("errored", 0) + cases.get("errored", 0) + len(report.get("errors", []))
findings = cases["unique_failures"]
print(
    f"schemathesis figures: {ops['tested']} of {ops['total']} operations tested, {cases['generated']} cases, "
    f"{findings} findings ({cases['with_failures']} failing cases), {errored} errors, "
    f"{report['running_time']:.0f} s fuzzing, {seconds} s in all, seed {report['seed']}"
)
for f in report["failures"]:
    print(f"  {f['code']} {f['title']}: {f['count']} in {', '.join(f['operations'])}")
for e in report.get("errors", []):
    print(f"  error: {json.dumps(e)[:300]}")
failed = len(failing_ops)
if status != 0 and failed == 0:
    failed = 1  # an error, a crashed server or a run that did not complete
passed = ops["tested"] - len(failing_ops)
print(f"schemathesis: {passed} passed, {failed} failed")

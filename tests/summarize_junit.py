#!/usr/bin/python3
"""Count individual test cases in JUnit XML files and print the closing line.

usage: summarize_junit.py [--require NAME=FILE ...] [--stage-failed NAME=FILE ...] [FILE ...]

Prints per-file counts, the names of failed cases, and as its LAST line exactly
`N passed, N failed` (with `, N skipped` appended when some were skipped).
Exit status: 0 when nothing failed and at least one case ran, 1 otherwise.

--require NAME=FILE    the file must exist and hold at least one test case;
                       otherwise one failure named NAME is counted.
--stage-failed NAME=FILE  a stage that exited non-zero: if FILE shows no
                       failure, one failure named NAME is counted (so a crash
                       that left no JUnit evidence still fails the run).
Stdlib only.
"""
import argparse
import sys
import xml.etree.ElementTree as ET


def count_file(path):
    """Return (passed, failed, skipped, failed_names) for one JUnit file."""
    root = ET.parse(path).getroot()
    passed = failed = skipped = 0
    names = []
    for case in root.iter("testcase"):
        kinds = {child.tag for child in case}
        status = case.get("status", "")
        name = f"{case.get('classname', '')}::{case.get('name', '')}".strip(":")
        if "failure" in kinds or "error" in kinds:
            failed += 1
            names.append(name)
        elif "skipped" in kinds or status in ("notrun", "skipped"):
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped, names


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--require", action="append", default=[], metavar="NAME=FILE")
    ap.add_argument("--stage-failed", action="append", default=[], metavar="NAME=FILE")
    ap.add_argument("files", nargs="*")
    a = ap.parse_args(argv)

    files = list(a.files)
    required = {}
    for r in a.require:
        name, _, path = r.partition("=")
        required[path] = name
        if path not in files:
            files.append(path)

    passed = failed = skipped = 0
    failed_names = []
    per_file = {}
    for path in files:
        try:
            p, f, s, names = count_file(path)
        except FileNotFoundError:
            p = f = s = 0
            names = []
            print(f"summary: {path}: missing")
            per_file[path] = (0, 0, 0)
            if path in required:
                failed += 1
                failed_names.append(f"{required[path]} (no test results: {path} is missing)")
            continue
        except ET.ParseError as e:
            print(f"summary: {path}: unreadable JUnit XML ({e})")
            p, f, s, names = 0, 1, 0, [f"{path} (unreadable)"]
        per_file[path] = (p, f, s)
        if path in required:
            # the same test runs in several stages (normal, sanitizer): say which
            names = [f"{required[path]}: {n}" for n in names]
        print(f"summary: {path}: {p} passed, {f} failed, {s} skipped")
        passed, failed, skipped = passed + p, failed + f, skipped + s
        failed_names += names
        if path in required and p + f + s == 0:
            failed += 1
            failed_names.append(f"{required[path]} (no test results in {path})")

    for r in a.stage_failed:
        stage, _, path = r.partition("=")
        # the stage's own failed cases already count; add one only without them
        if per_file.get(path, (0, 0, 0))[1] == 0:
            failed += 1
            failed_names.append(f"{stage} (exited non-zero without a failed test case in {path or 'its results'})")

    for n in failed_names:
        print(f"FAILED: {n}")
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 0 if failed == 0 and passed + failed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())

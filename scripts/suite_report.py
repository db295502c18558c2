#!/usr/bin/env python3
"""Purpose: turn the results of scripts/test.sh's stages into one verdict: a
  table with passed / failed / skipped and the duration of every stage, the
  list of failures and skips, and the closing line "N passed, N failed,
  N skipped" that counts each distinct test once.
Standards: JUnit XML as written by `ctest --output-junit` (CTest >= 3.21),
  GoogleTest's XML report (GTEST_OUTPUT=xml:DIR/) and `pytest --junitxml
  -o junit_family=xunit1` (which adds file= to each case).
Trust: reads files this checkout's own test run wrote; nothing from the network.
Concurrency: none; run once after every stage has ended.
Errors: a missing or unreadable result file, a runner that exited non-zero
  without a failing test, or a stage that ran no test is itself a failure (a
  pseudo-test "<stage>: ..."), never silence. Exit status 1 when anything failed.

Usage: suite_report.py MANIFEST ALLOWLIST
  MANIFEST: one stage a line, tab-separated:
    name  label  seconds  exit_status  kind  result_file
  kind: gtest (a directory: ctest.xml, one case per executable, beside each
  executable's GoogleTest report), ctest | pytest (JUnit XML), plain (lines
  "test_id<TAB>passed|failed|skipped<TAB>message"), build (no tests: a
  non-zero exit is one failure).

How a test counts: its identity is the same in every stage ("Suite.Case",
GoogleTest's name, for unit tests, the pytest node id for integration tests, fuzz:<target>), so a
unit test run plain, under ASan/UBSan and under TSan is one test. Its verdict
is the worst of its runs: failed in any stage -> failed; else skipped in any
stage -> skipped; else passed. A test that passes plain but fails under a
sanitizer is therefore one failed test.
With CI=true a skip is a failure unless the test id is on the allow-list
(tests/skip-allowlist.txt: "test_id  reason" per line, '#' comments).
"""
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

PASSED, SKIPPED, FAILED = "passed", "skipped", "failed"
RANK = {PASSED: 0, SKIPPED: 1, FAILED: 2}


def first_line(text, limit=200):
    text = (text or "").strip().splitlines()
    line = text[0] if text else ""
    return line if len(line) <= limit else line[:limit] + "..."


def case_verdict(case):
    """(status, message) from a <testcase>'s <failure>/<error>/<skipped>
    children (the same in JUnit and GoogleTest XML); passed when none. A
    failure wins over a skip wherever it stands."""
    verdict = PASSED, ""
    for child in case:
        if child.tag in ("failure", "error"):
            return FAILED, child.get("message") or child.text or child.tag
        if child.tag == "skipped":
            verdict = SKIPPED, child.get("message") or child.text or "skipped"
    return verdict


def junit_cases(path, kind):
    """(test id, status, message) for every <testcase> of a JUnit file."""
    root = ET.parse(path).getroot()
    out = []
    for case in root.iter("testcase"):
        name = case.get("name", "")
        if kind == "pytest":
            file = case.get("file", "")
            classname = case.get("classname", "")
            module = file[:-3].replace("/", ".") if file.endswith(".py") else ""
            inner = classname[len(module) + 1:] if module and classname.startswith(module + ".") else ""
            test_id = "::".join(x for x in (file or classname, inner, name) if x)
        else:
            test_id = name
        status, message = case_verdict(case)
        # CTest writes status="notrun"/"disabled" (a GTEST_SKIP or a DISABLED_ test).
        if status == PASSED and case.get("status") in ("notrun", "disabled"):
            status, message = SKIPPED, case.get("status")
        if status == PASSED and case.get("status") == "fail":
            status, message = FAILED, "failed"
        out.append((test_id, status, first_line(message)))
    return out


def gtest_cases(directory):
    """The cases of a unit stage: CTest ran each GoogleTest executable once
    (its JUnit, DIRECTORY/ctest.xml, has one case per executable) and each
    executable wrote its own per-case report, DIRECTORY/<executable>.xml
    (GTEST_OUTPUT). An executable that failed in CTest without a failing case
    in its report (a crash, a sanitizer or leak report at exit, a timeout, or
    no report at all) is one failed pseudo-test "<executable>: process"."""
    directory = Path(directory)
    out = []
    runs = junit_cases(directory / "ctest.xml", "ctest")
    for executable, status, message in runs:
        report = directory / f"{executable}.xml"
        cases = []
        if report.exists():
            root = ET.parse(report).getroot()
            for case in root.iter("testcase"):
                test_id = f"{case.get('classname', '')}.{case.get('name', '')}"
                verdict, detail = case_verdict(case)
                if verdict == PASSED and (case.get("status") == "notrun" or case.get("result") == "skipped"):
                    verdict, detail = SKIPPED, case.get("result") or "not run"
                cases.append((test_id, verdict, first_line(detail)))
        out.extend(cases)
        if status != PASSED and not any(v == FAILED for _, v, _ in cases):
            why = "no report was written" if not report.exists() else "no case failed"
            out.append((f"{executable}: process", FAILED,
                        f"{message}; {why} (crash, sanitizer report at exit or timeout: see the stage log)"))
    return out


def plain_cases(path):
    out = []
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        parts = line.split("\t")
        test_id, status = parts[0], parts[1] if len(parts) > 1 else FAILED
        message = parts[2] if len(parts) > 2 else ""
        out.append((test_id, status if status in RANK else FAILED, first_line(message)))
    return out


def read_allowlist(path):
    allowed, problems = {}, []
    p = Path(path)
    if not p.exists():
        return allowed, problems
    for n, raw in enumerate(p.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) < 2 or not parts[1].strip():
            problems.append(f"{path}:{n}: an entry needs a reason after the test id")
            continue
        allowed[parts[0]] = parts[1].strip()
    return allowed, problems


def main():
    manifest, allowlist_path = sys.argv[1], sys.argv[2]
    in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    allowed, allow_problems = read_allowlist(allowlist_path)

    stages = []        # (label, seconds, {status: count})
    verdict = {}       # test id -> (status, stage label, message)
    failures = []      # (stage label, test id, message)
    skips = []         # (stage label, test id, message, allowed?)
    allowed_seen = set()

    def record(label, counts, test_id, status, message):
        if status == SKIPPED:
            ok = test_id in allowed or not in_ci
            skips.append((label, test_id, message, test_id in allowed))
            if test_id in allowed:
                allowed_seen.add(test_id)
            if not ok:
                status = FAILED
                message = f"skipped in CI and not on {allowlist_path}: {message}"
        counts[status] += 1
        if status == FAILED:
            failures.append((label, test_id, message))
        old = verdict.get(test_id)
        if old is None or RANK[status] > RANK[old[0]]:
            verdict[test_id] = (status, label, message)

    for line in Path(manifest).read_text().splitlines():
        if not line.strip():
            continue
        name, label, seconds, rc, kind, result = line.split("\t")
        rc = int(rc)
        counts = {PASSED: 0, FAILED: 0, SKIPPED: 0}
        stages.append((label, float(seconds), counts, kind))
        if kind == "build":
            if rc != 0:
                record(label, counts, f"{name}: build", FAILED, f"exited with status {rc}")
            continue
        try:
            if kind == "plain":
                cases = plain_cases(result)
            elif kind == "gtest":
                cases = gtest_cases(result)
            else:
                cases = junit_cases(result, kind)
        except (OSError, ET.ParseError) as e:
            record(label, counts, f"{name}: results", FAILED, f"no readable results in {result}: {e}")
            continue
        # One stage may report the same test twice (pytest: a failing call
        # and a failing teardown): count it once, at its worst.
        merged = {}
        for test_id, status, message in cases:
            if test_id not in merged or RANK[status] > RANK[merged[test_id][0]]:
                merged[test_id] = (status, message)
        for test_id, (status, message) in merged.items():
            record(label, counts, test_id, status, message)
        if not merged:
            record(label, counts, f"{name}: runner", FAILED, "ran no test")
        elif rc != 0 and counts[FAILED] == 0:
            record(label, counts, f"{name}: runner", FAILED,
                   f"exited with status {rc} although no test failed (crash, timeout or collection error?)")

    for problem in allow_problems:
        failures.append(("allow-list", allowlist_path, problem))

    # Report.
    if skips:
        print("\nskipped:")
        for label, test_id, message, ok in skips:
            tag = "allow-listed" if ok else ("NOT ALLOWED IN CI" if in_ci else "skip")
            print(f"  [{label}] {test_id} ({tag}): {message}")
    stale = sorted(set(allowed) - allowed_seen)
    if stale:
        print("\nallow-list entries that skipped nothing this run (remove them if stale):")
        for test_id in stale:
            print(f"  {test_id}")
    if failures:
        print("\nfailed:")
        for label, test_id, message in failures:
            print(f"  [{label}] {test_id}: {message}")

    width = max(len(s[0]) for s in stages) if stages else 5
    print(f"\n{'stage':<{width}}  {'passed':>6}  {'failed':>6}  {'skipped':>7}  {'time':>8}")
    total_seconds = 0.0
    for label, seconds, counts, kind in stages:
        total_seconds += seconds
        if kind == "build":
            cells = ("", "1" if counts[FAILED] else "", "")
        else:
            cells = (str(counts[PASSED]), str(counts[FAILED]), str(counts[SKIPPED]))
        minutes = f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
        print(f"{label:<{width}}  {cells[0]:>6}  {cells[1]:>6}  {cells[2]:>7}  {minutes:>8}")
    print(f"{'sum of the stage times':<{width}}  {'':>6}  {'':>6}  {'':>7}  "
          f"{int(total_seconds // 60):>4}m{int(total_seconds % 60):02d}s")
    wall = os.environ.get("HIKYAKU_SUITE_SECONDS", "")
    if wall.isdigit():  # the stages overlap (background builds, fuzzing beside a stage)
        wall = int(wall)
        print(f"{'wall clock':<{width}}  {'':>6}  {'':>6}  {'':>7}  {wall // 60:>4}m{wall % 60:02d}s")

    passed = sum(1 for s, _, _ in verdict.values() if s == PASSED)
    failed = sum(1 for s, _, _ in verdict.values() if s == FAILED) + len(allow_problems)
    skipped = sum(1 for s, _, _ in verdict.values() if s == SKIPPED)
    print(f"\ndistinct tests (each counted once over all stages; failed in any stage = failed):")
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

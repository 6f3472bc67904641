#!/usr/bin/env python3
"""Fails (exit 1) on any schemathesis failure that no allow-list entry explains, or when a
run lost its credentials.

Usage: schemathesis_gate.py ALLOWED.txt RUN [RUN ...]

Each RUN is a schemathesis run's JUnit report and its console output, as REPORT.xml:OUTPUT.txt.

REPORT.xml is schemathesis' JUnit report: one <testcase> per operation, whose <failure> (or <error>)
text holds one block per failing test case ("1. Test Case ID: ..."). ALLOWED.txt holds
entries `OPERATION-REGEX ::: TEXT-REGEX`, each under a comment naming the rule it stands
for; a block is allowed when one entry's first regex matches the operation (`POST
/api/v1/sites`) and its second matches somewhere in the block. Every block that no entry
allows is printed, and so is each entry that allowed nothing (a rule that may have gone).

A run whose output warns "Authentication failed" (operations that answered only 401/403)
fails the gate: those operations were never reached, whatever their reports say. So do runs
that together test fewer operations than the document has (each run selects a share).
"""
import re
import sys
import xml.etree.ElementTree as ET


def entries(path):
    out = []
    rule = None
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        if line.startswith("#"):
            rule = rule if rule and not line.startswith("# rule:") else line[1:].strip()
            continue
        operation, _, text = line.partition(" ::: ")
        out.append({"rule": rule, "operation": re.compile(operation.strip()),
                    "text": re.compile(text.strip(), re.S), "used": 0})
    return out


def cases(runs):
    for report in runs:
        yield from ET.parse(report).iter("testcase")


def main():
    allowed, runs = sys.argv[1], [run.split(":", 1) for run in sys.argv[2:]]
    rules = entries(allowed)
    unexplained = []
    blocks = 0
    for case in cases(report for report, _ in runs):
        label = case.get("name", "")
        for kind in ("failure", "error"):
            for element in case.findall(kind):
                text = element.text or element.get("message") or ""
                for block in re.split(r"\n\n(?=\d+\. Test Case ID:)", text):
                    if not block.strip():
                        continue
                    blocks += 1
                    match = next((r for r in rules if r["operation"].search(label)
                                  and r["text"].search(block)), None)
                    if match is None:
                        unexplained.append((label, block))
                    else:
                        match["used"] += 1
    for rule in rules:
        print(f"allowed {rule['used']:4d}  {rule['rule']}")
    for label, block in unexplained:
        print(f"\n--- NOT ALLOWED: {label}\n{block[:3000]}")
    print(f"\n{blocks} failing test cases, {len(unexplained)} not explained by the allow-list")
    unreached = [output for _, output in runs
                 if "Authentication failed" in open(output, encoding="utf-8").read()]
    for output in unreached:
        print(f"{output}: operations answered only 401/403 (the run lost its token)")
    # The runs split the operations between them: together they must test every one.
    tested, total = 0, None
    for _, output in runs:
        text = open(output, encoding="utf-8").read()
        selected = re.search(r"Selected: (\d+)/(\d+)", text)
        done = re.search(r"Tested: (\d+)", text)
        if selected and done:
            tested += int(done.group(1))
            total = int(selected.group(2))
    covered = total is not None and tested == total
    print(f"operations tested: {tested} of {total}")
    return 1 if unexplained or unreached or not covered else 0


if __name__ == "__main__":
    sys.exit(main())

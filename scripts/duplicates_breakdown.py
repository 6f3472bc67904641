#!/usr/bin/env python3
"""Sorts the pairs that the workplace's `duplicates` tool reports over src/ into three kinds,
so that the count can be read (issue 10, docs/decisions.md #27):

- thin handlers: two of the eight resource handler files, whose repeated shape is the
  doc comment + `#[utoipa::path]` + route + one-line body that each handler must keep;
- declarations: the pair's longest shared run is declarations on both sides (struct
  fields, attributes, enum variants, table rows, constants), not statements;
- code: the rest, listed with the first lines that are not declarations.

Usage, from the repository root:
    duplicates --repo src --most 200 --seconds 120 > /tmp/dups.txt
    python3 scripts/duplicates_breakdown.py /tmp/dups.txt

A regex reading of the lines, so a reading aid rather than a verdict.
"""

import re
import sys
from pathlib import Path

HANDLERS = {
    f"api/{name}.rs"
    for name in "studies sites vendors milestones budget_lines expenses risks deviations".split()
}

DECLARATION = re.compile(
    r"""^\s*(
        (pub(\([a-z]+\))?\s+)?[a-z_][a-z0-9_]*\s*:\s*[^=;]+,?   # a field
      | (pub(\([a-z]+\))?\s+)?(struct|enum|const|type)\s.*      # an item header
      | \#!?\[.*                                                 # an attribute
      | [A-Z][A-Za-z0-9]*(::[A-Za-z0-9_]+)*\s*(\{|\(.*\))?,?    # a variant, a path
      | [a-z_]+\s*->\s*.*,?                                      # a diesel column
      | [a-z_]+\s*=\s*.*,?                                       # an attribute argument
      | ".*",?  | \(.*\),?  | [\)\]\}]+[,;]?                     # literals, closers
      | //.* |
    )\s*$""",
    re.VERBOSE,
)


def lines(place: str, root: Path) -> list[str]:
    path, span = place.rsplit(":", 1)
    first, last = (int(n) for n in span.split("-"))
    return (root / path).read_text().split("\n")[first - 1 : last]


def main() -> None:
    report = Path(sys.argv[1]).read_text().splitlines()
    root = Path(sys.argv[2] if len(sys.argv) > 2 else "src")
    rows = [line.split() for line in report if re.match(r"^D\d+ ", line)]
    kinds: dict[str, list[str]] = {"thin handlers": [], "declarations": [], "code": []}
    for row in rows:
        left, right = row[1], row[3]
        files = {left.rsplit(":", 1)[0], right.rsplit(":", 1)[0]}
        if files <= HANDLERS and len(files) == 2:
            kinds["thin handlers"].append(row[0])
            continue
        statements = [
            line.strip()
            for line in lines(left, root) + lines(right, root)
            if not DECLARATION.match(line)
        ]
        if len(statements) <= 2:
            kinds["declarations"].append(row[0])
        else:
            kinds["code"].append(f"{row[0]} {left} ~ {right}: {' | '.join(statements[:3])}")
    print(report[0])
    for kind, found in kinds.items():
        print(f"{kind}: {len(found)}")
    print("\ncode:")
    print("\n".join(kinds["code"]))


if __name__ == "__main__":
    main()

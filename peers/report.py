#!/usr/bin/env python3
"""The comparison table of scripts/conform-peers, from `hijack conform --json` reports.

Usage: peers/report.py target/conform/NAME.json ...   (NAME names the implementation)

Prints markdown: one row per implementation, one column per case group, each cell
PASS/FAIL/NON-STRICT/UNSUPPORTED counts, then the memory figure; then every case that did not
PASS, per implementation. Reads the report's fields (src/conform/report.rs): `cases[]` with
`name`, `group`, `verdict`, `figures.bytes_per_connection`; it judges nothing itself.
"""

import json
import pathlib
import sys

VERDICTS = ["PASS", "FAIL", "NON-STRICT", "UNSUPPORTED"]


def load(path):
    with open(path, encoding="utf-8") as f:
        return pathlib.Path(path).stem, json.load(f)


def cell(cases):
    counts = [sum(1 for c in cases if c["verdict"] == v) for v in VERDICTS]
    return "/".join(str(n) for n in counts) if cases else "–"


def memory(cases):
    for c in cases:
        f = c.get("figures")
        if f:
            return f"{f['bytes_per_connection']:,} B ({c['verdict']})"
    # No figures: the case was UNSUPPORTED, or absent from the run.
    mem = [c for c in cases if c["group"] == "memory"]
    return mem[0]["verdict"] if mem else "–"


def main(paths):
    reports = [load(p) for p in paths]
    groups = []
    for _, r in reports:
        for c in r["cases"]:
            if c["group"] not in groups:
                groups.append(c["group"])
    out = []
    out.append(
        "Each cell: PASS/FAIL/NON-STRICT/UNSUPPORTED cases. Memory: live heap bytes retained "
        "per held hijacked connection (`memory/retained-per-hijack`)."
    )
    out.append("")
    out.append("| implementation | " + " | ".join(groups) + " | all | retained per hijack |")
    out.append("|---|" + "---|" * (len(groups) + 2))
    for name, r in reports:
        cases = r["cases"]
        cells = [cell([c for c in cases if c["group"] == g]) for g in groups]
        out.append(f"| {name} | " + " | ".join(cells) + f" | {cell(cases)} | {memory(cases)} |")
    out.append("")
    for name, r in reports:
        misses = [c for c in r["cases"] if c["verdict"] != "PASS"]
        if not misses:
            continue
        out.append(f"{name}: " + ", ".join(f"`{c['name']}` {c['verdict']}" for c in misses))
        out.append("")
    print("\n".join(out).rstrip())


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: peers/report.py REPORT.json ...")
    main(sys.argv[1:])

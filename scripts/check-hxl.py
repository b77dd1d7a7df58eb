#!/usr/bin/env python3
"""Checks HXL exports with libhxl, an outside judge: every file parses as HXL, every column carries a hashtag,
every hashtag is a core HXL 1.1 hashtag, and libhxl's default schema (dates are dates, numbers are numbers)
finds no error. Prints one JSON object per file and exits 1 if any file fails.

Usage: check-hxl.py FILE...
"""
import json
import sys

import hxl
import hxl.input
import hxl.validation

# The hashtags of the HXL 1.1 core dictionary (https://hxlstandard.org/standard/1-1final/dictionary/).
CORE = {
    "access", "activity", "adm1", "adm2", "adm3", "adm4", "adm5", "affected", "beneficiary", "capacity", "cause", "channel",
    "contact", "country", "crisis", "currency", "date", "delivery", "description", "event", "financial", "frequency", "geo",
    "group", "impact", "indicator", "inneed", "item", "loc", "meta", "modality", "need", "operations", "org", "output",
    "population", "reached", "region", "respondee", "sector", "service", "severity", "status", "subsector", "targeted", "value",
}


def check(path):
    problems = []
    with open(path, encoding="utf-8") as f:
        header = f.readline()
    source = hxl.data(path, hxl.input.InputOptions(allow_local=True))
    columns = source.columns
    header_count = len(next(iter([header.rstrip("\r\n").split(",")])))
    tags = [c.display_tag for c in columns]
    if len(columns) < header_count:
        problems.append("%d header columns but %d tagged" % (header_count, len(columns)))
    for c in columns:
        if not c.tag:
            problems.append("column %r has no hashtag" % c.header)
        elif c.tag.lstrip("#") not in CORE:
            problems.append("column %r: %s is not a core HXL hashtag" % (c.header, c.tag))
    # Tags shared by columns must be told apart by attributes.
    seen = {}
    for c in columns:
        key = c.get_display_tag(sort_attributes=True)
        if key in seen:
            problems.append("columns %r and %r have the same tag %s" % (seen[key], c.header, key))
        seen[key] = c.header
    rows = 0
    for _ in source:
        rows += 1
    errors = []
    schema = hxl.validation.schema()
    schema.callback = lambda e: errors.append(e)
    schema.validate(hxl.data(path, hxl.input.InputOptions(allow_local=True)))
    for e in errors:
        if e.rule.severity == "error":
            problems.append("schema: %s (%s, row %s, value %r)" % (e.message, e.rule.tag_pattern, getattr(e.row, "row_number", "?"), e.value))
    return {"file": path, "rows": rows, "columns": len(columns), "tags": tags, "problems": problems[:20]}


def main(paths):
    failed = False
    for path in paths:
        try:
            result = check(path)
        except Exception as e:  # a file libhxl cannot read at all
            result = {"file": path, "problems": ["libhxl could not read it: %s" % e]}
        failed = failed or bool(result["problems"])
        print(json.dumps(result))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

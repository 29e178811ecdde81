"""What `rtp test` writes besides the terminal: JUnit XML, and updated expectations."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from rtp.testing.runner import Outcome


def write_junit(path: Path, outcomes: list[Outcome], seconds: float) -> None:
    """One testsuite, one testcase per case (classname = pipe), failures with details."""
    failed = sum(not o.passed for o in outcomes)
    suite = ET.Element(
        "testsuite",
        name="rtp",
        tests=str(len(outcomes)),
        failures=str(failed),
        errors="0",
        time=f"{seconds:.3f}",
    )
    for o in outcomes:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=o.case.pipe,
            name=o.case.name,
            file=o.case.file,
            time=f"{o.seconds:.3f}",
        )
        if not o.passed:
            failure = ET.SubElement(case, "failure", message=o.failures[0])
            failure.text = "\n".join(o.failures)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def ndjson(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def update_expected(root: Path, outcomes: list[Outcome]) -> list[Outcome]:
    """Rewrite ``expected_result`` of failing cases with what the endpoint answered,
    editing only that value's text so comments and layout elsewhere stay. Returns the
    outcomes whose file changed."""
    by_file: dict[str, list[Outcome]] = {}
    for o in outcomes:
        if o.passed or o.rows is None or o.case.expected_result is None:
            continue
        if o.case.expected_status not in (None, 200):
            continue
        by_file.setdefault(o.case.file, []).append(o)
    changed = []
    for rel, items in by_file.items():
        path = root / rel
        text = path.read_text(encoding="utf-8")
        # from the end of the file backwards, so earlier offsets stay valid
        for o in sorted(
            items, key=lambda o: -o.case.doc.spans[(o.case.index, "expected_result")][0]
        ):
            doc, i = o.case.doc, o.case.index
            start, end = doc.spans[(i, "expected_result")]
            indent = " " * (doc.key_marks[(i, "expected_result")][1] - 1 + 2)
            if o.rows:
                new = "|\n" + "".join(indent + line + "\n" for line in ndjson(o.rows).splitlines())
                if end < len(text) and text[end] == "\n" and not text[start:end].endswith("\n"):
                    end += 1  # a flow value on the key's line: its newline is in `new`
            else:
                new = '""'
                if text[start:end].endswith("\n"):
                    new += "\n"
            text = text[:start] + new + text[end:]
            changed.append(o)
        path.write_text(text, encoding="utf-8")
    return changed

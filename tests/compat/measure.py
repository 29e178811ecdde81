"""How much of the public Tinybird corpus (tests/compat/projects) rtp reads and checks.

``python -m tests.compat.measure [--held-out|--all] [--json] [--add-rtp-yaml] [NAME...]``
(``--calls``: the endpoint calls instead, tests/compat/calls.py)

Per project: the ``.datasource``/``.pipe`` files that load and check without errors, those
with errors (grouped by message, quoted names removed), those never read at all, and the
exit status of ``rtp check``. Each project is copied to a temporary folder first so no
command writes into the corpus. ``--add-rtp-yaml`` writes an ``rtp.yaml`` into the copy
(to measure a version of rtp that needs one).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).parent
PROJECTS = HERE / "projects"
DATAFILES = (".datasource", ".pipe")


def held_out() -> set[str]:
    """Project names listed as held-out in SOURCES.md (a line ``held-out: a, b``)."""
    text = (HERE / "SOURCES.md").read_text(encoding="utf-8")
    m = re.search(r"^held-out:\s*(.+)$", text, re.M)
    return {n.strip() for n in m.group(1).split(",")} if m else set()


@dataclass
class Result:
    name: str
    files: int = 0
    ok: int = 0
    failed: int = 0
    unread: int = 0
    exit_code: int | None = None
    groups: Counter = field(default_factory=Counter)  # "RTPxxx message" -> files
    warnings: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "files": self.files,
            "ok": self.ok,
            "failed": self.failed,
            "unread": self.unread,
            "check_exit": self.exit_code,
            "groups": dict(self.groups),
            "warnings": dict(self.warnings),
        }


def _group(problem) -> str:
    message = re.sub(r"(?<![A-Za-z])'[^']*'", "'…'", problem.message)
    message = re.sub(r"/\S+", "…", message)
    message = re.sub(r"\d+", "N", message)[:110]
    return f"{problem.code} {message}"


def measure(folder: Path, *, add_rtp_yaml: bool = False) -> Result:
    from typer.testing import CliRunner

    from rtp.check import check_project
    from rtp.cli.main import app
    from rtp.errors import Problems, RtpError
    from rtp.project.load import load_project

    result = Result(folder.name)
    with tempfile.TemporaryDirectory(prefix="rtp-compat-") as tmp:
        root = Path(tmp) / folder.name
        shutil.copytree(folder, root)
        if add_rtp_yaml and not (root / "rtp.yaml").exists():
            (root / "rtp.yaml").write_text(f"name: {folder.name.replace('-', '_')}\n")
        files = sorted(
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.suffix in DATAFILES and p.is_file()
        )
        result.files = len(files)
        problems = Problems()
        read: set[str] = set()
        try:
            model, problems = load_project(root)
            check_project(model, problems)
            read = {r.file for r in (*model.datasources.values(), *model.pipes.values())}
        except RtpError as exc:
            problems.add(exc)
        by_file: dict[str, set[str]] = {}
        for problem in problems:
            file = problem.location.file if problem.location else None
            target = result.groups if problem.severity == "error" else result.warnings
            if file is None:
                target[_group(problem)] += 1
                continue
            if problem.severity == "error":
                by_file.setdefault(file, set()).add(_group(problem))
            else:
                target[_group(problem)] += 1
            read.add(file)
        for file in files:
            if file in by_file:
                result.failed += 1
                for group in by_file[file]:
                    result.groups[group] += 1
            elif file in read:
                result.ok += 1
            else:
                result.unread += 1
        runner = CliRunner()
        out = runner.invoke(app, ["check", "-p", str(root)], catch_exceptions=True)
        result.exit_code = out.exit_code
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--held-out", action="store_true", help="only the held-out projects")
    which.add_argument("--all", action="store_true", help="tuning and held-out projects")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--add-rtp-yaml", action="store_true")
    parser.add_argument("--calls", action="store_true", help="deploy, serve, call endpoints")
    args = parser.parse_args(argv)
    out = held_out()
    names = args.names or sorted(
        p.name
        for p in PROJECTS.iterdir()
        if p.is_dir() and (args.all or (p.name in out) == args.held_out)
    )
    if args.calls:
        return _print_calls(names, as_json=args.json)
    results = [measure(PROJECTS / n, add_rtp_yaml=args.add_rtp_yaml) for n in names]
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
        return 0
    total = Counter()
    groups: Counter = Counter()
    warnings: Counter = Counter()
    print(f"{'project':32} {'files':>5} {'ok':>5} {'errors':>6} {'unread':>6}  check")
    for r in results:
        print(f"{r.name:32} {r.files:5} {r.ok:5} {r.failed:6} {r.unread:6}  exit {r.exit_code}")
        total.update(
            files=r.files, ok=r.ok, failed=r.failed, unread=r.unread, check_ok=int(r.exit_code == 0)
        )
        groups.update(r.groups)
        warnings.update(r.warnings)
    pct = 100 * total["ok"] / max(1, total["files"])
    print(
        f"{'TOTAL':32} {total['files']:5} {total['ok']:5} {total['failed']:6} "
        f"{total['unread']:6}  {total['check_ok']}/{len(results)} exit 0   ({pct:.0f}% ok)"
    )
    for title, counter in (("errors (files)", groups), ("warnings", warnings)):
        if counter:
            print(f"\n{title}:")
            for group, n in counter.most_common():
                print(f"  {n:4}  {group}")
    return 0


def _print_calls(names: list[str], *, as_json: bool) -> int:
    from tests.compat.calls import measure_calls

    results = [measure_calls(PROJECTS / n) for n in names]
    if as_json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
        return 0
    total: Counter = Counter()
    groups: Counter = Counter()
    print(f"{'project':32} {'endpoints':>9} {'calls':>5} {'answered':>8}  deploy")
    for r in results:
        print(f"{r.name:32} {r.endpoints:9} {r.calls:5} {r.answered:8}  exit {r.deploy_exit}")
        total.update(endpoints=r.endpoints, calls=r.calls, answered=r.answered)
        groups.update(r.groups)
    pct = 100 * total["answered"] / max(1, total["calls"])
    print(
        f"{'TOTAL':32} {total['endpoints']:9} {total['calls']:5} {total['answered']:8}"
        f"  ({pct:.0f}% answered as Tinybird would)"
    )
    if groups:
        print("\nnot answered (calls):")
        for group, n in groups.most_common():
            print(f"  {n:4}  {group}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

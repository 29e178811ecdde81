"""``.rtp/`` is spelled in one module (rtp/engine/paths.py): every other module asks it."""

from __future__ import annotations

import ast
import re
import stat
from pathlib import Path

from rtp.engine import paths

RTP = Path(__file__).resolve().parent.parent / "rtp"
# a path into the state folder, as code would build it: ".rtp", ".rtp/data", "/.rtp"
STATE_PATH = re.compile(r"/?\.rtp(/[\w.-]*)*")


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def test_only_paths_module_spells_the_state_folder():
    found = []
    for file in sorted(RTP.rglob("*.py")):
        if file == RTP / "engine" / "paths.py":
            continue
        tree = ast.parse(file.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docs
                and STATE_PATH.fullmatch(node.value)
            ):
                found.append(f"{file.relative_to(RTP.parent)}:{node.lineno}: {node.value!r}")
    assert not found, "use rtp.engine.paths instead of:\n" + "\n".join(found)


def test_the_check_sees_a_literal(tmp_path):
    """The rule above would catch the forms it is meant to catch."""
    for text in ('Path(root) / ".rtp"', "root / '.rtp/tokens.json'", 'f"{root}/.rtp"'):
        tree = ast.parse(text)
        assert any(
            isinstance(n, ast.Constant)
            and isinstance(n.value, str)
            and STATE_PATH.fullmatch(n.value)
            for n in ast.walk(tree)
        ), text


def test_paths_are_private_and_under_the_state_folder(tmp_path):
    (tmp_path / ".rtp").mkdir(mode=0o755)
    assert paths.owner_file(tmp_path) == tmp_path / ".rtp" / "owner.json"
    assert paths.tokens_file(tmp_path) == tmp_path / ".rtp" / "tokens.json"
    for folder in (
        paths.state_dir(tmp_path),
        paths.data_dir(tmp_path),
        paths.user_files_dir(tmp_path),
    ):
        assert folder.is_dir() and folder.parent in (tmp_path, tmp_path / ".rtp")
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder

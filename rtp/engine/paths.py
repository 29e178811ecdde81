"""Where rtp keeps a project's own state: the one module that knows ``.rtp/``.

Every path under a project's state folder is named here, so the layout is written down
once (a test fails when another module spells the folder's name)::

    <root>/.rtp/              state_dir(root)    mode 0700: the user who runs rtp only
              data/           data_dir(root)     the embedded engine's database
              user_files/     user_files_dir(root)  the engine's (empty) file() folder
              tokens.json     tokens_file(root)  hashed tokens and the JWT secret
              owner.json      owner_file(root)   who holds the embedded engine (pid, url,
                                                 control token)

Functions that return a folder create it (private); those that return a file don't create
the file but do create its (private) folder, except :func:`owner_file`, which only names it
(reading who owns a project must not create its state folder).
"""

from __future__ import annotations

import os
from pathlib import Path

STATE_DIR = ".rtp"


def state_dir(root: Path) -> Path:
    """``<root>/.rtp``, created with mode 0700, or made 0700 when an older rtp left it
    open to the group or others: it holds the database files, the JWT secret and the
    control token, all meant for the user who runs rtp only."""
    path = Path(root) / STATE_DIR
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def _private_dir(root: Path, name: str) -> Path:
    path = state_dir(root) / name
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def data_dir(root: Path) -> Path:
    """``<root>/.rtp/data``: the embedded engine's database folder (created, 0700)."""
    return _private_dir(root, "data")


def user_files_dir(root: Path) -> Path:
    """``<root>/.rtp/user_files``: the embedded engine's ``user_files_path``, an empty
    folder of rtp's (created, 0700)."""
    return _private_dir(root, "user_files")


def versions_dir(root: Path) -> Path:
    """``<root>/.rtp/versions``: the project files of deploy versions, written out to be
    built and served (rtp.ops.stage.version_build; created, 0700)."""
    return _private_dir(root, "versions")


def tokens_file(root: Path) -> Path:
    """``<root>/.rtp/tokens.json``; the ``.rtp`` folder is made private (0700) first."""
    return state_dir(root) / "tokens.json"


def owner_file(root: Path) -> Path:
    """``<root>/.rtp/owner.json``, named only: the folder is not created."""
    return Path(root) / STATE_DIR / "owner.json"

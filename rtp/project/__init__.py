"""Project: read a project's files into a validated, frozen model."""

from rtp.project.load import find_root, load_project

__all__ = ["find_root", "load_project"]

"""Deploy: DDL, desired-vs-live plans and applying them to a backend.

Public API: ``plan(project, backend) -> Plan``,
``apply(plan, backend, *, allow_destructive=False, progress=None)`` and
``deploy(project, backend, *, allow_destructive=False) -> Plan``.
"""

from rtp.deploy.apply import apply, deploy
from rtp.deploy.plan import Change, Plan, plan

__all__ = ["Change", "Plan", "apply", "deploy", "plan"]

"""Deploy: DDL, desired-vs-live plans and applying them to a backend, journaled.

Public API: ``plan(project, backend) -> Plan``,
``apply(plan, backend, *, allow_destructive=False, progress=None)``,
``resume(backend)`` (finish an interrupted deploy from its journal) and
``deploy(project, backend, *, allow_destructive=False) -> Plan`` (resume, plan, apply).
"""

from rtp.deploy.apply import apply, deploy, resume
from rtp.deploy.plan import Change, Plan, plan

__all__ = ["Change", "Plan", "apply", "deploy", "plan", "resume"]

"""Operations: one function per task, called by both ``rtp.cli`` and ``rtp.server``.

Every entry point builds the project once (:func:`rtp.ops.build.build`: load, compile,
check; one immutable :class:`~rtp.ops.build.Build` carrying its problems) and hands it to
the operation, so a command and the server apply the same gates:

- :func:`rtp.ops.build.build` / ``Build.require_valid`` (``rtp check``'s verdict),
- :func:`rtp.ops.deploy.deploy` (``rtp deploy``, ``POST /v0/deploy``, ``rtp dev``,
  ``rtp test``'s engine),
- :func:`rtp.ops.deploy.reload` (build, deploy, then hand the build to a running server),
- :func:`rtp.ops.copy.copy` (``rtp copy run``, the server's scheduler).
"""

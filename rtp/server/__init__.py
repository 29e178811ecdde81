"""The HTTP server: endpoints, event ingestion, tokens, OpenAPI and metrics.

One module per URL resource (``pipes``, ``events``, ``openapi``, ``status``); ``app``
builds the application from a project and a backend; ``query.run_pipe`` is the one code
path that answers an endpoint (``rtp test`` uses it too).
"""

from rtp.server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]


def __getattr__(name: str):
    # FastAPI and its app load only when a server is built: `rtp check`, `rtp test` and
    # `rtp token` import rtp.server modules and shouldn't pay ~0.8 s for them.
    if name == "create_app":
        from rtp.server.app import create_app

        return create_app
    raise AttributeError(name)

"""The HTTP server: endpoints, event ingestion, tokens, OpenAPI and metrics.

One module per URL resource (``pipes``, ``events``, ``openapi``, ``status``); ``app``
builds the application from a project and a backend; ``query.run_pipe`` is the one code
path that answers an endpoint (``rtp test`` uses it too).
"""

from rtp.server.app import create_app
from rtp.server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]

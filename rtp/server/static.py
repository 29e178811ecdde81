"""Web pages next to the API: the folders named by ``static:`` in ``rtp.yaml``.

``static: {storefront: examples/storefront}`` serves that folder at ``/storefront/`` on the
same origin as the endpoints, so a page calls ``/v0/...`` without CORS. Files are public
(a page gets its token from its own URL, ``?token=``) and sent with ``Cache-Control:
no-cache``, so an edited file shows on the next reload.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from rtp.project.model import Project


class Pages(StaticFiles):
    async def get_response(self, path, scope):
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "no-cache"
        return response


def mount(app: FastAPI, project: Project) -> list[str]:
    """Mount every configured folder that exists; returns the URL paths (``/storefront/``).
    They are read when the app is created: a change of ``static:`` needs a restart."""
    paths = []
    for name, folder in project.settings.static:
        directory = project.root / folder
        if directory.is_dir():
            app.mount(f"/{name}", Pages(directory=directory, html=True), name=f"static:{name}")
            paths.append(f"/{name}/")
    return paths

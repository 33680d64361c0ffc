"""The ``lossboard`` tab of TensorBoard: a dynamic plugin with its own ES-module frontend.

Installing lossboard registers it (the ``tensorboard_plugins`` entry point in setup.cfg), so
``tensorboard --logdir ROOT`` shows the tab whenever ROOT holds runs in Keras' layout
(``<run>/train``, ``<run>/validation``) or runs with hparams. TensorBoard loads
``static/index.js`` in an iframe and calls its ``render()``; the module asks these routes,
under ``/data/plugin/lossboard/``, for JSON:

- ``info``: the tags, splits and hparams of the runs, and the default ``over``;
- ``configurations?tag=&over=&split=&band=&higher_is_better=&show=``: each configuration's
  mean curve and band, and the table of ``lossboard compare --over``;
- ``members?tag=&over=&split=&config=``: the curves of one configuration's runs;
- ``static/<file>``: the frontend's own files, and nothing else.

A bad query value is answered with HTTP 400 and a message; the routes read only under the
logdir TensorBoard was given.
"""

from __future__ import annotations

import mimetypes
import os
from typing import Any

from tensorboard.backend import http_util
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from lossboard.dashboard.payload import Dashboard
from lossboard.dashboard.query import PARAMETERS, QueryError

#: The plugin's name: its tab, its routes (``/data/plugin/lossboard/...``), ``#lossboard``.
PLUGIN_NAME = "lossboard"
STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
#: The only files ``static/`` serves: the frontend's, by exact name.
STATIC_FILES = frozenset(
    name for name in os.listdir(STATIC) if name.endswith((".js", ".css", ".txt"))
)
_TYPES = {".js": "text/javascript", ".css": "text/css", ".txt": "text/plain"}


class LossboardPlugin(base_plugin.TBPlugin):
    """Configurations over seeds in TensorBoard: one banded mean curve each, and the table.

    TensorBoard creates it from the entry point with its ``TBContext``; nothing to call.

    Examples:
        >>> from tensorboard.plugins import base_plugin
        >>> plugin = LossboardPlugin(base_plugin.TBContext(logdir="no-such-folder"))
        >>> plugin.is_active(), plugin.frontend_metadata().es_module_path
        (False, '/static/index.js')
    """

    plugin_name = PLUGIN_NAME

    def __init__(self, context: base_plugin.TBContext) -> None:
        self._logdir = getattr(context, "logdir", None) or ""
        self._board = Dashboard(self._logdir) if self._logdir else None
        if self._board is not None:
            self._board.warm_up()

    def get_plugin_apps(self) -> dict[str, Any]:
        apps: dict[str, Any] = {f"/{route}": self._route(route) for route in PARAMETERS}
        apps["/static/*"] = wrappers.Request.application(self._serve_static)
        return apps

    def data_plugin_names(self) -> tuple[str, ...]:
        return ()  # no summary of its own: ``is_active`` looks at the runs

    def is_active(self) -> bool:
        """Whether the logdir holds runs in Keras' layout or runs with hparams."""
        if self._board is None:
            return False
        try:
            return self._board.active()
        except (OSError, ValueError):
            return False

    def frontend_metadata(self) -> base_plugin.FrontendMetadata:
        return base_plugin.FrontendMetadata(es_module_path="/static/index.js", tab_name="lossboard")

    def _route(self, route: str) -> Any:
        @wrappers.Request.application
        def serve(request: wrappers.Request) -> wrappers.Response:
            if self._board is None:
                return _refuse(
                    request,
                    "the lossboard dashboard reads one --logdir; TensorBoard was started "
                    "without one (--logdir_spec or a data server). Start it with "
                    "--logdir ROOT.",
                )
            args = {name: request.args.getlist(name) for name in request.args}
            try:
                body = self._board.answer(route, args)
            except QueryError as error:
                return _refuse(request, str(error))
            except FileNotFoundError as error:
                return _refuse(request, str(error), code=404)
            return http_util.Respond(request, body, "application/json")

        return serve

    def _serve_static(self, request: wrappers.Request) -> wrappers.Response:
        """One of the frontend's files, named exactly (no ``..``, no folder, no encoding)."""
        prefix = f"/data/plugin/{PLUGIN_NAME}/static/"
        name = request.path.split(prefix, 1)[1] if prefix in request.path else ""
        if name not in STATIC_FILES:
            return _refuse(
                request,
                f"static/{name}: not a file of the lossboard dashboard; it serves "
                f"{', '.join(sorted(STATIC_FILES))}.",
                code=404,
            )
        with open(os.path.join(STATIC, name), "rb") as handle:
            content = handle.read()
        kind = _TYPES.get(os.path.splitext(name)[1]) or mimetypes.guess_type(name)[0]
        return http_util.Respond(request, content, kind or "application/octet-stream")


def _refuse(request: wrappers.Request, message: str, code: int = 400) -> wrappers.Response:
    return http_util.Respond(request, {"error": message}, "application/json", code=code)

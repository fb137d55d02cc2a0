"""Request-level guards: what any client may send the server, and what the server says
back, whatever the callbacks do.  One entry point, :func:`install` (called by
``create_app``), plus :class:`RequestHandler` for the development server.

- **Size**: request bodies over :data:`MAX_BODY_BYTES` are refused (HTTP 413).  The
  largest request the page sends on the sample (22 participants, every interaction
  tried) is 20 kB, the update with the participant grid's ``selectedRows`` as full
  rows (~0.7 kB per participant); 4 MiB leaves room for several thousand participants.
- **Callback requests** (``/_dash-update-component``) must be UTF-8 JSON objects nested
  at most :data:`MAX_DEPTH` deep (real ones: 7) whose envelope is one of the app's
  server callbacks as the page sends it: ``output`` a known server callback, ``outputs``,
  ``inputs`` and ``state`` its own dependencies in order, ``changedPropIds`` among its
  inputs.  Anything else is answered 400 before Dash sees it (a 100,000-deep body
  made Python's JSON parser raise RecursionError: HTTP 500).  The *values* are the
  callbacks' to check (:mod:`dashboard.app.views`, :mod:`dashboard.app.state`).
- **Last line of defence**: an exception that escapes a request is logged with its
  traceback here (server side) and answered with a generic 400, never a traceback or a
  path.  (Dash's debug mode, ``serve --debug``, installs its own handler that shows
  tracebacks: that is what debug mode is for.)
- **Server header**: Werkzeug's development server sends ``Server: Werkzeug/<v>
  Python/<v>`` with every response, whatever the response's own headers say (it calls
  ``BaseHTTPRequestHandler.send_response``); :class:`RequestHandler` sends
  :data:`SERVER_NAME` instead (the app's Flask server, ``dashboard.app.CueFlask``, runs
  with it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import dash
from werkzeug.exceptions import BadRequest, HTTPException
from werkzeug.serving import WSGIRequestHandler

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 32
SERVER_NAME = "cue-dashboard"
CALLBACK_PATH = "_dash-update-component"
REFUSED = "Bad request: this request cannot be answered."


class RequestHandler(WSGIRequestHandler):
    """Werkzeug's request handler without its version banner: ``Server: cue-dashboard``."""

    def version_string(self) -> str:
        return SERVER_NAME


def install(app: dash.Dash) -> None:
    """Put the guards of this module on ``app``'s Flask server (see the module docstring)."""
    from flask import request

    server = app.server
    server.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    route = app.config.routes_pathname_prefix + CALLBACK_PATH  # each study's app on a shared server checks its own

    @server.before_request
    def _check_callback_request() -> None:
        if request.method != "POST" or request.path != route:
            return
        why = body_problem(request.get_data(cache=True), app.callback_map)  # 413 past MAX_CONTENT_LENGTH
        if why:
            log.info("callback request refused: %s", why)
            raise BadRequest(REFUSED)

    @server.errorhandler(Exception)
    def _refuse(exc: Exception):
        if isinstance(exc, HTTPException):  # 400, 404, 405, 413 ...: Werkzeug's own short pages
            return exc
        log.error("request failed: %s %s", request.method, request.path, exc_info=exc)
        return REFUSED, 400, {"Content-Type": "text/plain; charset=utf-8"}


def body_problem(data: bytes, callbacks: Mapping[str, Mapping[str, Any]]) -> str:
    """Why a callback request body cannot be a request of this page ("" when it can)."""
    try:
        body = json.loads(data.decode("utf-8"))  # nesting past the recursion limit raises RecursionError here
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "not UTF-8 JSON"
    if nesting_depth(body, MAX_DEPTH) > MAX_DEPTH:
        return f"nested deeper than {MAX_DEPTH}"
    return envelope_problem(body, callbacks)


def nesting_depth(value: Any, limit: int) -> int:
    """How deep lists and dicts nest in a parsed JSON value (a scalar: 0), without
    recursion; stops as soon as ``limit`` is passed."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            break
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _prop(spec: Any) -> tuple[Any, Any]:
    """(id, property) of a dependency or output spec; ``@hash`` of a duplicate output dropped."""
    if not isinstance(spec, dict):
        return None, None
    prop = spec.get("property")
    return spec.get("id"), prop.split("@", 1)[0] if isinstance(prop, str) else prop


def _outputs(key: str) -> list[tuple[str, str]]:
    """(id, property) of each output named in a callback_map key ("a.b" or "..a.b...c.d..")."""
    parts = key[2:-2].split("...") if key.startswith("..") else [key]
    return [(cid, prop.split("@", 1)[0]) for cid, prop in (part.rsplit(".", 1) for part in parts)]


def _pattern(cid: Any) -> dict[str, Any] | None:
    """A pattern-matching id of the callback map (a JSON string such as
    '{"column":["ALL"],"type":"quick-filter"}'), parsed; None for a plain id."""
    if not (isinstance(cid, str) and cid.startswith("{")):
        return None
    try:
        value = json.loads(cid)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _dep_matches(expected_id: Any, expected_prop: Any, given: Any) -> bool:
    """Whether one request part is the dependency ``expected_id.expected_prop``: the same
    plain id, or for a wildcard (ALL/MATCH) id a list of parts (one for MATCH) whose ids
    have the pattern's keys, its fixed values and a scalar where it has a wildcard."""
    pattern = _pattern(expected_id)
    if pattern is None:
        return _prop(given) == (expected_id, expected_prop)
    for item in given if isinstance(given, list) else [given]:
        gid, gprop = _prop(item)
        if gprop != expected_prop or not isinstance(gid, dict) or set(gid) != set(pattern):
            return False
        for k, v in pattern.items():
            concrete = gid[k]
            if isinstance(v, list):  # a wildcard: any string or number
                if isinstance(concrete, bool) or not isinstance(concrete, (str, int, float)):
                    return False
            elif concrete != v:
                return False
    return True


def _changed_is_input(changed: str, inputs: list[tuple[Any, Any]]) -> bool:
    """A changedPropIds entry ("id.prop", the id as JSON for a pattern-matching input)
    names one of the inputs."""
    cid, _, prop = changed.rpartition(".")
    if (cid, prop) in inputs:
        return True
    try:
        concrete = json.loads(cid) if cid.startswith("{") else None
    except ValueError:
        return False
    return isinstance(concrete, dict) and any(
        _pattern(i) is not None and _dep_matches(i, p, {"id": concrete, "property": prop}) for i, p in inputs)


def envelope_problem(body: Any, callbacks: Mapping[str, Mapping[str, Any]]) -> str:
    """Why a parsed callback request does not match one of the app's server callbacks
    as the page sends it ("" when it does)."""
    if not isinstance(body, dict):
        return "not a JSON object"
    key = body.get("output")
    cb = callbacks.get(key) if isinstance(key, str) else None
    if not isinstance(key, str) or cb is None or "callback" not in cb:  # clientside callbacks have no server function
        return "no such server callback"
    outputs = body.get("outputs")
    expected_outputs = _outputs(key)
    given = outputs if key.startswith("..") else [outputs]
    if (not isinstance(given, list) or len(given) != len(expected_outputs)
            or not all(_dep_matches(cid, prop, g) for (cid, prop), g in zip(expected_outputs, given, strict=True))):
        return "outputs do not match the callback"
    for field in ("inputs", "state"):
        deps = body.get(field, [])  # the page leaves "state" out when a callback has none
        expected = [(d["id"], d["property"]) for d in cb[field]]
        if (not isinstance(deps, list) or len(deps) != len(expected)
                or not all(_dep_matches(cid, prop, g) for (cid, prop), g in zip(expected, deps, strict=True))):
            return f"{field} do not match the callback"
    changed = body.get("changedPropIds", [])
    inputs = [(d["id"], d["property"]) for d in cb["inputs"]]
    if not isinstance(changed, list) or not all(isinstance(c, str) and _changed_is_input(c, inputs) for c in changed):
        return "changedPropIds are not inputs of the callback"
    return ""

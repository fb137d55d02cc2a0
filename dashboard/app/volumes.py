"""The HTTP route the page fetches whole T volumes from, to draw the map views itself.

``VolumeRoutes.url(contrast, model, subset)`` names a volume by an opaque token (a hash
of the study's identity and the key), so no value from a request is ever parsed into a
contrast, model or participant list: an unknown token is a 404.  The body is the
volume as :mod:`dashboard.render.volume` writes it (NIfTI-1, int16 + slope), sent
gzip-encoded to browsers that accept it, with the token as a strong ETag and a long
private cache lifetime: the same token always means the same bytes (a changed folder
has another identity, hence other tokens).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

import flask

from dashboard.render import volume as render

if TYPE_CHECKING:
    from dashboard.app.engine import Engine

KEEP = 512  # tokens remembered (a key is a few hundred bytes; its volume is rebuilt on demand)
BODIES = 16  # encoded volumes kept (about 0.5 MB each gzipped for a 2 mm brain)


class VolumeRoutes:
    """Tokens for (contrast, model, subset) and the route that serves their volumes."""

    def __init__(self, engine: Engine, identity: str, prefix: str = "/"):
        self.engine = engine
        self.path = f"{prefix}_volumes/"
        self._identity = identity
        self._keys: OrderedDict[str, tuple[str, str, tuple[str, ...]]] = OrderedDict()
        self._bodies: OrderedDict[str, tuple[bytes, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def token(self, contrast: str, model: str, subset: tuple[str, ...]) -> str:
        key = (contrast, model, tuple(subset))
        digest = hashlib.sha256(json.dumps([self._identity, *key[:2], list(key[2])]).encode()).hexdigest()[:32]
        with self._lock:
            self._keys[digest] = key
            self._keys.move_to_end(digest)
            while len(self._keys) > KEEP:
                self._keys.popitem(last=False)
        return digest

    def url(self, contrast: str, model: str, subset: tuple[str, ...]) -> str:
        """Where the page fetches this volume (registers its token)."""
        return f"{self.path}{self.token(contrast, model, subset)}.nii"

    def body(self, token: str) -> tuple[bytes, bytes] | None:
        """(raw NIfTI bytes, gzipped) of a known token, or None."""
        with self._lock:
            key = self._keys.get(token)
            hit = self._bodies.get(token)
        if key is None:
            return None
        if hit is not None:
            return hit
        vol, _df = self.engine.volume(*key)
        label = next((c.label for c in self.engine.study.contrasts if c.id == key[0]), "T")
        raw = render.nifti_bytes(vol, self.engine.grid, description=f"T {label}")
        out = (raw, render.gzipped(raw))
        with self._lock:
            self._bodies[token] = out
            while len(self._bodies) > BODIES:
                self._bodies.popitem(last=False)
        return out

    def register(self, server: flask.Flask) -> None:
        """Add ``GET <prefix>_volumes/<token>.nii`` to the server."""
        endpoint = f"cue_volumes_{self.path.strip('/').replace('/', '_') or 'root'}"

        def serve(token: str) -> flask.Response:
            with self._lock:
                known = token in self._keys  # only tokens this server issued reach a header
            etag = f'"{token}"'
            if known and flask.request.headers.get("If-None-Match") == etag:
                return flask.Response(status=304, headers={"ETag": etag})
            bodies = self.body(token) if known else None
            if bodies is None:
                return flask.Response("unknown volume (the page is older than the server: reload it)\n", status=404, mimetype="text/plain")
            gzip_ok = "gzip" in flask.request.headers.get("Accept-Encoding", "")
            data = bodies[1] if gzip_ok else bodies[0]
            response = flask.Response(data, mimetype="application/octet-stream")
            if gzip_ok:
                response.headers["Content-Encoding"] = "gzip"
            response.headers["ETag"] = etag
            response.headers["Cache-Control"] = "private, max-age=86400, immutable"
            response.headers["Vary"] = "Accept-Encoding"
            return response

        server.add_url_rule(f"{self.path}<token>.nii", endpoint=endpoint, view_func=serve, methods=["GET"])

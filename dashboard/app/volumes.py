"""The HTTP route the page fetches whole volumes from, to draw the map views itself.

Three kinds, each named by an opaque token (a hash of the study's identity, the kind
and its key), so no value from a request is ever parsed into a contrast, model or
participant list: an unknown token is a 404.

- ``url(contrast, model, subset)``: the T map (NIfTI-1, int16 + slope);
- ``labels_url(state)``: the clusters of the view's table, exactly as the table lists
  them (threshold, extent k, direction, small volume): label n of the positive table
  as +n, of the negative as -n, 0 elsewhere; so the page colours exactly the table's
  voxels and outlines the selected cluster from the same labels;
- ``template_url()``: the anatomical background on the study grid (uint8).

The body is the volume as :mod:`dashboard.render.volume` writes it, sent
gzip-encoded to browsers that accept it, with the token as a strong ETag and a long
private cache lifetime: the same token always means the same bytes (a changed folder
has another identity, hence other tokens).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import flask
import numpy as np

from dashboard.app import state as st
from dashboard.render import volume as render

if TYPE_CHECKING:
    from dashboard.app.engine import Engine

KEEP = 512  # tokens remembered (a key is a few hundred bytes; its volume is rebuilt on demand)
BODIES = 16  # encoded volumes kept (about 0.5 MB each gzipped for a 2 mm brain)


def signed_labels(labels: dict[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """One volume of a table's cluster labels: +n for the positive table's cluster n, -n
    for the negative table's (the two never overlap: a voxel has one sign).  int32, so a
    table of more clusters than int16 holds is refused when encoded, never wrapped."""
    out = np.zeros(shape, np.int32)
    for direction, lab in labels.items():
        sign = -1 if direction == "neg" else 1
        out[lab > 0] = sign * lab[lab > 0]
    return out


class VolumeRoutes:
    """Tokens for the page's volumes (T maps, table labels, the template) and the route
    that serves them."""

    def __init__(self, engine: Engine, identity: str, prefix: str = "/"):
        self.engine = engine
        self.path = f"{prefix}_volumes/"
        self._identity = identity
        self._keys: OrderedDict[str, tuple[str, Any]] = OrderedDict()  # token -> (kind, what builds it)
        self._bodies: OrderedDict[str, tuple[bytes, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def _issue(self, kind: str, named: list, payload: Any) -> str:
        """The token of a volume (registered: only issued tokens are served)."""
        digest = hashlib.sha256(json.dumps([self._identity, kind, named]).encode()).hexdigest()[:32]
        with self._lock:
            self._keys[digest] = (kind, payload)
            self._keys.move_to_end(digest)
            while len(self._keys) > KEEP:
                self._keys.popitem(last=False)
        return digest

    def token(self, contrast: str, model: str, subset: tuple[str, ...]) -> str:
        key = (contrast, model, tuple(subset))
        return self._issue("t", [contrast, model, list(key[2])], key)

    def url(self, contrast: str, model: str, subset: tuple[str, ...]) -> str:
        """Where the page fetches this T volume (registers its token)."""
        return f"{self.path}{self.token(contrast, model, subset)}.nii"

    def labels_url(self, state: dict) -> str:
        """Where the page fetches the cluster labels of the table of a (checked) view state."""
        subset = list(self.engine.subset(state["participants"]))
        named = [*st.table_key(state), subset]
        return f"{self.path}{self._issue('labels', named, dict(state))}.nii"

    def template_url(self) -> str:
        """Where the page fetches the anatomical background (uint8 on the study grid)."""
        return f"{self.path}{self._issue('template', [], None)}.nii"

    def _encode(self, kind: str, payload: Any) -> bytes:
        engine = self.engine
        if kind == "t":
            vol, _df = engine.volume(*payload)
            label = next((c.label for c in engine.study.contrasts if c.id == payload[0]), "T")
            return render.nifti_bytes(vol, engine.grid, description=f"T {label}")
        if kind == "labels":
            result = engine.table(payload, with_rft=False)
            vol, _df = engine.volume(payload["contrast"], payload["model"], engine.subset(payload["participants"]))
            return render.label_nifti_bytes(signed_labels(result.labels, vol.shape), engine.grid,
                                            description="clusters: +n positive table, -n negative")
        template = np.asarray(engine.template, float)
        top = float(np.nanmax(template)) if np.isfinite(template).any() else 0.0
        grey = np.zeros(template.shape, np.uint8) if top <= 0 else np.clip(np.rint(np.nan_to_num(template) / top * 255), 0, 255).astype(np.uint8)
        return render.label_nifti_bytes(grey, engine.grid, description="template, 0-255")

    def body(self, token: str) -> tuple[bytes, bytes] | None:
        """(raw NIfTI bytes, gzipped) of a known token, or None."""
        with self._lock:
            key = self._keys.get(token)
            hit = self._bodies.get(token)
        if key is None:
            return None
        if hit is not None:
            return hit
        raw = self._encode(*key)
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

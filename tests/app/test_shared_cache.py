"""The app's flask-caching store with a real Redis server: RFT smoothness estimates are
shared between server processes (here: two app instances on one Redis)."""

from __future__ import annotations

import numpy as np
import pytest
import redis

from dashboard.app import Settings, create_app
from dashboard.stats import rft


def _engine(app):
    return app.server.config["CUE_ENGINE"]


def test_sc001_smoothness_estimated_once_and_shared_through_redis(redis_url, tiny_study, monkeypatch):
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    settings = Settings(results_dir=tiny_study, redis_url=redis_url, warm=False)
    first = _engine(create_app(settings))
    subset = first.subset(["sub-01", "sub-02", "sub-03", "sub-05"])
    s1 = first.analysis.smoothness("placebo", "cells", subset)
    keys = [k.decode() for k in client.keys("*cue-smoothness:*")]
    assert len(keys) == 1, keys

    # a second server process: same Redis, must not estimate again
    second = _engine(create_app(settings))

    def no_estimate(*args, **kwargs):
        raise AssertionError("smoothness re-estimated although Redis holds it")

    monkeypatch.setattr(rft, "estimate_smoothness", no_estimate)
    s2 = second.analysis.smoothness("placebo", "cells", subset)
    assert s2 == s1
    np.testing.assert_allclose(s2.resels, s1.resels)
    # another subset is a different key: it is estimated (and fails here, proving the key differs)
    with pytest.raises(AssertionError, match="re-estimated"):
        second.analysis.smoothness("placebo", "cells", second.subset(["sub-01", "sub-02", "sub-04", "sub-05"]))


def test_sc002_file_system_cache_never_inside_results(tiny_study):
    before = sorted(p.name for p in tiny_study.rglob("*"))
    app = create_app(Settings(results_dir=tiny_study, warm=False))
    _engine(app).analysis.smoothness("placebo", "cells", _engine(app).subset(None))
    assert sorted(p.name for p in tiny_study.rglob("*")) == before

"""Crafted and random POSTs to Dash's callback endpoint (``/_dash-update-component``):
no request may give HTTP 500 or show a traceback or a filesystem path, and the app
answers a normal request afterwards.

Requests are built as the page builds them (``output``, ``outputs``, ``inputs``,
``state``, ``changedPropIds``, values from the layout), then one part is made wrong:
the known payloads of issue 10 by name, then seeded random values and envelopes for
every server callback in ``app.callback_map``.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboard.app import Settings, create_app, guard, ids, views
from tests.conftest import REPO
from tests.studies import write_tiny_study

URL = "/_dash-update-component"
SEED = 20_100  # issue 10: the random part is the same on every run
RANDOM_PER_CALLBACK = 45
OK_STATUS = {200, 204, 400}
INF = float("inf")
NAN = float("nan")
UPDATE = "view-state.data"  # an output of the main callback (`update`)
Slot = tuple[str, str]  # (component id, property)


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> tuple[Any, Path]:
    study = write_tiny_study(tmp_path_factory.mktemp("fuzz") / "tiny")
    app = create_app(Settings(results_dir=study, warm=False, template=False))
    return app, study


# -- requests as the page sends them ----------------------------------------------------
def id_key(cid: str | dict) -> str:
    """A component id as Dash writes it in requests: a pattern-matching id as sorted JSON."""
    return cid if isinstance(cid, str) else json.dumps(cid, sort_keys=True, separators=(",", ":"))


def layout_values(app) -> dict[Slot, Any]:
    """Every component property of the initial layout, by (id, property)."""
    out: dict[Slot, Any] = {}
    for comp in [app.layout, *app.layout._traverse()]:
        cid = getattr(comp, "id", None)
        if isinstance(cid, (str, dict)):
            for prop in comp._prop_names:
                out[(id_key(cid), prop)] = getattr(comp, prop, None)
    return out


def pattern_ids(app, pattern: str) -> list[dict]:
    """The layout's ids that a pattern-matching id of the callback map (ALL) matches."""
    spec = json.loads(pattern)
    fixed = {k: v for k, v in spec.items() if not isinstance(v, list)}
    return [comp.id for comp in [app.layout, *app.layout._traverse()]
            if isinstance(getattr(comp, "id", None), dict) and set(comp.id) == set(spec) and all(comp.id[k] == v for k, v in fixed.items())]


def server_callbacks(app) -> dict[str, dict]:
    """callback_map entries that run on the server (clientside ones have no function)."""
    return {key: cb for key, cb in app.callback_map.items() if "callback" in cb}


def find_callback(app, output: str) -> str:
    return next(key for key in server_callbacks(app) if output in key)


def output_spec(key: str, app=None) -> list | dict:
    parts = key[2:-2].split("...") if key.startswith("..") else [key]
    specs: list = []
    for part in parts:
        cid, prop = part.rsplit(".", 1)
        specs.append([{"id": i, "property": prop} for i in pattern_ids(app, cid)] if cid.startswith("{") else {"id": cid, "property": prop})
    return specs if key.startswith("..") else specs[0]


def body(app, key: str, overrides: dict[Slot, Any] | None = None, changed: list[Slot] | None = None) -> dict:
    """The request the page sends for callback ``key``, with some values replaced."""
    cb = app.callback_map[key]
    values = {**layout_values(app), **(overrides or {})}

    def part(dep: dict) -> dict | list:
        if dep["id"].startswith("{"):  # pattern-matching (ALL): one entry per matching component
            return [{"id": i, "property": dep["property"], "value": values.get((id_key(i), dep["property"]))}
                    for i in pattern_ids(app, dep["id"])]
        slot = (dep["id"], dep["property"])
        return {"id": slot[0], "property": slot[1], "value": values.get(slot)}

    out = {"output": key, "outputs": output_spec(key, app), "inputs": [part(d) for d in cb["inputs"]],
           "changedPropIds": [f"{cid}.{prop}" for cid, prop in (changed or [])]}
    if cb["state"]:
        out["state"] = [part(d) for d in cb["state"]]
    return out


def deep(depth: int) -> str:
    """A placeholder for a list nested ``depth`` deep (too deep for json.dumps: see encode)."""
    return f"__deep_{depth}__"


def encode(payload: Any) -> bytes:
    """JSON as a browser could send it (NaN, Infinity; deep placeholders expanded)."""
    if isinstance(payload, bytes):
        return payload
    text = json.dumps(payload, allow_nan=True)
    return re.sub(r'"__deep_(\d+)__"', lambda m: "[" * int(m[1]) + "1" + "]" * int(m[1]), text).encode()


def post(client, payload: Any):
    return client.post(URL, data=encode(payload), content_type="application/json")


def problem(response, tmp: Path) -> str:
    """What is wrong with an answer ("" when it is acceptable)."""
    if response.status_code not in OK_STATUS:
        return f"HTTP {response.status_code}"
    return problem_text(response, tmp)


def problem_text(response, tmp: Path) -> str:
    """A traceback or a path in an answer ("" when there is none)."""
    text = response.get_data(as_text=True)
    for leak in ("Traceback", 'File "', "/work", str(tmp), str(Path.home()), str(REPO)):
        if leak in text:
            return f"body shows {leak!r}"
    return ""


# -- the payloads of issue 10 ------------------------------------------------------------
def view_state(app, **changes) -> dict:
    return {**layout_values(app)[(ids.VIEW, "data")], **changes}


def known_payloads(app) -> Iterator[tuple[str, Any]]:
    """(name, request body) of each crafted payload listed in issue 10 and around it."""
    up = find_callback(app, UPDATE)
    view = (ids.VIEW, "data")

    def on_update(name: str, slot: Slot, value: Any, trigger: bool = True) -> tuple[str, dict]:
        return name, body(app, up, {slot: value}, [slot] if trigger else [])

    for value, name in ((INF, "Infinity"), (10 ** 400, "a 400-digit integer"), (1e308, "1e308"), ("ten", "a string")):
        yield on_update(f"k = {name}", (ids.EXTENT, "value"), value)
        yield on_update(f"view state k = {name}", view, view_state(app, k=value), trigger=False)
    yield on_update("p = NaN", (ids.P_UNC, "value"), NAN)
    yield on_update("T = -Infinity", (ids.T_VALUE, "value"), -INF)
    yield on_update("contrast given as an object", (ids.CONTRAST, "value"), {"id": "placebo"})
    yield on_update("unknown contrast id", (ids.CONTRAST, "value"), "no-such-contrast")
    yield on_update("direction given as a list", (ids.DIRECTION, "value"), ["pos"])
    yield on_update("unknown model", (ids.MODEL, "value"), "bayes")
    yield on_update("covariate not a column", (ids.COVARIATE, "value"), "no_such_column")
    yield on_update("condition given as a number", (ids.CONDITION, "value"), 3)
    yield on_update("svc regions given as a string", (ids.SVC_REGIONS, "value"), "Hippocampus_R")
    yield on_update("svc regions given as numbers", (ids.SVC_REGIONS, "value"), [1, 2])
    yield on_update("x coordinate Infinity", (ids.POINT_X, "value"), INF)
    yield on_update("x coordinate a string", (ids.POINT_X, "value"), "left")
    for gid in (ids.GLASS_BRAIN, ids.SLICE_AXIAL):
        slot = (gid, "clickData")
        yield on_update(f"{gid} clickData with no points", slot, {"points": []})
        yield on_update(f"{gid} clickData points without x, y, z", slot, {"points": [{"curveNumber": 0}]})
        yield on_update(f"{gid} clickData with non-numeric coordinates", slot, {"points": [{"curveNumber": 0, "x": "a", "y": {}, "z": None}]})
        yield on_update(f"{gid} clickData with NaN coordinates", slot, {"points": [{"curveNumber": 0, "x": NAN, "y": INF}]})
        yield on_update(f"{gid} clickData points a string", slot, {"points": "abc"})
        yield on_update(f"{gid} clickData a list", slot, [1, 2, 3])
    yield on_update("glass clickData curveNumber a string", (ids.GLASS_BRAIN, "clickData"),
                    {"points": [{"curveNumber": "one", "x": 0, "y": 0}]})
    table = (ids.CLUSTER_TABLE, "cellClicked")
    yield on_update("cluster-table row id without coordinates", table, {"rowId": "pos|1"})
    yield on_update("cluster-table row id with words", table, {"rowId": "pos|1|a|b|c|0"})
    yield on_update("cluster-table row id a number", table, {"rowId": 5})
    yield on_update("cluster-table row of an unknown direction", table, {"rowId": "up|1|0|0|0|0"})
    yield on_update("cluster-table cellClicked a string", table, "pos|1|0|0|0|0")
    yield on_update("view state with unknown participants", view, view_state(app, participants=["sub-99", "sub-98", "sub-97", "sub-96"]),
                    trigger=False)
    yield on_update("view state with a string p", view, view_state(app, p_unc="small"), trigger=False)
    yield on_update("view state with missing keys", view, {"contrast": "placebo"}, trigger=False)
    yield on_update("view state a list", view, [1, 2, 3], trigger=False)
    yield on_update("view state with a string point", view, view_state(app, point="origin"), trigger=False)
    yield on_update("view state with a garbage cluster", view, view_state(app, cluster={"direction": "pos", "peak": "x"}), trigger=False)
    yield on_update("view state with an object contrast", view, view_state(app, contrast={"a": 1}), trigger=False)
    yield on_update("rendered maps a list", (ids.RENDERED_MAPS, "data"), [1, 2, 3], trigger=False)
    yield on_update("rendered maps with a garbage index", (ids.RENDERED_MAPS, "data"), {"base": ["cells"], "index": "abc"}, trigger=False)
    grid = (ids.PARTICIPANT_GRID, "selectedRows")
    yield on_update("participant selectedRows ids a string", grid, {"ids": "sub-01"})
    yield on_update("participant selectedRows numbers", grid, [1, 2, 3])
    yield on_update("participant selectedRows nested lists", grid, {"ids": [["sub-01"]]})
    yield on_update("participant selectedRows ids unhashable rows", grid, [{"participant_id": ["sub-01"]}])
    yield on_update("value nested 5000 deep", (ids.CONTRAST, "value"), deep(5000))

    offer = find_callback(app, "exclude-participant.children")
    click = {"points": [{"curveNumber": 0, "x": 1.0, "y": 2.0, "customdata": "sub-01"}]}
    for name, selected in (("ids a string", {"ids": "sub-01"}), ("nested", {"ids": [["sub-01"]]}), ("rows unhashable", [{"participant_id": {}}])):
        yield (f"offer_exclusion with selectedRows {name}",
               body(app, offer, {(ids.SCATTER, "clickData"): click, grid: selected}, [grid]))
    yield "offer_exclusion with customdata an object", body(app, offer, {(ids.SCATTER, "clickData"): {"points": [{"customdata": {}}]}},
                                                            [(ids.SCATTER, "clickData")])

    select = find_callback(app, ids.QUICK_FILTER)
    sex, age, years = (id_key(ids.quick_filter(c)) for c in ("sex", "age", "cocaine_duration_years"))
    yield "quick filter sex a string", body(app, select, {(sex, "value"): "M"}, [(sex, "value")])
    yield "quick filter age range words", body(app, select, {(age, "value"): ["young", "old"]}, [(age, "value")])
    yield "quick filter age range a number", body(app, select, {(age, "value"): 30}, [(age, "value")])
    yield "quick filter range an object", body(app, select, {(years, "value"): {"a": 1}}, [(years, "value")])
    yield "quick filter range infinite", body(app, select, {(years, "value"): [0, INF]}, [(years, "value")])
    unknown = {**body(app, select, changed=[(sex, "value")])}
    unknown["inputs"] = [[{**unknown["inputs"][0][0], "id": {"type": ids.QUICK_FILTER, "column": "no_such_column"}}], *unknown["inputs"][1:]]
    yield "quick filter of an unknown column", unknown
    bad_id = {**body(app, select, changed=[(sex, "value")])}
    bad_id["inputs"] = [[{**bad_id["inputs"][0][0], "id": {"type": ids.QUICK_FILTER, "column": {"a": 1}}}], *bad_id["inputs"][1:]]
    yield "quick filter id with an object for a wildcard", bad_id
    yield "exclude with garbage selectedRows", body(app, select, {(ids.SCATTER, "clickData"): click, grid: {"ids": [[1]]}},
                                                    [(ids.EXCLUDE_BUTTON, "n_clicks")])
    yield "include-all with garbage filter ids", body(app, select, {(sex, "id"): {"a": 1}}, [(ids.RESET_PARTICIPANTS, "n_clicks")])

    rft = find_callback(app, "rft-rows.data")
    yield "estimate_rft with a garbage view state", body(app, rft, {(ids.RFT_PENDING, "data"): ["x"], view: {"k": "x"}},
                                                         [(ids.RFT_PENDING, "data")])
    yield "estimate_rft with pending an object", body(app, rft, {(ids.RFT_PENDING, "data"): {"a": 1}}, [(ids.RFT_PENDING, "data")])
    compare = find_callback(app, "compare-glass-brains.figure")
    yield "compare with an object contrast", body(app, compare, {(ids.COMPARE_VIEW, "data"): view_state(app, contrast={"a": 1})},
                                                  [(ids.COMPARE_VIEW, "data")])
    yield "compare with a string state", body(app, compare, {(ids.COMPARE_VIEW, "data"): "state"}, [(ids.COMPARE_VIEW, "data")])

    # the envelope
    normal = body(app, up)
    yield "JSON nested 100000 deep", b"[" * 100_000 + b"]" * 100_000
    yield "object nested 100000 deep", b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    yield "not JSON at all", b"this is not JSON"
    yield "truncated JSON", b'{"output": "view-state.data", "inputs": ['
    yield "invalid UTF-8", b"\xff\xfe\xfd"
    yield "empty body", b""
    yield "JSON array", [normal]
    yield "JSON string", "view-state.data"
    yield "unknown output id", {**normal, "output": "no-such-component.children"}
    yield "a clientside callback's output", {**normal, "output": "included-count.children"}
    yield "output not a string", {**normal, "output": ["view-state.data"]}
    yield "no inputs", {k: v for k, v in normal.items() if k != "inputs"}
    yield "inputs not a list", {**normal, "inputs": "all"}
    yield "inputs of numbers", {**normal, "inputs": [1, 2, 3]}
    yield "one input too few", {**normal, "inputs": normal["inputs"][:-1]}
    yield "inputs of another callback", {**normal, "inputs": body(app, select)["inputs"]}
    yield "no state", {k: v for k, v in normal.items() if k != "state"}
    yield "changedPropIds not a list", {**normal, "changedPropIds": 7}
    yield "changedPropIds of an unknown id", {**normal, "changedPropIds": ["no-such.value"]}
    yield "outputs not matching", {**normal, "outputs": [{"id": "x", "property": "y"}]}


def test_cf001_known_payloads_are_refused_cleanly(served, caplog):
    app, study = served
    client = app.server.test_client()
    results = [(name, problem(post(client, payload), study.parent)) for name, payload in known_payloads(app)]
    failures = [f"{name}: {why}" for name, why in results if why]
    assert not failures, f"{len(failures)} of {len(results)} payloads answered badly:\n" + "\n".join(failures)
    assert_checked_not_caught(caplog)
    assert_still_works(client, app)


# -- the random part ---------------------------------------------------------------------
def garbage(rng: random.Random, like: Any = None, depth: int = 0) -> Any:
    """A random JSON value; with ``like`` (a real value) often a near miss of it."""
    if like is not None and rng.random() < 0.4:
        if isinstance(like, dict) and like:
            out = dict(like)
            key = rng.choice(sorted(out))
            if rng.random() < 0.2:
                del out[key]
            else:
                out[key] = garbage(rng, out[key] if rng.random() < 0.3 else None, depth + 1)
            return out
        if isinstance(like, list) and like:
            out_list = list(like)
            out_list[rng.randrange(len(out_list))] = garbage(rng, None, depth + 1)
            return out_list
    choices = [
        lambda: None, lambda: rng.choice([True, False]), lambda: rng.choice([0, -1, 1, 2 ** 63, -(10 ** 30), 10 ** 400]),
        lambda: rng.choice([0.5, -1e308, 1e308, NAN, INF, -INF, 5e-324]),
        lambda: rng.choice(["", "sub-01", "placebo", "pos", "../../../etc/passwd", "<script>alert(1)</script>", "%{x}", "pos|1|0|0|0|0",
                            "\u2028\u0000", "x" * rng.choice([10, 1000, 200_000])]),
        lambda: [garbage(rng, None, depth + 1) for _ in range(rng.randrange(4))] if depth < 4 else [],
        lambda: {rng.choice(["points", "ids", "rowId", "x", "y", "participant_id", "curveNumber", "customdata", "k", "p_unc"]):
                 garbage(rng, None, depth + 1) for _ in range(rng.randrange(4))} if depth < 4 else {},
        lambda: deep(rng.choice([30, 500, 3000])),
    ]
    return rng.choice(choices)()


def random_payloads(app, rng: random.Random) -> Iterator[tuple[str, Any]]:
    """For every server callback: one dependency at a time given a random (often almost
    right) value, as the trigger; now and then a broken envelope."""
    values = layout_values(app)
    for key, cb in sorted(server_callbacks(app).items()):
        deps = [(d["id"], d["property"]) for d in cb["inputs"] + cb["state"]]
        inputs = [(d["id"], d["property"]) for d in cb["inputs"]]
        for n in range(RANDOM_PER_CALLBACK):
            slot = rng.choice(deps)
            bad = garbage(rng, values.get(slot))
            changed = [slot] if slot in inputs else [rng.choice(inputs)]
            payload: Any = body(app, key, {slot: bad}, changed)
            if n % 9 == 8:  # the envelope
                field = rng.choice(["output", "outputs", "inputs", "state", "changedPropIds"])
                payload[field] = garbage(rng, payload.get(field))
            yield f"{key[:40]} #{n}: {slot[0]}.{slot[1]} = {json.dumps(bad, allow_nan=True)[:60]}", payload


def test_cf002_random_inputs_for_every_callback(served, caplog):
    app, study = served
    client = app.server.test_client()
    rng = random.Random(SEED)
    results = [(name, problem(post(client, payload), study.parent)) for name, payload in random_payloads(app, rng)]
    assert len(results) >= 200
    failures = [f"{name}: {why}" for name, why in results if why]
    assert not failures, f"{len(failures)} of {len(results)} requests answered badly:\n" + "\n".join(failures[:40])
    assert_checked_not_caught(caplog)
    assert_still_works(client, app)


def test_cf003_real_requests_pass_the_guard_and_the_rest_is_refused_by_size_or_type(served):
    app, study = served
    for key in server_callbacks(app):  # the requests the page sends, for every server callback
        assert guard.envelope_problem(body(app, key), app.callback_map) == "", key
    client = app.server.test_client()
    big = body(app, find_callback(app, UPDATE), {(ids.CONTRAST, "value"): "x" * guard.MAX_BODY_BYTES})
    for response, status in ((post(client, big), 413),
                             (client.post(URL, data=encode(body(app, find_callback(app, UPDATE))), content_type="text/plain"), 415)):
        assert response.status_code == status and not problem_text(response, study.parent)


def test_cf004_an_unexpected_error_is_logged_and_answered_400_without_details(served, monkeypatch, caplog):
    app, study = served
    secret = f"{study}/group/secret.nii.gz"

    def broken(engine, state, *args):
        raise RuntimeError(f"cannot read {secret}")

    monkeypatch.setattr(views, "draw_compare", broken)
    compare = find_callback(app, "compare-glass-brains.figure")
    response = post(app.server.test_client(), body(app, compare, {(ids.COMPARE_VIEW, "data"): view_state(app)}, [(ids.COMPARE_VIEW, "data")]))
    assert response.status_code == 400 and response.get_data(as_text=True) == guard.REFUSED
    logged = [r for r in caplog.records if r.name == guard.__name__ and r.levelname == "ERROR"]
    assert logged and logged[0].exc_info and secret in str(logged[0].exc_info[1])  # the details stay in the server's log


def assert_checked_not_caught(caplog) -> None:
    """Every bad request was refused by a check: none reached the last-resort handler."""
    caught = [r.getMessage() for r in caplog.records if r.name == guard.__name__ and r.levelname == "ERROR"]
    assert not caught, caught


def assert_still_works(client, app) -> None:
    """The first request the page sends still gets the whole first view."""
    response = post(client, body(app, find_callback(app, UPDATE)))
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    answer = response.get_json()["response"]
    assert "figure" in answer[ids.GLASS_BRAIN] and "df 20" in json.dumps(answer[ids.STATUS])

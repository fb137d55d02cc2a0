"""GET <prefix>_volumes/<token>.nii: the T volume the page draws from, as nibabel reads
it, for a token the server issued; anything else is a 404 and the folder is untouched."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np

from dashboard.app import Settings, create_app
from dashboard.render import volume as render
from tests.conftest import SAMPLE
from tests.studies import folder_stamps


def test_ap041_volume_route_serves_the_engine_volume_once_per_token():
    before = folder_stamps(SAMPLE)
    app = create_app(Settings(results_dir=SAMPLE, warm=False))
    engine, volumes = app.server.config["CUE_ENGINE"], app.server.config["CUE_VOLUMES"]
    client = app.server.test_client()
    contrast = engine.study.contrasts[-1].id
    subset = engine.all_ids[1:]  # a refit of a subset, not only the stored maps
    url = volumes.url(contrast, "cells", subset)
    assert url == volumes.url(contrast, "cells", subset) != volumes.url(contrast, "cells", engine.all_ids)

    got = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert got.status_code == 200 and got.headers["Content-Encoding"] == "gzip"
    etag = got.headers["ETag"]
    raw = gzip.decompress(got.data)
    img = nib.Nifti1Image.from_bytes(raw)
    expected, _ = engine.volume(contrast, "cells", subset)
    back, affine = render.read_nifti_bytes(raw)
    finite = np.isfinite(expected)
    assert np.array_equal(np.isfinite(back), finite)
    assert np.abs(back[finite] - expected[finite]).max() <= render.quantize(expected).max_error
    assert np.allclose(affine, render.grid_affine(engine.grid)) and img.get_data_dtype() == np.int16
    assert len(got.data) < 0.6 * len(raw)  # compressed on the wire

    plain = client.get(url)  # a client without gzip gets the same image uncompressed
    assert "Content-Encoding" not in plain.headers and plain.data == raw
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304

    assert client.get("/_volumes/" + "0" * 32 + ".nii", headers={"If-None-Match": '"' + "0" * 32 + '"'}).status_code == 404
    for bad in ("/_volumes/" + "0" * 32 + ".nii", "/_volumes/%3Cscript%3E.nii", "/_volumes/ABC.nii", "/_volumes/" + "g" * 32 + ".nii"):
        r = client.get(bad)
        assert r.status_code == 404 and b"<" not in r.data, (bad, r.data)
    assert folder_stamps(SAMPLE) == before


def test_ap042_label_volume_is_the_tables_clusters_and_the_template_is_uint8():
    """The page colours a voxel only if the table lists its cluster: every main row's peak
    carries a label with exactly that row's k voxels, the labels are distinct, nothing else
    is labelled, and every labelled voxel passes the height threshold with its sign."""
    from dashboard.app import state as st

    before = folder_stamps(SAMPLE)
    app = create_app(Settings(results_dir=SAMPLE, warm=False))
    engine, volumes = app.server.config["CUE_ENGINE"], app.server.config["CUE_VOLUMES"]
    client = app.server.test_client()
    base = st.default_state(engine.study)
    states = [dict(base), dict(base, direction="both", k=20), dict(base, contrast=engine.study.contrasts[-1].id, use_t=True, t=2.5, k=5,
                                                                   participants=list(engine.all_ids[2:]))]
    urls = {volumes.labels_url(s) for s in states}
    assert len(urls) == len(states)  # a different table, a different volume
    for state in states:
        got = client.get(volumes.labels_url(state), headers={"Accept-Encoding": "gzip"})
        assert got.status_code == 200 and got.headers["Content-Encoding"] == "gzip"
        labels, affine = render.read_label_bytes(got.data)
        assert np.allclose(affine, render.grid_affine(engine.grid))
        result = engine.table(state, with_rft=False)
        vol, df = engine.volume(state["contrast"], state["model"], engine.subset(state["participants"]))
        main = result.frame[result.frame["is_main_peak"].astype(bool)]
        seen = set()
        for _, row in main.iterrows():
            value = int(labels[engine.grid.index_of((row["x"], row["y"], row["z"]))])
            assert value != 0 and (value < 0) == (row["direction"] == "neg"), row.to_dict()
            assert int((labels == value).sum()) == int(row["k"]), row.to_dict()
            seen.add(value)
        assert len(seen) == len(main) and int((labels != 0).sum()) == int(main["k"].sum())
        height = engine.height(state, df)
        assert (vol[labels > 0] >= height - 1e-6).all() and (vol[labels < 0] <= -height + 1e-6).all()
        assert int(main["k"].min() if len(main) else state["k"]) >= int(state["k"])

    tpl = client.get(volumes.template_url())
    img = nib.Nifti1Image.from_bytes(tpl.data)
    assert tpl.status_code == 200 and img.get_data_dtype() == np.uint8 and img.shape == engine.template.shape
    grey = np.asarray(img.dataobj)
    assert grey.max() == 255 and np.corrcoef(grey.ravel(), np.nan_to_num(engine.template).ravel())[0, 1] > 0.99
    assert folder_stamps(SAMPLE) == before


def test_label_nifti_bytes_stores_integers_exactly():
    from dashboard.figures import RasGrid

    grid = RasGrid(np.arange(4.0), np.arange(3.0), np.arange(2.0))
    for values in (np.arange(24).reshape(4, 3, 2), np.arange(-12, 12).reshape(4, 3, 2) * 900):
        back, _ = render.read_label_bytes(render.gzipped(render.label_nifti_bytes(values, grid)))
        assert np.array_equal(back, values)
    for bad in (np.full((4, 3, 2), 40000), np.zeros((4, 3, 2)) + 0.5):
        try:
            render.label_nifti_bytes(bad, grid)
        except ValueError:
            continue
        raise AssertionError("accepted values it cannot store")


def test_signed_labels_keep_directions_apart_and_never_wrap():
    from dashboard.app.volumes import signed_labels
    from dashboard.figures import RasGrid

    pos, neg = np.zeros((3, 2, 2), int), np.zeros((3, 2, 2), int)
    pos[0, 0, 0], pos[1, 0, 0], neg[2, 1, 1] = 1, 2, 1
    out = signed_labels({"pos": pos, "neg": neg}, pos.shape)
    assert out[0, 0, 0] == 1 and out[1, 0, 0] == 2 and out[2, 1, 1] == -1 and (out != 0).sum() == 3
    pos[0, 0, 0] = 40000  # more clusters than int16 holds: refused, not wrapped
    try:
        render.label_nifti_bytes(signed_labels({"pos": pos}, pos.shape), RasGrid(np.arange(3.0), np.arange(2.0), np.arange(2.0)))
    except ValueError:
        return
    raise AssertionError("a label beyond int16 was encoded")

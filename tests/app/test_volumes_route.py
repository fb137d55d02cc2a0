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

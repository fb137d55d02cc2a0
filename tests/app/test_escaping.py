"""Nothing from a results folder reaches the page as markup or code (without a browser:
tests/browser/test_hostile.py opens such a folder in Chromium)."""

from __future__ import annotations

import json
import re

import pytest

from dashboard import figures
from dashboard.app import Settings, create_app, ids

NAME = '</title><script>alert(1)</script><img src=x onerror="alert(2)">'


@pytest.fixture
def hostile_name(tiny_study):
    path = tiny_study / "dataset_description.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "Name": NAME}))
    return tiny_study


def test_es001_page_title_is_escaped_and_the_page_has_no_inline_script(hostile_name):
    app = create_app(Settings(results_dir=hostile_name, warm=False, template=False))
    page = app.server.test_client().get("/").get_data(as_text=True)
    assert "<title>cue-dashboard: &lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&quot;alert(2)&quot;&gt;</title>" in page
    assert NAME not in page
    # every clientside callback is a named function of assets/*.js: Dash writes none into the page
    assert app._inline_scripts == []
    code = [body.strip() for attrs, body in re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
            if "src=" not in attrs and "application/json" not in attrs]  # Dash's config is JSON: data
    assert all(body == "var renderer = new DashRenderer();" or "does not support Internet Explorer" in body for body in code), code


def test_es002_plotly_text_shows_markup_and_templates_literally():
    text = figures.plotly_text('<a href="javascript:alert(1)">x</a> & %{x}<br>')
    assert "<" not in text and ">" not in text and "%{" not in text
    assert text == '&lt;a href="javascript:alert(1)"&gt;x&lt;/a&gt; &amp; %&#123;x}&lt;br&gt;'
    fig = figures.empty_figure("<b>no</b>")
    assert fig["layout"]["annotations"][0]["text"] == "&lt;b&gt;no&lt;/b&gt;"


def test_es003_regression_hover_takes_study_strings_as_data():
    import pandas as pd

    from dashboard.stats.lts import RegressionResult

    frame = pd.DataFrame({"participant_id": ["sub-01", "sub-02"], "covariate": [1.0, 2.0], "value": [0.5, 0.7], "weight": [1.0, 0.0]})
    fit = RegressionResult(**{**{f: 0.0 for f in RegressionResult.__dataclass_fields__}, "method": "lts", "n": 2, "n_eff": 2.0})
    fig = figures.regression_figure(frame, fit, fit, x_label="<b>%{y}</b>", y_label="%{customdata}")
    for trace in fig["data"][:2]:
        assert "<b>" not in trace["hovertemplate"] and "%{y}</b>" not in trace["hovertemplate"]
        assert trace["meta"] == ["&lt;b&gt;%&#123;y}&lt;/b&gt;", "%&#123;customdata}"]
    assert fig["layout"]["xaxis"]["title"]["text"] == "&lt;b&gt;%&#123;y}&lt;/b&gt;"


def test_es004_participant_highlight_is_data_not_code(tiny_study):
    """The grid's row rule is fixed; the participant to highlight comes in the grid's context."""
    app = create_app(Settings(results_dir=tiny_study, warm=False, template=False))
    grid = next(c for c in app.layout._traverse() if getattr(c, "id", None) == ids.PARTICIPANT_GRID)
    assert grid.dashGridOptions["suppressFieldDotNotation"] is True and grid.dashGridOptions["context"] == {"highlight": None}
    assert "sub-" not in json.dumps(grid.rowClassRules)

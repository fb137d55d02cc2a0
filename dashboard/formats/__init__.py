"""Results folders as analysis packages write them, each read into one :class:`Study`.

One module per kind of folder, each with ``detect(root) -> bool`` and
``load(root, options, check_data=..., defer_participant_data=...) -> Study``:

- :mod:`dashboard.results` - the project's own BIDS-derivatives layout (design.json);
- :mod:`dashboard.formats.spm` - an SPM12 second-level folder (SPM.mat);
- :mod:`dashboard.formats.fsl` - an FSL group FEAT folder (``*.gfeat``, ``cope<N>.feat``);
- :mod:`dashboard.formats.maps` - a plain folder of statistic maps (NeuroVault, nilearn).

:func:`open_study` picks the reader; every command and the app open folders with it.
Every reader is read-only and reports problems as :class:`dashboard.results.Problem`
lines naming the file.  A new kind of folder is a new module here, added to READERS.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dashboard.results import Problem, Study, StudyError, load_study


@dataclass(frozen=True)
class OpenOptions:
    """What a folder cannot say about itself, from the command line.

    ``stat`` / ``df``: the statistic ("t" or "z") and error df of plain maps without a
    sidecar or a telling name.  ``first_level_root``: where an SPM design's input images
    (``SPM.xY.P``, absolute paths of the machine that estimated it) are looked for by
    their tail when neither the path as written nor the path relative to the folder exists.
    """

    stat: str | None = None
    df: float | None = None
    first_level_root: Path | None = None
    view_defaults: Path | None = None  # a JSON file of ViewDefaults (else cue-dashboard.json in the folder)
    participants_table: Path | None = None  # a participants TSV for an SPM design (else participants.tsv beside SPM.mat)


VIEW_FILE = "cue-dashboard.json"  # a package folder's view defaults, written by the user beside SPM.mat or in the .gfeat


def with_view_defaults(study: Study, options: OpenOptions) -> Study:
    """A package folder's study with its view defaults (``--view-defaults FILE``, or
    ``cue-dashboard.json`` in the folder: ``{"ViewDefaults": {"Contrast": ..., "Condition":
    ..., "Covariate": ..., "QuickFilters": [...]}}``), checked against the study."""
    import dataclasses

    from dashboard.results import check_view_defaults, read_json_object

    path = options.view_defaults or (study.root / VIEW_FILE)
    if not path.exists() and options.view_defaults is None:
        return study
    problems: list[Problem] = []
    content = read_json_object(path, study.root, problems)
    if content is not None:
        value = content.get("ViewDefaults", content)
        conditions = list(study.design_rows.conditions) if study.design_rows is not None else study.condition_ids
        check_view_defaults(value, [c.id for c in study.contrasts], conditions, study.participants, problems, path.name)
    if problems:
        raise StudyError(problems)
    assert content is not None
    return dataclasses.replace(study, design={**study.design, "ViewDefaults": content.get("ViewDefaults", content)})


def detect_format(root: Path) -> str | None:
    """Which reader a folder needs: "spm", "fsl", "project", "maps", or None."""
    from dashboard.formats import fsl, maps, spm

    if spm.detect(root):
        return "spm"
    if fsl.detect(root):
        return "fsl"
    if (root / "design.json").exists() or (root / "dataset_description.json").exists():
        return "project"
    if maps.detect(root):
        return "maps"
    return None


def open_study(root: str | Path, options: OpenOptions | None = None, *, check_data: bool = True,
               defer_participant_data: bool = False) -> Study:
    """Open any supported results folder (read-only); :class:`StudyError` otherwise."""
    from dashboard.formats import fsl, maps, spm

    root = Path(root)
    options = options or OpenOptions()
    if not root.is_dir():
        raise StudyError([Problem(str(root), "not a directory")])
    kind = detect_format(root)
    if kind == "spm":
        return with_view_defaults(spm.load(root, options, check_data=check_data, defer_participant_data=defer_participant_data), options)
    if kind == "fsl":
        return with_view_defaults(fsl.load(root, options, check_data=check_data, defer_participant_data=defer_participant_data), options)
    if kind == "project":
        return load_study(root, check_data=check_data, defer_participant_data=defer_participant_data)
    if kind == "maps":
        return with_view_defaults(maps.load(root, options, check_data=check_data), options)
    raise StudyError([Problem(str(root), "not a results folder: no SPM.mat, no FEAT cope<N>.feat, no design.json and no statistic maps (*.nii, *.nii.gz)")])

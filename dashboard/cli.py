"""Command line: ``cue-dashboard serve | validate | clusters | regress | make-sample``.

Every command reads results folders read-only.  Errors are one line per problem,
``<file>: <what is wrong>``, with exit status 2.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dashboard.formats import OpenOptions, open_study
from dashboard.results import Problem, Study, StudyError

if TYPE_CHECKING:  # (imported where used: the CLI starts without the statistics stack)
    from dashboard.analysis import Analysis, Direction, RegressionOutcome, Threshold

EXIT_PROBLEMS = 2


def default_results_dir() -> Path:
    """The bundled synthetic sample study (``sample_results/`` at the repository top)."""
    return Path(__file__).resolve().parent.parent / "sample_results"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _message(exc: Exception) -> str:
    """One line for a refused request (a KeyError's str() would add quotes)."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _print_problems(exc: StudyError) -> int:
    for problem in exc.problems:
        print(problem, file=sys.stderr)
    return EXIT_PROBLEMS


def _statistic_text(stat: str, df: float, df_effect: float) -> str:
    if stat == "Z":
        return "Z"
    if stat == "F":
        return f"F, df [{df_effect:g}, {df:g}]"
    return f"T, df {df:g}"


def summarize(study: Study) -> str:
    """A few lines describing a loaded study (what `validate` prints)."""
    by_kind: dict[str, list[str]] = {}
    for c in study.contrasts:  # in the folder's contrast order, grouped by statistic and df
        gm = study.group_maps.get(c.id)
        if gm is not None:
            by_kind.setdefault(_statistic_text(gm.statistic, gm.df, gm.df_effect), []).append(c.id)
    maps = "; ".join(f"{', '.join(cids)} ({kind})" for kind, cids in by_kind.items()) or "none"
    vs = "x".join(f"{v:g}" for v in study.voxel_size)
    lines = [
        f"{study.root}: OK{' (synthetic sample data)' if study.synthetic else ''}",
        f"  participants: {len(study.participant_ids)}"
        + ("" if study.can_refit else " (no participant images: group maps only)"),
        *([f"  conditions:   {', '.join(study.condition_ids)}"] if study.conditions else []),
        f"  contrasts:    {', '.join(c.id for c in study.contrasts)}",
        f"  group maps:   {maps}",
        f"  grid:         {'x'.join(map(str, study.shape))} voxels of {vs} mm, {study.n_voxels} in the brain mask",
    ]
    if study.tables:
        lines.append(f"  tables:       {', '.join(sorted(study.tables))}")
    lines.extend(f"  {note}" for note in study.notes)
    return "\n".join(lines)


def _open_options(args: argparse.Namespace) -> OpenOptions:
    root = getattr(args, "first_level_root", None)
    view = getattr(args, "view_defaults", None)
    table = getattr(args, "participants_table", None)
    return OpenOptions(stat=getattr(args, "stat", None), df=getattr(args, "df", None), first_level_root=Path(root) if root else None,
                       view_defaults=Path(view) if view else None, participants_table=Path(table) if table else None)


def _format_options(p: argparse.ArgumentParser) -> None:
    """What a folder of plain statistic maps may not say about itself."""
    p.add_argument("--stat", choices=["t", "z"], default=None, help="statistic of plain maps without a sidecar or a telling name")
    p.add_argument("--df", type=float, default=None, help="error df of plain T maps without a sidecar")
    p.add_argument("--first-level-root", default=None, help="where to look for an SPM design's input images (SPM.xY.P) by their path's tail")
    p.add_argument("--participants-table", default=None, help="participants TSV for an SPM design, matched by participant_id or, "
                                                              "without that column, by order (default: participants.tsv beside SPM.mat)")
    p.add_argument("--view-defaults", default=None, help="JSON of ViewDefaults (first contrast, condition, covariate, quick filters) "
                                                         "for an SPM, FSL or plain-maps folder (default: cue-dashboard.json in it)")


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        study = open_study(args.results, _open_options(args), check_data=True)
    except StudyError as exc:
        return _print_problems(exc)
    print(summarize(study))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from dashboard.app import Settings, create_app  # Dash only where needed

    if not _is_loopback(args.host):
        print(
            f"warning: binding to {args.host} makes the dashboard reachable from other machines; "
            "it has no authentication.",
            file=sys.stderr,
        )
    if args.celery and not args.redis_url:
        print("serve: --celery needs --redis-url (the broker and job store)", file=sys.stderr)
        return EXIT_PROBLEMS
    folders = args.results or [str(default_results_dir())]
    settings = [Settings(results_dir=Path(f), debug=args.debug, cache_dir=args.cache_dir, redis_url=args.redis_url,
                         celery=args.celery, open_options=_open_options(args)) for f in folders]
    try:
        if len(settings) == 1:
            app = create_app(settings[0])
        else:
            from dashboard.app import create_server

            server = create_server(settings)
    except StudyError as exc:
        return _print_problems(exc)
    print(f"cue-dashboard: serving {', '.join(folders)} on http://{args.host}:{args.port}/", flush=True)
    if len(settings) == 1:
        app.run(host=args.host, port=args.port, debug=args.debug)
    else:
        server.run(host=args.host, port=args.port, debug=args.debug)
    return 0


def _analysis_options(p: argparse.ArgumentParser) -> None:
    """Threshold, extent, model and participant options shared by clusters/regress."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--p-unc", type=float, default=None, help="voxel threshold as uncorrected p (default 0.001)")
    g.add_argument("--t", type=float, default=None, help="voxel threshold as a T value")
    g.add_argument("--p-fwe", type=float, default=None, help="voxel threshold as an FWE-corrected p (RFT, SPM's 'FWE'), e.g. 0.05")
    p.add_argument("--k", type=int, default=10, help="extent threshold in voxels (default 10)")
    p.add_argument("--model", choices=["cells", "subjects", "paired"], default="cells", help="group model (default cells: df = images - 4, as published)")
    p.add_argument("--participants", default=None, help="comma-separated participant ids (default: all)")
    p.add_argument("--format", choices=["tsv", "json"], default="tsv")
    _format_options(p)


def _svc_mask(args: argparse.Namespace, study: Study) -> np.ndarray | None:
    """Small-volume ROI from --svc-mask (NIfTI on the study grid) or --svc-region."""
    if args.svc_mask:
        from dashboard.nifti import ImageError, read_header, read_volume

        path = Path(args.svc_mask)
        try:
            header = read_header(path)
            if header.shape != study.shape or not np.allclose(header.affine, study.affine, atol=1e-3):
                raise ImageError(f"not on the study grid {'x'.join(map(str, study.shape))} (resample it first)")
            return read_volume(path, header) > 0
        except ImageError as exc:
            raise StudyError([Problem(str(path), str(exc))]) from None
    if args.svc_region:
        from dashboard.atlas import region_mask

        return region_mask([r.strip() for r in args.svc_region.split(",")], study.shape, study.affine, "aal")
    return None


def _regression_options(p: argparse.ArgumentParser) -> None:
    """The folder, cluster, values and fit of a regression (regress, influence)."""
    p.add_argument("results")
    p.add_argument("--contrast", required=True)
    p.add_argument("--peak", required=True, help="X,Y,Z in MNI mm: the cluster containing this point")
    p.add_argument("--condition", required=True, help="condition whose images give the values, e.g. cocaine_placebo")
    p.add_argument("--covariate", required=True, help="a numeric participants.tsv column")
    p.add_argument("--value", choices=["eigenvariate", "mean"], default="eigenvariate", help="SPM first eigenvariate (default) or voxel mean")
    p.add_argument("--method", choices=["lts", "ols"], default="lts", help="LTS as R robustbase::ltsReg defaults (default) or OLS")
    _analysis_options(p)


def _threshold(args: argparse.Namespace) -> Threshold:
    from dashboard.analysis import DEFAULT_P_UNC, Threshold

    if args.t is not None:
        return Threshold(t=args.t)
    if getattr(args, "p_fwe", None) is not None:
        return Threshold(p_fwe=args.p_fwe)
    return Threshold(p_unc=args.p_unc if args.p_unc is not None else DEFAULT_P_UNC)


def _subset(args: argparse.Namespace) -> tuple[str, ...] | None:
    return tuple(p.strip() for p in args.participants.split(",") if p.strip()) if args.participants else None


def _load_analysis(args: argparse.Namespace, *, resolve_contrast: bool = True) -> Analysis:
    from dashboard.analysis import Analysis

    # every check of validate except participant-image data, which is checked when (and
    # only if) a command reads those images: a stored group map needs none of them
    analysis = Analysis(open_study(args.results, _open_options(args), check_data=True, defer_participant_data=True))
    if resolve_contrast:
        args.contrast = analysis.study.resolve_contrast(args.contrast)
    return analysis


def cmd_clusters(args: argparse.Namespace) -> int:
    try:
        analysis = _load_analysis(args)
        threshold = _threshold(args)
        result = analysis.clusters(
            args.contrast, directions=(args.direction,), threshold=threshold, extent=args.k,
            model=args.model, participants=_subset(args), svc_mask=_svc_mask(args, analysis.study),
        )
    except StudyError as exc:
        return _print_problems(exc)
    except (ValueError, KeyError) as exc:
        print(f"{args.results}: {_message(exc)}", file=sys.stderr)
        return EXIT_PROBLEMS
    table = result.table.drop(columns=["is_main_peak"])
    footer = result.footers.get(args.direction)
    if analysis.study.design_rows is not None:
        n = len(analysis.subset(_subset(args)))
        model_note = "the folder's design" + ("" if n == len(analysis.study.participant_ids) else f" refitted on {n} participants")
    else:
        model_note = "the folder's stored map" if analysis.uses_stored_maps else f"model {args.model}"
    svc_note = f", small volume {args.svc_mask or args.svc_region}" if (args.svc_mask or args.svc_region) else ""
    title = f"{args.contrast} {args.direction}: {threshold.describe(result.df, result.smoothness, result.statistic)}, k >= {args.k}, {model_note}{svc_note}"
    if args.format == "json":
        payload = {
            "contrast": args.contrast, "direction": args.direction, "title": title, "height_threshold": result.height,
            "extent_threshold": result.extent, "df": result.df if math.isfinite(result.df) else None,
            "statistic": result.statistic.stat if result.statistic else "T",
            "df_effect": result.statistic.df_effect if result.statistic and result.statistic.stat == "F" else None,
            "rows": json.loads(table.to_json(orient="records", double_precision=15)),
            "footer": footer.to_dict() if footer is not None else None,
        }
        print(json.dumps(payload, indent=1, allow_nan=False))
    else:
        print(f"# {title}")
        print(table.to_csv(sep="\t", index=False, float_format="%.6g"), end="")
        for line in footer.lines() if footer is not None else ["(no smoothness: RFT p-values and footer not available)"]:
            print(f"# {line}")
    return 0


def _regression(args: argparse.Namespace) -> RegressionOutcome:
    """The regression `regress` and `influence` are about, from their shared options."""
    peak = tuple(float(v) for v in args.peak.split(","))
    if len(peak) != 3 or not all(np.isfinite(peak)):
        raise ValueError("--peak takes three finite numbers X,Y,Z in MNI mm")
    analysis = _load_analysis(args)
    return analysis.regress(args.contrast, peak, condition=args.condition, covariate=args.covariate, value=args.value,
                            method=args.method, threshold=_threshold(args), extent=args.k, model=args.model, participants=_subset(args))


def cmd_regress(args: argparse.Namespace) -> int:
    try:
        out = _regression(args)
    except StudyError as exc:
        return _print_problems(exc)
    except (ValueError, KeyError) as exc:
        print(f"{args.results}: {_message(exc)}", file=sys.stderr)
        return EXIT_PROBLEMS
    fit = out.fit
    payload = {
        "method": fit.method, "intercept": fit.intercept, "slope": fit.slope, "r_squared": fit.r_squared,
        "p_value": fit.p_value, "t_value": fit.t_value, "df_resid": fit.df_resid, "n": fit.n, "n_eff": fit.n_eff,
        "value": args.value, "condition": args.condition, "covariate": args.covariate,
        "cluster_size": out.cluster_size, "cluster_peak": list(out.cluster_peak),
        "participants": [
            {"participant_id": pid, "covariate": None if np.isnan(cov) else cov, "value": value, "weight": None if np.isnan(w) else w}
            for pid, cov, value, w in zip(out.participants["participant_id"], out.participants["covariate"].to_numpy(float),
                                          out.participants["value"].to_numpy(float), out.participants["weight"].to_numpy(float), strict=True)
        ],
    }
    if args.format == "json":
        print(json.dumps(payload, indent=2))
    else:
        print(f"# {fit.method.upper()} regression of the {args.value} of the {args.contrast} cluster at {args.peak} "
              f"({out.cluster_size} voxels), condition {args.condition}, on {args.covariate}")
        print(f"intercept\t{fit.intercept:.6g}\nslope\t{fit.slope:.6g}\nr_squared\t{fit.r_squared:.6g}\n"
              f"p_value\t{fit.p_value:.6g}\nn_eff\t{fit.n_eff:g}\ndf_resid\t{fit.df_resid:g}")
        print(out.participants.to_csv(sep="\t", index=False, float_format="%.6g"), end="")
    return 0


def cmd_check_table(args: argparse.Namespace) -> int:
    """A published peak table against the maps: one row per input row, in order."""
    from dashboard.claims import check_table

    try:
        analysis = _load_analysis(args, resolve_contrast=False)
        table = _read_peak_table(Path(args.table), analysis.study)
        if args.contrast:
            args.contrast = analysis.study.resolve_contrast(args.contrast)
        mapping = _column_mapping(args)
        rows, line = check_table(analysis, table, contrast=args.contrast, direction=args.direction, threshold=_threshold(args),
                                 extent=args.k, mapping=mapping, model=args.model, participants=_subset(args))
    except StudyError as exc:
        return _print_problems(exc)
    except (ValueError, KeyError) as exc:
        print(f"{args.table}: {_message(exc)}", file=sys.stderr)
        return EXIT_PROBLEMS
    _print_rows(args, rows, line)
    return 0


def _print_rows(args: argparse.Namespace, rows: Any, line: str) -> None:
    """A table of rows with a summary line: TSV under a ``# `` line, or JSON."""
    if args.format == "json":
        print(json.dumps({"summary": line, "rows": json.loads(rows.to_json(orient="records", double_precision=15))}, indent=1))
    else:
        print(f"# {line}")
        print(rows.to_csv(sep="\t", index=False, float_format="%.6g"), end="")


def _column_mapping(args: argparse.Namespace) -> dict[str, str] | None:
    """--columns x=mni_x,y=mni_y,...: field -> column; a ValueError for a malformed entry."""
    if not args.columns:
        return None
    items = [item.split("=", 1) for item in args.columns.split(",")]
    if any(len(item) != 2 or not item[0].strip() or not item[1].strip() for item in items):
        raise ValueError(f"--columns takes FIELD=COLUMN pairs separated by commas, got {args.columns!r}")
    return {field.strip(): column.strip() for field, column in items}


def _read_peak_table(path: Path, study: Study) -> Any:
    """A peak table: a name of the folder's tables/ (e.g. published_clusters), or a
    TSV/CSV file anywhere (read, never written)."""
    if not path.exists() and path.name in study.tables:
        return study.tables[path.name]
    if not path.is_file():
        known = ", ".join(sorted(study.tables)) or "none"
        raise ValueError(f"no such file, and not a table of the folder (tables: {known})")
    from dashboard.claims import read_uploaded_table

    try:
        return read_uploaded_table(path.name, path.read_bytes())  # the parser of the page's uploads (TSV/CSV sniffed)
    except ValueError as exc:  # its message names the file first: the caller names the path
        raise ValueError(str(exc).removeprefix(f"{path.name}: ")) from None


def cmd_peak_distances(args: argparse.Namespace) -> int:
    """Peaks of other studies against one contrast's clusters: distance to the nearest
    listed cluster, that cluster, the map's value at the peak; one row per input row."""
    from dashboard.claims import peak_distances

    try:
        analysis = _load_analysis(args)
        table = _read_peak_table(Path(args.table), analysis.study)
        mapping = _column_mapping(args)
        directions = ("pos", "neg") if args.direction == "both" else (args.direction,)
        rows = peak_distances(analysis, table, contrast=args.contrast, directions=directions, threshold=_threshold(args), extent=args.k,
                              model=args.model, participants=_subset(args), mapping=mapping)
    except StudyError as exc:
        return _print_problems(exc)
    except (ValueError, KeyError) as exc:
        print(f"{args.table}: {_message(exc)}", file=sys.stderr)
        return EXIT_PROBLEMS
    inside = int((rows["nearest_cluster_mm"] == 0).sum())
    line = f"{len(rows)} peaks against {args.contrast} ({args.direction}, k >= {args.k}): {inside} inside a listed cluster"
    _print_rows(args, rows, line)
    return 0


def cmd_correspond(args: argparse.Namespace) -> int:
    """Clusters of one contrast against the other contrasts' at the same threshold."""
    from dashboard.correspondence import correspondence

    try:
        analysis = _load_analysis(args)
        table = correspondence(analysis, args.contrast, threshold=_threshold(args), extent=args.k, participants=_subset(args),
                               model=args.model)
    except StudyError as exc:
        return _print_problems(exc)
    except (ValueError, KeyError) as exc:
        print(f"{args.results}: {_message(exc)}", file=sys.stderr)
        return EXIT_PROBLEMS
    if args.format == "json":
        print(json.dumps({"contrast": args.contrast, "rows": json.loads(table.to_json(orient="records", double_precision=15))}, indent=1))
    else:
        print(f"# clusters of {args.contrast} and the overlapping clusters of the other contrasts (voxels in common, Dice, peak distance)")
        print(table.to_csv(sep="\t", index=False, float_format="%.6g"), end="")
    return 0


def cmd_influence(args: argparse.Namespace) -> int:
    """How much each participant drives the cluster-value regression (jackknife, Cook's
    distance, DFBETAS, leverage; LTS refitted without each); with ``--cluster-survival``
    also whether the cluster itself survives leaving each participant out."""
    from dashboard.stats.influence import influence

    try:
        out = _regression(args)
        frame = out.participants
        inf = influence(frame["covariate"].to_numpy(float), frame["value"].to_numpy(float))
        survival = _cluster_survival(args) if args.cluster_survival else None
    except StudyError as exc:
        return _print_problems(exc)
    except (ValueError, KeyError) as exc:
        print(f"{args.results}: {_message(exc)}", file=sys.stderr)
        return EXIT_PROBLEMS
    table = frame[["participant_id"]].assign(loo_slope=inf.loo_slope, loo_r_squared=inf.loo_r_squared, cooks_distance=inf.cooks_distance,
                                             dfbetas_slope=inf.dfbetas_slope, leverage=inf.leverage, lts_loo_slope=inf.lts_loo_slope)
    most = str(frame["participant_id"].iloc[inf.most_influential])
    if args.format == "json":
        payload: dict[str, Any] = {"slope": out.fit.slope, "method": out.fit.method, "most_influential": most,
                                   "participants": json.loads(table.to_json(orient="records", double_precision=15))}
        if survival is not None:
            payload["cluster_survival"] = survival.to_dict()
        print(json.dumps(payload, indent=1))
    else:
        print(f"# {out.fit.method.upper()} slope {out.fit.slope:.4g}; removing {most} changes the OLS slope most")
        print(table.to_csv(sep="\t", index=False, float_format="%.6g"), end="")
        if survival is not None:
            f = survival.full
            print(f"# cluster survival, each participant left out: the {survival.contrast} {survival.direction} cluster at "
                  f"{f['x']:g},{f['y']:g},{f['z']:g} (k {f['k']}, peak T {f['peak_t']:.2f}): {survival.summary['text']}; {survival.note}")
            print(survival.frame.to_csv(sep="\t", index=False, float_format="%.6g"), end="")
    return 0


def _cluster_survival(args: argparse.Namespace) -> Any:
    """``influence --cluster-survival``: leave-one-out survival of the cluster at --peak
    (the direction its T has there), progress on stderr when it is a terminal.  (The
    study is opened again: the regression step does not hand its analysis on.)"""
    from dashboard.survival import leave_one_out

    analysis = _load_analysis(args)
    x, y, z = (float(v) for v in args.peak.split(","))  # (checked by the regression step)
    subset = _subset(args)
    tvec, _ = analysis.t_map(args.contrast, args.model, subset)
    ijk = tuple(int(v) for v in np.rint(np.linalg.solve(analysis.study.affine, [x, y, z, 1.0])[:3]))
    negative = bool(analysis.study.unmask(tvec)[ijk] < 0)  # (a listed cluster is the one of the sign T has there)
    tty = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if tty:
            print(f"\rleft out {done} of {total}", end="" if done < total else "\n", file=sys.stderr, flush=True)

    return leave_one_out(analysis, args.contrast, (x, y, z), direction="neg" if negative else "pos", threshold=_threshold(args),
                         extent=args.k, model=args.model, participants=subset, progress=progress)


def cmd_permute(args: argparse.Namespace) -> int:
    """The cluster table with sign-flip permutation FWE p-values beside SPM's RFT ones."""
    from dashboard import permutation as perm

    directions: tuple[Direction, ...] = ("pos", "neg") if args.direction == "both" else (args.direction,)
    try:
        analysis = _load_analysis(args)
        model = "design" if analysis.study.design_rows is not None else args.model
        table_model = args.model if analysis.study.design_rows is None else "cells"
        subset = analysis.subset(_subset(args))
        threshold = _threshold(args)
        table = analysis.clusters(args.contrast, directions=directions, threshold=threshold, extent=args.k,
                                  model=table_model, participants=subset)  # type: ignore[arg-type]
        request = perm.PermutationRequest(args.contrast, table.height, directions, model, subset, args.n_perm, args.seed, args.tfce)
        tty = sys.stderr.isatty()
        started = time.perf_counter()

        def on_batch(done: int, total: int) -> bool:
            if tty or done == total:
                rate = done / max(time.perf_counter() - started, 1e-9)
                bar = "#" * int(30 * done / total)
                print(f"\r[{bar:<30}] {done}/{total} flips, {rate:.0f}/s, {(total - done) / max(rate, 1e-9):.0f} s left ",
                      end="" if done < total else "\n", file=sys.stderr, flush=True)
            return True

        if args.redis_url:
            result = _permute_on_workers(args, analysis, request, on_batch)
        else:
            result = perm.run(analysis, request, on_batch, n_jobs=args.jobs)
        rows = perm.add_columns(analysis, table, result).drop(columns=["is_main_peak"])
    except StudyError as exc:
        return _print_problems(exc)
    except (ValueError, KeyError) as exc:
        print(f"{args.results}: {_message(exc)}", file=sys.stderr)
        return EXIT_PROBLEMS
    used = f"{result.null.n} sign flips" + (f" (all 2^{len(subset)})" if result.exhaustive else f" (seed {args.seed})")
    line = (f"{args.contrast} {args.direction}: {threshold.describe(table.df, table.smoothness, table.statistic)}, k >= {args.k}; "
            f"permutation p-FWE from {used}, one-sample t of per-participant contrast images, "
            f"clusters at T > {table.height:.4f} (18-connectivity){', TFCE E=0.5 H=2 (26-connectivity)' if args.tfce else ''}")
    if args.format == "json":
        print(json.dumps({"summary": line, "n_perm": result.null.n, "exhaustive": result.exhaustive, "seed": args.seed,
                          "height_threshold": table.height, "df": table.df,
                          "rows": json.loads(rows.to_json(orient="records", double_precision=15))}, indent=1))
    else:
        _print_rows(args, rows, line)
    return 0


def _permute_on_workers(args: argparse.Namespace, analysis: Analysis, request: Any, on_batch: Any) -> Any:
    """The request through the shared job store and Celery workers (``--redis-url``)."""
    from dashboard.jobs.permute import CeleryExecutor, PermutationJobs
    from dashboard.jobs.store import RedisStore
    from dashboard.jobs.worker import make_celery, open_options_dict

    executor = CeleryExecutor(make_celery(args.redis_url), str(Path(args.results).resolve()), open_options_dict(_open_options(args)))
    jobs = PermutationJobs(analysis, RedisStore(args.redis_url), executor)
    final = jobs.run(request, lambda state: on_batch(int(state.get("done", 0)), max(int(state.get("total", 0)), 1))
                     if state.get("status") == "running" and state.get("total") else None)
    if final.get("status") != "done":
        raise ValueError(f"the permutation job ended {final.get('status')}: {final.get('error', '')}".rstrip(": "))
    result = jobs.result(request)
    assert result is not None
    return result


def cmd_worker(args: argparse.Namespace) -> int:
    """A Celery worker for permutation chunks (the broker and job store: --redis-url)."""
    from dashboard.jobs.worker import run_worker

    run_worker(args.redis_url, concurrency=args.concurrency, loglevel=args.loglevel)
    return 0


def cmd_make_sample(args: argparse.Namespace) -> int:
    from dashboard.sample import DEFAULT_SEED, make_sample

    seed = DEFAULT_SEED if args.seed is None else args.seed
    try:
        out = make_sample(args.out, seed=seed, force=args.force)
    except FileExistsError as exc:
        print(exc, file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"wrote the synthetic sample study to {out} (seed {seed})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cue-dashboard", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="serve the dashboard in the browser")
    p.add_argument("results", nargs="*", help="results folder(s); several get a switch between them (default: the bundled synthetic sample)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8050)
    p.add_argument("--debug", action="store_true", help="Dash/Werkzeug debug mode (never on a shared network)")
    p.add_argument("--cache-dir", default=None, help="file-system cache folder (default: a temporary folder, never inside the results)")
    p.add_argument("--redis-url", default=None, help="use Redis as cache backend, e.g. redis://127.0.0.1:6379/0")
    p.add_argument("--celery", action="store_true", help="run permutation jobs on Celery workers through --redis-url "
                                                         "(start them with `cue-dashboard worker --redis-url URL`)")
    _format_options(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("validate", help="check a results folder; exit 2 with one line per problem")
    p.add_argument("results")
    _format_options(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("clusters", help="SPM-convention cluster table of a contrast")
    p.add_argument("results")
    p.add_argument("--contrast", required=True, help="contrast id, 1-based number (SPM/FSL numbering) or label")
    p.add_argument("--direction", choices=["pos", "neg"], default="pos", help="pos: the contrast as its weights define it; neg: the reverse (SPM: the negated contrast)")
    _analysis_options(p)
    svc = p.add_mutually_exclusive_group()
    svc.add_argument("--svc-mask", default=None, help="small-volume correction in this ROI (NIfTI on the study grid)")
    svc.add_argument("--svc-region", default=None, help="small-volume correction in AAL2 region(s), e.g. Hippocampus_R,Hippocampus_L")
    p.set_defaults(func=cmd_clusters)

    p = sub.add_parser("regress", help="regress per-participant cluster values on a covariate")
    _regression_options(p)
    p.set_defaults(func=cmd_regress)

    p = sub.add_parser("check-table", help="hold a published peak table against the maps (claim check)")
    p.add_argument("results")
    p.add_argument("table", help="a TSV/CSV peak table, or the name of one of the folder's tables/ (e.g. published_clusters)")
    p.add_argument("--contrast", default=None, help="check every row against this contrast (default: each row's contrast column)")
    p.add_argument("--direction", choices=["pos", "neg"], default=None, help="default: read from the contrast cell ('B gt A' is neg)")
    p.add_argument("--columns", default=None, help="column mapping when names are not recognised, e.g. x=mni_x,y=mni_y,z=mni_z,t=tval")
    _analysis_options(p)
    p.set_defaults(func=cmd_check_table)

    p = sub.add_parser("peak-distances", help="peaks of other studies (literature) against a contrast's clusters: distance, map value")
    p.add_argument("results")
    p.add_argument("table", help="a TSV/CSV peak table, or the name of one of the folder's tables/ (e.g. literature_peaks)")
    p.add_argument("--contrast", required=True)
    p.add_argument("--direction", choices=["pos", "neg", "both"], default="pos", help="clusters of this direction (default pos)")
    p.add_argument("--columns", default=None, help="column mapping when names are not recognised, e.g. x=mni_x,y=mni_y,z=mni_z")
    _analysis_options(p)
    p.set_defaults(func=cmd_peak_distances)

    p = sub.add_parser("influence", help="how much each participant drives a cluster's regression (jackknife, Cook's D, DFBETAS)")
    _regression_options(p)
    p.add_argument("--cluster-survival", action="store_true", help="also refit the group model without each participant and say "
                                                                   "whether the cluster survives (peak T, k, cluster p-FWE, Dice)")
    p.set_defaults(func=cmd_influence)

    p = sub.add_parser("correspond", help="which clusters of a contrast overlap the other contrasts' (voxels, Dice, peak distance)")
    p.add_argument("results")
    p.add_argument("--contrast", required=True)
    _analysis_options(p)
    p.set_defaults(func=cmd_correspond)

    p = sub.add_parser("permute", help="permutation FWE p-values (sign flips: max T, cluster extent and mass, TFCE) for a cluster table")
    p.add_argument("results")
    p.add_argument("--contrast", required=True, help="contrast id, 1-based number (SPM/FSL numbering) or label")
    p.add_argument("--direction", choices=["pos", "neg", "both"], default="pos")
    p.add_argument("--n-perm", type=int, default=5000, help="sign flips (default 5000; every flip when 2^N is fewer)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tfce", action="store_true", help="also TFCE (E 0.5, H 2, exact integral) and its voxelwise p-FWE at each peak")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--p-unc", type=float, default=None, help="cluster-forming threshold as uncorrected p (default 0.001)")
    g.add_argument("--t", type=float, default=None, help="cluster-forming threshold as a T value")
    p.add_argument("--k", type=int, default=10, help="extent threshold of the listed clusters (default 10)")
    p.add_argument("--model", choices=["cells", "subjects", "paired"], default="paired", help="the sign-flip test is the paired model's one-sample t "
                                                                          "(a package design: its own, checked)")
    p.add_argument("--participants", default=None, help="comma-separated participant ids (default: all)")
    p.add_argument("--format", choices=["tsv", "json"], default="tsv")
    p.add_argument("--jobs", type=int, default=1, help="threads for TFCE (default 1)")
    p.add_argument("--redis-url", default=None, help="run on Celery workers through this Redis (see `cue-dashboard worker`); "
                                                     "results are shared with servers using the same Redis")
    _format_options(p)
    p.set_defaults(func=cmd_permute)

    p = sub.add_parser("worker", help="a Celery worker for permutation jobs (serve --celery / permute --redis-url)")
    p.add_argument("--redis-url", required=True, help="the broker and job store, e.g. redis://127.0.0.1:6379/0")
    p.add_argument("--concurrency", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--loglevel", default="WARNING")
    p.set_defaults(func=cmd_worker)

    # (dashboard.sample, which imports scipy, is imported only when the command runs)
    p = sub.add_parser("make-sample", help="generate the synthetic sample study (deterministic)")
    p.add_argument("out", help="output folder (must be empty or absent unless --force)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the seed of the committed sample_results/)")
    p.add_argument("--force", action="store_true", help="replace the content of a non-empty output folder")
    p.set_defaults(func=cmd_make_sample)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

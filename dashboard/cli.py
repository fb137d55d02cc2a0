"""Command line: ``cue-dashboard serve | validate`` (and the analysis commands).

Every command reads results folders read-only.  Errors are one line per problem,
``<file>: <what is wrong>``, with exit status 2.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from collections.abc import Sequence
from pathlib import Path

from dashboard.results import Study, StudyError, load_study

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


def _print_problems(exc: StudyError) -> int:
    for problem in exc.problems:
        print(problem, file=sys.stderr)
    return EXIT_PROBLEMS


def summarize(study: Study) -> str:
    """A few lines describing a loaded study (what `validate` prints)."""
    dfs = sorted({gm.df for gm in study.group_maps.values()})
    vs = "x".join(f"{v:g}" for v in study.voxel_size)
    lines = [
        f"{study.root}: OK{' (synthetic sample data)' if study.synthetic else ''}",
        f"  participants: {len(study.participant_ids)}"
        + ("" if study.has_participant_images else " (no participant images: group maps only)"),
        f"  conditions:   {', '.join(study.condition_ids)}",
        f"  contrasts:    {', '.join(c.id for c in study.contrasts)}",
        f"  group maps:   {', '.join(sorted(study.group_maps)) or 'none'} (df {', '.join(f'{d:g}' for d in dfs) or '-'})",
        f"  grid:         {'x'.join(map(str, study.shape))} voxels of {vs} mm, {study.n_voxels} in the brain mask",
    ]
    if study.tables:
        lines.append(f"  tables:       {', '.join(sorted(study.tables))}")
    return "\n".join(lines)


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        study = load_study(args.results, check_data=True)
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
    settings = Settings(results_dir=Path(args.results), debug=args.debug, cache_dir=args.cache_dir, redis_url=args.redis_url)
    try:
        app = create_app(settings)
    except StudyError as exc:
        return _print_problems(exc)
    print(f"cue-dashboard: serving {args.results} on http://{args.host}:{args.port}/", flush=True)
    app.run(host=args.host, port=args.port, debug=args.debug)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cue-dashboard", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="serve the dashboard in the browser")
    p.add_argument("results", nargs="?", default=str(default_results_dir()), help="results folder (default: the bundled synthetic sample)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8050)
    p.add_argument("--debug", action="store_true", help="Dash/Werkzeug debug mode (never on a shared network)")
    p.add_argument("--cache-dir", default=None, help="file-system cache folder (default: a temporary folder, never inside the results)")
    p.add_argument("--redis-url", default=None, help="use Redis as cache backend, e.g. redis://127.0.0.1:6379/0")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("validate", help="check a results folder; exit 2 with one line per problem")
    p.add_argument("results")
    p.set_defaults(func=cmd_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

#!/usr/bin/env bash
# Make real SPM12 second-level folders (test fixtures) from the bundled
# synthetic sample.  See scripts/spm_fixtures/README.md.
#
# Usage: scripts/spm_fixtures/make_spm_folders.sh SPM12_DIR OUT_DIR [SCRATCH]
#   SPM12_DIR  SPM12 r7771 with its MEX files built for Octave
#              (cd src && make PLATFORM=octave main-all main-install)
#   OUT_DIR    e.g. tests/data/spm_folders (only the entries this script
#              writes are replaced: firstlevel/, the six design folders,
#              spm_summary.json, README.md)
#   SCRATCH    where SPM runs (default /tmp/cue-nac-study-spm12); it must
#              not exist.  Its absolute path ends up in SPM.swd and
#              SPM.xY.P, so a fixed default keeps the output deterministic,
#              and it must differ from OUT_DIR (paths "of another machine").
#
# Steps: (a) prepare_firstlevel.py (project venv) writes SCRATCH/firstlevel;
# (b) octave-cli runs make_spm_folders.m (spm_jobman batches + spm_list
# tables) in SCRATCH; (c) finish_folders.py copies the results to OUT_DIR,
# fixes the date in SPM.mat's descriptive header text, checks every folder
# with scipy/nibabel and writes OUT_DIR/README.md.  SCRATCH is removed at exit.
#
# Environment (defaults make the committed fixtures; anything else makes a
# benchmark folder, e.g. the full-resolution ff_cells for scripts/bench_open.py):
#   SPM_FIXTURES_VOXEL=8        first-level voxel edge in mm
#   SPM_FIXTURES_GRID=brain     brain: the brain's bounding box; full: the
#                               sample's whole field of view (with VOXEL=2 the
#                               sample's own 79x95x79 grid)
#   SPM_FIXTURES_DESIGNS=       comma-separated subset of ff_cells, ff_subjects,
#                               onesample, onesample_cov, twosample, paired
#                               (default: all six)
#   SPM_FIXTURES_IN_PLACE=0     1: SPM runs in OUT_DIR itself (no SCRATCH, nothing
#                               copied or removed), so SPM.swd and SPM.xY.P are
#                               valid paths, as in a researcher's own folder
# e.g.  SPM_FIXTURES_VOXEL=2 SPM_FIXTURES_GRID=full SPM_FIXTURES_DESIGNS=ff_cells \
#       SPM_FIXTURES_IN_PLACE=1 scripts/spm_fixtures/make_spm_folders.sh /tmp/spm12 /tmp/spm_bench
set -euo pipefail
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: $0 SPM12_DIR OUT_DIR [SCRATCH]" >&2; exit 2
fi
start=$(date +%s)
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
spm_dir="$(cd "$1" && pwd)"
[ -f "$spm_dir/spm.m" ] || { echo "$spm_dir: no spm.m" >&2; exit 2; }
mkdir -p "$2"; out_dir="$(cd "$2" && pwd)"
voxel="${SPM_FIXTURES_VOXEL:-8}"
grid="${SPM_FIXTURES_GRID:-brain}"
designs="${SPM_FIXTURES_DESIGNS:-}"
in_place="${SPM_FIXTURES_IN_PLACE:-0}"
case "$grid" in brain) grid_opt=();; full) grid_opt=(--full-grid);;
  *) echo "SPM_FIXTURES_GRID must be brain or full" >&2; exit 2;; esac
designs="${designs// /}"
case "$designs" in *[!a-z_,]*) echo "SPM_FIXTURES_DESIGNS: names separated by commas" >&2; exit 2;; esac
if [ -n "$designs" ]; then
  designs_m=", {'${designs//,/\', \'}'}"      # Octave cell array: , {'ff_cells', 'paired'}
  finish_opt=(--designs "$designs")
else
  designs_m=""; finish_opt=()
fi
# anything but the defaults makes a benchmark folder (short README.md)
if [ "$grid" != brain ] || [ -n "$designs" ] || [ "$in_place" = 1 ]; then finish_opt+=(--benchmark); fi
if [ "$in_place" = 1 ]; then
  [ $# -eq 2 ] || { echo "SPM_FIXTURES_IN_PLACE=1 takes no SCRATCH" >&2; exit 2; }
  scratch="$out_dir"
  for d in ${designs//,/ }; do
    [ ! -e "$out_dir/$d" ] || { echo "$out_dir/$d exists: remove it first" >&2; exit 2; }
  done
  [ -n "$designs" ] || for d in ff_cells ff_subjects onesample onesample_cov twosample paired; do
    [ ! -e "$out_dir/$d" ] || { echo "$out_dir/$d exists: remove it first" >&2; exit 2; }
  done
else
  scratch="${3:-/tmp/cue-nac-study-spm12}"
  case "$scratch" in /*) ;; *) echo "SCRATCH must be an absolute path" >&2; exit 2;; esac
  if [ -e "$scratch" ]; then
    echo "$scratch exists: remove it or give another SCRATCH" >&2; exit 2
  fi
  case "$out_dir/" in "$scratch"/*) echo "OUT_DIR is inside SCRATCH" >&2; exit 2;; esac
  case "$scratch/" in "$out_dir"/*) echo "SCRATCH is inside OUT_DIR" >&2; exit 2;; esac
fi
py="$repo/.venv/bin/python"
[ -x "$py" ] || { echo "no $py (make the venv first: make run or make test)" >&2; exit 2; }

if [ "$in_place" != 1 ]; then
  mkdir -p "$scratch"
  trap 'rm -rf "$scratch"' EXIT
fi

cmd_a="python scripts/spm_fixtures/prepare_firstlevel.py sample_results SCRATCH --voxel $voxel${grid_opt:+ ${grid_opt[*]}}"
cmd_b="cd scripts/spm_fixtures && octave-cli --no-gui --norc --eval \"make_spm_folders('SPM12_DIR', 'SCRATCH'$designs_m)\""
cmd_c="python scripts/spm_fixtures/finish_folders.py SCRATCH OUT_DIR${finish_opt:+ ${finish_opt[*]}} --command ..."
cmd_0="scripts/spm_fixtures/make_spm_folders.sh SPM12_DIR tests/data/spm_folders   # SCRATCH = $scratch"
if [ ${#finish_opt[@]} -gt 0 ]; then
  cmd_0="SPM_FIXTURES_VOXEL=$voxel SPM_FIXTURES_GRID=$grid SPM_FIXTURES_DESIGNS=$designs SPM_FIXTURES_IN_PLACE=$in_place scripts/spm_fixtures/make_spm_folders.sh SPM12_DIR $out_dir   # SCRATCH = $scratch"
fi

echo "== (a) first-level images"
t_a=$(date +%s.%N)
"$py" "$here/prepare_firstlevel.py" "$repo/sample_results" "$scratch" --voxel "$voxel" ${grid_opt[@]+"${grid_opt[@]}"}

echo "== (b) SPM12 under Octave (log: $scratch/octave.log)"
# Octave prints "error: ignoring const execution_exception& while preparing
# to exit" at exit with status 0: harmless.
set +e
t_b=$(date +%s.%N)
( cd "$here" && octave-cli --no-gui --norc --eval \
    "make_spm_folders('$spm_dir', '$scratch'$designs_m)" ) > "$scratch/octave.log" 2>&1
rc=$?
t_c=$(date +%s.%N)
set -e
grep -E '^(ff_|onesample|twosample|paired)' "$scratch/octave.log" || true
if [ $rc -ne 0 ] || grep -E '^error: ' "$scratch/octave.log" | grep -qv 'ignoring const execution_exception'; then
  echo "Octave failed (status $rc):" >&2; tail -30 "$scratch/octave.log" >&2; exit 1
fi
[ -f "$scratch/spm_summary.json" ] || { echo "no spm_summary.json" >&2; exit 1; }

echo "== (c) copy, check, README"
"$py" "$here/finish_folders.py" "$scratch" "$out_dir" ${finish_opt[@]+"${finish_opt[@]}"} \
  --command "$cmd_0" \
  --command "# which runs:" \
  --command "$cmd_a" \
  --command "$cmd_b" \
  --command "$cmd_c"
t_d=$(date +%s.%N)
awk -v a="$t_a" -v b="$t_b" -v c="$t_c" -v d="$t_d" 'BEGIN {
  printf "times: first-level images %.1f s, SPM12 under Octave %.1f s, copy and checks %.1f s\n", b - a, c - b, d - c }'
echo "done in $(( $(date +%s) - start )) s; $(du -sh "$out_dir" | cut -f1) in $out_dir"

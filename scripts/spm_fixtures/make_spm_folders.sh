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
scratch="${3:-/tmp/cue-nac-study-spm12}"
case "$scratch" in /*) ;; *) echo "SCRATCH must be an absolute path" >&2; exit 2;; esac
if [ -e "$scratch" ]; then
  echo "$scratch exists: remove it or give another SCRATCH" >&2; exit 2
fi
case "$out_dir/" in "$scratch"/*) echo "OUT_DIR is inside SCRATCH" >&2; exit 2;; esac
case "$scratch/" in "$out_dir"/*) echo "SCRATCH is inside OUT_DIR" >&2; exit 2;; esac
py="$repo/.venv/bin/python"
[ -x "$py" ] || { echo "no $py (make the venv first: make run or make test)" >&2; exit 2; }
voxel="${SPM_FIXTURES_VOXEL:-8}"

mkdir -p "$scratch"
trap 'rm -rf "$scratch"' EXIT

cmd_a="python scripts/spm_fixtures/prepare_firstlevel.py sample_results SCRATCH --voxel $voxel"
cmd_b="cd scripts/spm_fixtures && octave-cli --no-gui --norc --eval \"make_spm_folders('SPM12_DIR', 'SCRATCH')\""
cmd_c="python scripts/spm_fixtures/finish_folders.py SCRATCH OUT_DIR --command ..."

echo "== (a) first-level images"
"$py" "$here/prepare_firstlevel.py" "$repo/sample_results" "$scratch" --voxel "$voxel"

echo "== (b) SPM12 under Octave (log: $scratch/octave.log)"
# Octave prints "error: ignoring const execution_exception& while preparing
# to exit" at exit with status 0: harmless.
set +e
( cd "$here" && octave-cli --no-gui --norc --eval \
    "make_spm_folders('$spm_dir', '$scratch')" ) > "$scratch/octave.log" 2>&1
rc=$?
set -e
grep -E '^(ff_|onesample|twosample|paired)' "$scratch/octave.log" || true
if [ $rc -ne 0 ] || grep -E '^error: ' "$scratch/octave.log" | grep -qv 'ignoring const execution_exception'; then
  echo "Octave failed (status $rc):" >&2; tail -30 "$scratch/octave.log" >&2; exit 1
fi
[ -f "$scratch/spm_summary.json" ] || { echo "no spm_summary.json" >&2; exit 1; }

echo "== (c) copy, check, README"
"$py" "$here/finish_folders.py" "$scratch" "$out_dir" \
  --command "scripts/spm_fixtures/make_spm_folders.sh SPM12_DIR tests/data/spm_folders   # SCRATCH = $scratch" \
  --command "# which runs:" \
  --command "$cmd_a" \
  --command "$cmd_b" \
  --command "$cmd_c"
echo "done in $(( $(date +%s) - start )) s; $(du -sh "$out_dir" | cut -f1) in $out_dir"

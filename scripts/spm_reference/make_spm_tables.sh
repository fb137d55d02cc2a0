#!/usr/bin/env bash
# Write SPM12's own results tables for the sample group T maps as JSON
# fixtures (tests/data/spm/tables/*.json).  See tests/data/spm/README.md.
#
# Usage: scripts/spm_reference/make_spm_tables.sh SPM12_DIR OUT_DIR [GROUP_DIR]
#   SPM12_DIR  SPM12 r7771 with its MEX files built for Octave
#              (cd src && make PLATFORM=octave main-all main-install)
#   OUT_DIR    e.g. tests/data/spm/tables
#   GROUP_DIR  folder of the group maps (default sample_results/group)
# OUT_DIR/inputs.sha256 records the SHA-256 of the maps used (the .nii.gz as
# stored and the gunzipped .nii), so a test can tell when the fixture is stale.
# Needs octave-cli (tested with GNU Octave 7.3).  Nothing is written inside
# sample_results/: the maps are gunzipped into a temporary scratch folder.
set -euo pipefail
if [ $# -lt 2 ] || [ $# -gt 3 ]; then echo "usage: $0 SPM12_DIR OUT_DIR [GROUP_DIR]" >&2; exit 2; fi
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
spm_dir="$(cd "$1" && pwd)"
mkdir -p "$2"; out_dir="$(cd "$2" && pwd)"
group="$(cd "${3:-$repo/sample_results/group}" && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for c in placebo nac interaction; do
  b="task-cue_contrast-${c}_stat-t_statmap"
  gunzip -c "$group/$b.nii.gz" > "$scratch/$b.nii"
  cp "$group/$b.json" "$scratch/$b.json"
done
# the search volume (SPM.xVol.XYZ); spm_uc_peakFDR/spm_uc_clusterFDR read
# "mask.nii" beside the SPM{T} image when given image handles (spm_VOI path)
gunzip -c "$group/task-cue_desc-brain_mask.nii.gz" > "$scratch/mask.nii"
rm -f "$out_dir"/*.json "$out_dir"/inputs.sha256
( cd "$group" && sha256sum task-cue_contrast-*_stat-t_statmap.nii.gz \
    task-cue_contrast-*_stat-t_statmap.json task-cue_desc-brain_mask.nii.gz
  cd "$scratch" && sha256sum task-cue_contrast-*_stat-t_statmap.nii mask.nii
) > "$out_dir/inputs.sha256"
cd "$here"
# Octave prints "error: ignoring const execution_exception& while preparing
# to exit" at exit with status 0: harmless.
octave-cli --no-gui --norc --eval \
  "spm_tables('$spm_dir', '$out_dir', '$scratch')" 2>&1 \
  | grep -v 'ignoring const execution_exception' || true
n=$(ls "$out_dir"/*.json 2>/dev/null | wc -l)
echo "wrote $n JSON files to $out_dir"
[ "$n" -gt 0 ]

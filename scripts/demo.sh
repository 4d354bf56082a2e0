#!/usr/bin/env bash
# The main job on embedded defaults (SQLite in a demo data directory, the bundled model):
# enrol five LFW people from one photo each, identify a held-out photo of one of them and a
# stranger, verify one claim (at the strict thresholds of a gallery too small to estimate its
# own), then verify 40 labelled LFW pairs in bulk.
#   scripts/demo.sh [LFW_DIR]      (default ../shared/datasets/lfw)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
lfw=${1:-../shared/datasets/lfw}
img="$lfw/lfw-deepfunneled"
export FACEID_HOME=reports/demo
rm -rf "$FACEID_HOME"
mkdir -p "$FACEID_HOME/people"
for p in Colin_Powell Tony_Blair Serena_Williams Hugo_Chavez Jean_Chretien; do
  mkdir -p "$FACEID_HOME/people/$p"
  ln -sf "$(realpath "$img/$p/${p}_0001.jpg")" "$FACEID_HOME/people/$p/"
done
faceid=.venv/bin/faceid
$faceid enroll-dir "$FACEID_HOME/people"
echo "--- the gallery's operating point (5 people: too few to estimate, the strict thresholds):"
$faceid gallery status
echo "--- identify a held-out photo of Serena Williams:"
$faceid identify "$img/Serena_Williams/Serena_Williams_0002.jpg" || true
echo "--- identify a stranger (not enrolled):"
$faceid identify "$img/Aaron_Peirsol/Aaron_Peirsol_0001.jpg" || true
echo "--- verify a claim (1:1):"
$faceid verify "$img/Tony_Blair/Tony_Blair_0002.jpg" --as "Tony Blair" || true
echo "--- verify 40 labelled LFW pairs in bulk:"
$faceid verify-pairs "$lfw/pairsDevTest.txt" --root "$lfw" --sample 40 \
  --out "$FACEID_HOME/pairs.csv"

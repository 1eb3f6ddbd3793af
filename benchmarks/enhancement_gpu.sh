#!/usr/bin/env bash
# Issue 17's protocol on one GPU (benchmarks/enhancement.py), one scene per process, then one merged table.
#
# Here, once: benchmarks/gpu_wheels.sh; mkdir -p .gpu_scenes && cp -r ../shared/data/scenes/* assets/demo_scene .gpu_scenes/
# Device calls (carry [".whl", ".gpu_scenes", ".gpu_cache"]; each <= 10 min on an H100):
#   PART=splatfacto bash benchmarks/enhancement_gpu.sh     # splatfacto at the same steps on every scene -> $OUT/splatfacto.json
#   PART=protocol   bash benchmarks/enhancement_gpu.sh     # the protocol (put splatfacto.json in .gpu_cache/ first)
# Knobs: STEPS (7000), SCENES ("demo temple dino fern lego"), ADAPT_SECONDS (180), FRESH (0: no --adapt-fresh rows),
# GENERIC (embedded, or a folder of leave-one-scene-out fold refiners carried along).
set -u
PART=${PART:-protocol}
STEPS=${STEPS:-7000}
SCENES=${SCENES:-demo temple dino fern lego}
OUT=${OUT:-/tmp/enhancement_out}
mkdir -p "$OUT"
source benchmarks/device_setup.sh
gpu_job_start "$OUT"
t0=$(date +%s)
LIMIT=${LIMIT:-540}
if [ "$PART" = splatfacto ]; then
  for scene in $SCENES; do
    name=$scene; [ "$scene" = demo ] && name=demo_scene
    parser=nerfstudio; [ "$scene" = lego ] && parser=blender
    timeout "$LIMIT" python3 benchmarks/ns_train_gpu.py --methods splatfacto --scenes "$name:$parser" --root .gpu_scenes \
      --steps "$STEPS" --output-dir "/tmp/sf_$scene" --output "$OUT/splatfacto_$scene.md" > "$OUT/splatfacto_$scene.log" 2>&1 &
  done
  wait
  python3 - "$OUT" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1]); rows = []
for f in sorted(out.glob("splatfacto_*.json")):
    for r in json.loads(f.read_text()):
        rows.append({**r, "scene": "demo" if r["scene"] == "demo_scene" else r["scene"]})
(out / "splatfacto.json").write_text(json.dumps(rows, indent=1))
PY
else
  FRESH_FLAG=--no-adapt-fresh; [ "${FRESH:-0}" = 1 ] && FRESH_FLAG=--adapt-fresh
  SF=""; [ -f .gpu_cache/splatfacto.json ] && SF="--splatfacto .gpu_cache/splatfacto.json"
  for scene in $SCENES; do
    [ "$scene" = demo ] || [ -d ".gpu_scenes/$scene" ] || continue
    timeout "$LIMIT" python3 benchmarks/enhancement.py --scenes "$scene" --root .gpu_scenes --device cuda --steps "$STEPS" \
      --generic "${GENERIC:-embedded}" --adaptation.max-seconds "${ADAPT_SECONDS:-180}" $FRESH_FLAG \
      --output-dir "/tmp/enh_$scene" --output "$OUT/enhancement_$scene.md" > "$OUT/enhancement_$scene.log" 2>&1 &
  done
  wait
  python3 benchmarks/enhancement.py --merge "$OUT"/enhancement_*.json $SF --device cuda --output "$OUT/enhancement.md" \
    > "$OUT/merge.log" 2>&1
  cat "$OUT/enhancement.md"
fi
echo "$PART: $(( $(date +%s) - t0 )) s" >> "$OUT/gpu.txt"
cat "$OUT/gpu.txt"; tail -n 3 "$OUT"/*.log | cut -c1-300
gpu_job_pack "$OUT"

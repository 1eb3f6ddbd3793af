#!/usr/bin/env bash
# Issue 18 on one GPU: `ns-train splatent` against splatfacto (wall time, RGB and decoded quality at the same steps),
# the per-stage breakdown of a training step before/after, and a profile of the steady-state step of both methods.
#
# Here, once: benchmarks/gpu_wheels.sh; scenes in a carried, git-ignored folder, e.g.
#   mkdir -p .gpu_scenes && cp -r ../shared/data/scenes/fern .gpu_scenes/
# (the working tree + carried folders travel within 64 MiB: lego needs its own call, with a trimmed wheel set:
#   mkdir -p .whl_speed .gpu_lego/lego && cp .whl/*.whl .whl_speed/ && rm .whl_speed/diffusers-* .whl_speed/imageio_ffmpeg-*
#   then lego's train/ and every 5th val view: see the RESULTS entry.)
# Device calls (carry [".whl", ".gpu_scenes", ".gpu_cache"]; each <= 10 min on an H100):
#   bash benchmarks/speed_gpu.sh                                               # tests, breakdown, demo + fern
#   SPLATENT_WHEELS=.whl_speed BREAKDOWN=0 ROOT=.gpu_lego SCENES=lego:blender bash benchmarks/speed_gpu.sh
# Knobs: STEPS (7000), SCENES ("demo_scene:nerfstudio fern:nerfstudio"; demo_scene is read from assets/),
# ROOT (.gpu_scenes), METHODS, SET (more splatent fields), VARIANT (one more splatent run per scene with SET + these
# fields), VARIANTS (several: field sets separated by "|", runs tagged _v1, _v2 ...), RUN_LIMIT / TOTAL (seconds),
# PROFILE (50 profiled steps after each run), BREAKDOWN (1: GPU tests, latent_pass_gpu.py on demo + fern,
# train_step_gpu.py at each of BREAKDOWN_COUNTS Gaussians, 0 = the scene's own count). Everything comes back in
# $OUT/results.tgz beside gpu.txt.
set -u
OUT=${OUT:-/tmp/speed_out}
STEPS=${STEPS:-7000}
SCENES=${SCENES:-demo_scene:nerfstudio fern:nerfstudio}
ROOT=${ROOT:-.gpu_scenes}
PROFILE=${PROFILE:-50}
BREAKDOWN=${BREAKDOWN:-1}
BREAKDOWN_COUNTS=${BREAKDOWN_COUNTS-0 500000}  # empty: no train_step_gpu.py runs
LATENT=${LATENT:-1}           # 0: no latent_pass_gpu.py
LATENT_ARGS=${LATENT_ARGS:-}  # more latent_pass_gpu.py arguments, e.g. --gaussians 20000 500000
METHODS=${METHODS:-splatent splatfacto}
SET=${SET:-}              # more splatent fields, FIELD=VALUE ...
VARIANT=${VARIANT:-}      # one more splatent run per scene with SET + these fields (files tagged _variant)
VARIANTS=${VARIANTS:-}    # more splatent runs per scene, field sets separated by "|" (files tagged _v1, _v2, ...)
SKIP=${SKIP:-}            # scene:method pairs not to run, e.g. "demo_scene:splatfacto"
RUN_LIMIT=${RUN_LIMIT:-170}  # seconds per run; a run that would end past TOTAL is skipped
TOTAL=${TOTAL:-570}
mkdir -p "$OUT"
[ -d "$ROOT/demo_scene" ] || { mkdir -p "$ROOT" && cp -r assets/demo_scene "$ROOT/"; }
source benchmarks/device_setup.sh
t0=$(date +%s)
gpu_job_start "$OUT"
if [ "$BREAKDOWN" = 1 ]; then
  timeout 150 python3 -m pytest tests/training/test_fused_adam.py tests/training/test_step_syncs_gpu.py tests/render/test_render_shared_projection_gpu.py \
    -m gpu -v -p no:cacheprovider -o addopts="-ra --import-mode=importlib" > "$OUT/pytest_gpu.log" 2>&1
  if [ "$LATENT" = 1 ]; then
    timeout 200 python3 benchmarks/latent_pass_gpu.py --scenes assets/demo_scene "$ROOT/fern" \
      --output "$OUT/latent_pass.md" --json-out "$OUT/latent_pass.json" $LATENT_ARGS > "$OUT/latent_pass.log" 2>&1
    echo "latent pass: rc $?, $(( $(date +%s) - t0 )) s" >> "$OUT/gpu.txt"
  fi
  for n in $BREAKDOWN_COUNTS; do
    timeout 150 python3 benchmarks/train_step_gpu.py --scene assets/demo_scene --device cuda --steps 200 \
      --min-gaussians "$n" --output "$OUT/train_step_demo_$n.md" --json-out "$OUT/train_step_demo_$n.json" \
      > "$OUT/train_step_demo_$n.log" 2>&1
  done
  echo "breakdown: $(( $(date +%s) - t0 )) s" >> "$OUT/gpu.txt"
fi
for spec in $SCENES; do
  name=${spec%%:*}
  runs=$METHODS; [ -n "$VARIANT" ] && runs="$runs splatent_variant"
  IFS='|' read -r -a variant_sets <<< "$VARIANTS"
  for v in "${!variant_sets[@]}"; do runs="$runs splatent_v$((v + 1))"; done
  for run in $runs; do
    method=${run%_variant}; method=${method%_v[0-9]*}; fields="$SET"
    [ "$run" = splatent_variant ] && fields="$SET $VARIANT"
    case $run in splatent_v[0-9]*) fields="$SET ${variant_sets[$(( ${run#splatent_v} - 1 ))]}" ;; esac
    case " $SKIP " in *" $name:$run "*) continue ;; esac
    if [ $(( $(date +%s) - t0 + RUN_LIMIT )) -gt "$TOTAL" ]; then echo "$name $run: skipped (time)" >> "$OUT/gpu.txt"; continue; fi
    # adaptation off: it is a phase after training (timed in issue 17's protocol), not part of the step compared here
    timeout "$RUN_LIMIT" python3 benchmarks/ns_train_gpu.py --scenes "$spec" --root "$ROOT" --steps "$STEPS" \
      --methods "$method" --profile-steps "$PROFILE" --refiner none --set adapt_refiner=false $fields \
      --output-dir /tmp/ns_speed --output "$OUT/ns_${name}_${run}_$STEPS.md" > "$OUT/ns_${name}_$run.log" 2>&1
    echo "$name $run ($fields): rc $?, $(( $(date +%s) - t0 )) s" >> "$OUT/gpu.txt"
  done
done
cat "$OUT/gpu.txt" "$OUT/latent_pass.md" "$OUT"/train_step_demo_*.md "$OUT"/ns_*.md 2>/dev/null
grep -E "^(FAILED|ERROR)|Error|assert" "$OUT/pytest_gpu.log" 2>/dev/null | head -n 30 | cut -c1-400
tail -n 3 "$OUT/pytest_gpu.log" "$OUT"/*.log 2>/dev/null | cut -c1-300
gpu_job_pack "$OUT"

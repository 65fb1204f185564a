#!/usr/bin/env bash
# One device call: stage 1, then stage 2, from the shipped vcgan-lite, each time-boxed; then
# the stage-2 checkpoints are scored on the dev clips and the chosen ones land in $OUT.
# Run from the repository root after tools/device/pack_data.py, carrying the pack folder:
#   device run, carry [".gpu"]: bash tools/device/session.sh
# Settings (environment): VCGAN_PACK (.gpu), S1_TIME (150s), S2_TIME (240s), S1_BATCH (32),
# S2_BATCH (16), WORKERS (14), S2_EVERY (100, checkpoint interval), FLOOR (25.15, dev PSNR).
set -uo pipefail
export VCGAN_PACK=${VCGAN_PACK:-.gpu} PYTHONPATH=tools/device/shims:. HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/vcgan-out}
mkdir -p "$OUT"
P=$VCGAN_PACK W=${WORKERS:-14}
LONG=(--steps 1000000 --lr-halve-every 1000000 --val-every 1000000 --perceptual efficientnet-lite0 --group-power 0.5 --workers "$W" -q)
say() { echo "[$(date +%T)] $*" | tee -a "$OUT/log.txt"; }
# a machine still warm from an earlier call keeps /tmp: start clean, never score old runs
rm -rf /tmp/run-s1 /tmp/run-s2 /tmp/s1 /tmp/choose-*
status=0

say "stage 1"
python3 -m vcgan_cli train --stage 1 --init weights/vcgan-lite --data "$P/images" --size 128 \
    --batch-size "${S1_BATCH:-32}" --lr 2e-4 --ema-decay 0.998 --checkpoint-every 1000000 \
    --time-limit "${S1_TIME:-150s}" --out /tmp/run-s1 "${LONG[@]}" 2>&1 | tee -a "$OUT/log.txt"
[ "${PIPESTATUS[0]}" = 0 ] || { say "stage 1 failed"; status=1; }
cp /tmp/run-s1/log.jsonl "$OUT/s1-log.jsonl" 2>/dev/null
if python3 -m vcgan_cli export /tmp/run-s1 -o /tmp/s1 --checkpoint last 2>&1 | tee -a "$OUT/log.txt" && [ -f /tmp/s1/model.safetensors ]; then
    INIT=/tmp/s1
else
    INIT=weights/vcgan-lite
fi
say "stage 2 from $INIT"
python3 -m vcgan_cli train --stage 2 --init "$INIT" --data "$P/videos" --synthetic-data "$P/images" --synthetic 0.5 \
    --frames 3 --size 128 --batch-size "${S2_BATCH:-16}" --lr 1e-4 --lr-d 2e-4 --critic-width 32 --ema-decay 0.995 \
    --checkpoint-every "${S2_EVERY:-100}" --time-limit "${S2_TIME:-240s}" --out /tmp/run-s2 "${LONG[@]}" 2>&1 | tee -a "$OUT/log.txt"
[ "${PIPESTATUS[0]}" = 0 ] || { say "stage 2 failed"; status=1; }
cp /tmp/run-s2/log.jsonl "$OUT/s2-log.jsonl" 2>/dev/null
# newest first: if the call runs out of time, the latest (most trained) ones were scored
shopt -s nullglob
checkpoints=(/tmp/run-s2/checkpoints/step-*.pt)
if [ ${#checkpoints[@]} = 0 ]; then
    say "no stage-2 checkpoint to choose from"
    exit 1
fi
say "choosing among ${#checkpoints[@]} checkpoints"
python3 tools/device/choose.py --dev "$P/dev" --out "$OUT" --floor "${FLOOR:-25.15}" \
    $(printf '%s\n' "${checkpoints[@]}" | sort -r) 2>&1 | tee -a "$OUT/log.txt"
[ "${PIPESTATUS[0]}" = 0 ] || { say "choosing failed"; status=1; }
say "done (status $status)"
exit $status

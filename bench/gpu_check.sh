#!/usr/bin/env bash
# GPU checks for one CUDA machine (H100), in under 8 minutes; targets in docs/PERFORMANCE.md.
#
# (i)  bf16 + channels_last training throughput, bare torchvision-style loop vs the project's
#      loop (rascore.train.loop.fit, splits in memory): resnet18 3x224x224 batch 256 and
#      r2plus1d_18 3x16x112x112 batch 32, as a ratio to the docs/PERFORMANCE.md ceilings
#      (11,993 img/s, 451 clips/s) and fit / bare (target >= 0.95).
# (ii) builds the paper-size demo (rascore demo --no-train --quiet) in a temp folder and times
#      `rascore train --modality M --preset paper --device cuda` for the four modalities end to end
#      (target: <= 60 s in total on one H100).
# (iii) the same project trained under torchrun with one process per GPU (NCCL; Gloo on CPU in
#      --dry-run): it must exit 0 and register a version recording world_size and backend.
# Output: a table on stdout, also written to "$OUT/gpu_check.txt" when OUT is set.
#
# Usage: bash bench/gpu_check.sh            # on the GPU machine, from the repository root
#        bash bench/gpu_check.sh --dry-run  # tiny sizes on CPU: checks that every step runs
set -euo pipefail
cd "$(dirname "$0")/.."
DRY=0
[[ "${1:-}" == "--dry-run" ]] && DRY=1
PY=${PYTHON:-python}
[[ -x .venv/bin/python ]] && PY=${PYTHON:-.venv/bin/python}
REPORT=$(mktemp)
[[ -n "${OUT:-}" ]] && mkdir -p "$OUT" && REPORT="$OUT/gpu_check.txt"
log() { echo "$*" | tee -a "$REPORT"; }
log "gpu_check $(date -u +%FT%TZ) dry_run=$DRY host=$(hostname)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version \
  --format=csv,noheader | tee -a "$REPORT" || true

# ---------------------------------------------------------------- (i) throughput
DRY=$DRY timeout 300 "$PY" - <<'EOF' 2>&1 | tee -a "$REPORT"
import os, time, torch, torchvision
from torch import nn
from rascore.train.config import make_config
from rascore.train.data import Arrays, preprocessing_for
from rascore.train.loop import TrainData, fit

DRY = os.environ.get("DRY") == "1"
dev = torch.device("cpu" if DRY else "cuda")
if not DRY:
    torch.backends.cudnn.benchmark = True
CEIL = {"resnet18": 11993.0, "r2plus1d_18": 451.0}
# (name, torchvision builder, project modality, input C,T,H,W, batch)
CASES = [("resnet18", torchvision.models.resnet18, "SPD", (3, None, 224, 224), 256),
         ("r2plus1d_18", torchvision.models.video.r2plus1d_18, "DPD", (3, 16, 112, 112), 32)]
if DRY:
    CASES = [("resnet18", torchvision.models.resnet18, "SPD", (3, None, 64, 64), 4),
             ("r2plus1d_18", torchvision.models.video.r2plus1d_18, "DPD", (3, 4, 32, 32), 2)]
STEPS, WARM = (2, 1) if DRY else (30, 5)
sync = (lambda: None) if DRY else torch.cuda.synchronize

def bare(builder, shape, batch):
    c, t, h, w = shape
    model = builder(num_classes=4).to(dev)
    fmt = torch.channels_last if t is None else torch.channels_last_3d
    model = model.to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    size = (batch, c, h, w) if t is None else (batch, c, t, h, w)
    x = torch.randn(size, device=dev).contiguous(memory_format=fmt)
    y = torch.randint(0, 4, (batch,), device=dev)
    def step():
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=not DRY):
            loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    for _ in range(WARM): step()
    sync(); t0 = time.perf_counter()
    for _ in range(STEPS): step()
    sync(); return STEPS * batch / (time.perf_counter() - t0)

def project(mod, shape, batch, augment):
    c, t, h, w = shape
    over = dict(weights="none", batch_size=batch, warmup_epochs=0, augment=augment,
                size=(h, w), patience=100)
    if t is not None:
        over.update(frames=t)
    cfg = make_config(mod, "paper", "cpu" if DRY else "cuda", **over)
    prep = preprocessing_for(cfg)
    per = (prep.channels, prep.cache_frames) if prep.dynamic else (prep.channels,)
    n_train, n_val = batch * STEPS, batch
    def split(n):
        return Arrays(torch.randint(0, 256, (n, *per, prep.height, prep.width), dtype=torch.uint8),
                      torch.arange(n) % 4, list(range(n)))
    data = TrainData(split(n_train), split(n_val), prep, {})
    fit(cfg.__class__(**{**cfg.to_dict(), "epochs": 1}), data)  # warm-up: cudnn autotune
    sync(); t0 = time.perf_counter()
    from dataclasses import replace
    res = fit(replace(cfg, epochs=2), data)
    sync(); s = time.perf_counter() - t0
    # throughput of training steps; the small validation pass per epoch is included
    return 2 * n_train / s

print(f"{'model':12s} {'bare/s':>9s} {'fit/s':>9s} {'fit+aug/s':>9s} {'fit/bare':>8s} {'bare/ceil':>9s} {'fit/ceil':>9s}")
for name, builder, mod, shape, batch in CASES:
    b = bare(builder, shape, batch)
    f = project(mod, shape, batch, False)
    fa = project(mod, shape, batch, True)
    print(f"{name:12s} {b:9.1f} {f:9.1f} {fa:9.1f} {f / b:8.2f} {b / CEIL[name]:9.2f} {f / CEIL[name]:9.2f}")
print("targets: fit/bare >= 0.95; per step >= 0.80 of the ceiling (ceilings: H100 only)")
EOF

# ---------------------------------------------------------------- (ii) paper demo, end to end
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export RASCORE_DATA="$WORK/project" RASCORE_DB="$WORK/project/rascore.db"
SIZE=paper; PRESET=paper; DEVICE=cuda; EXTRA=(); MODS=(SGS DGS SPD DPD)
if [[ $DRY == 1 ]]; then SIZE=small; PRESET=fast; DEVICE=cpu; EXTRA=(--epochs 1); MODS=(SGS); fi
t0=$(date +%s.%N)
timeout 240 "$PY" -m rascore demo --size $SIZE --no-train --quiet --workers "$(nproc)" > "$WORK/demo.log" 2>&1 \
  || { log "demo build FAILED"; tail -20 "$WORK/demo.log" | tee -a "$REPORT"; exit 1; }
log "demo ($SIZE) built in $(printf %.1f "$(echo "$(date +%s.%N) - $t0" | bc)") s"
log "$(printf '%-8s %-8s %-8s %10s %s' modality preset device seconds status)"
total=0
for M in "${MODS[@]}"; do
  s=$(date +%s.%N)
  if timeout 150 "$PY" -m rascore train --modality "$M" --preset $PRESET --device $DEVICE \
       "${EXTRA[@]}" > "$WORK/train-$M.log" 2>&1; then st=ok; else st="FAILED rc=$?"; fi
  e=$(echo "$(date +%s.%N) - $s" | bc); total=$(echo "$total + $e" | bc)
  log "$(printf '%-8s %-8s %-8s %10.1f %s' "$M" $PRESET $DEVICE "$e" "$st")"
  [[ $st == ok ]] || tail -15 "$WORK/train-$M.log" | tee -a "$REPORT"
done
log "$(printf '%-26s %10.1f %s' TOTAL "$total" "(target <= 60 s for the four on one H100)")"
[[ -n "${OUT:-}" ]] && cp "$WORK"/*.log "$OUT"/ 2>/dev/null || true

# ---------------------------------------------------------------- (iii) torchrun (DDP)
NPROC=1; BACKEND_DEV=cuda
if [[ $DRY == 1 ]]; then NPROC=2; BACKEND_DEV=cpu; else
  NPROC=$("$PY" -c "import torch; print(max(1, torch.cuda.device_count()))"); fi
s=$(date +%s.%N)
if timeout 200 "$PY" -m torch.distributed.run --standalone --nproc_per_node="$NPROC" -m rascore.cli \
     train --modality SGS --preset $PRESET --device $BACKEND_DEV --activate never --json "${EXTRA[@]}" \
     > "$WORK/torchrun.json" 2> "$WORK/torchrun.log"; then
  st=$("$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); t=d.get('training', {}); \
print(f\"ok v{d['version']} world_size={t.get('world_size')} backend={t.get('backend')}\")" "$WORK/torchrun.json" \
       2>&1 || echo "FAILED: no JSON")
else st="FAILED rc=$?"; tail -15 "$WORK/torchrun.log" | tee -a "$REPORT"; fi
log "$(printf 'torchrun SGS x%s processes (%s) %.1f s: %s' "$NPROC" $BACKEND_DEV "$(echo "$(date +%s.%N) - $s" | bc)" "$st")"
[[ -n "${OUT:-}" ]] && cp "$WORK"/torchrun.* "$OUT"/ 2>/dev/null || true

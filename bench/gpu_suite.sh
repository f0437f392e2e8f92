#!/usr/bin/env bash
# trainlab's GPU checks in one script, for the few minutes a CUDA machine is lent (≤ 5 min).
#
#   bash bench/gpu_suite.sh            # set-up (make setup) + every check, `bench …` lines
#   bash bench/gpu_suite.sh --no-setup # use the existing .venv as it is
#
# Checks, each with its own time limit, in this order:
#   1. set-up: .venv (make setup), CUDA visible to torch; GPU name, driver, torch/CUDA versions
#   2. fp16 (autocast + GradScaler) and bf16: one epoch of the default recipe each; samples/s,
#      validation accuracy, finite loss, the scaler's state in the checkpoint (fp16)
#   3. the default recipe to 93 % test accuracy: training seconds, start-up excluded
#      (the clock starts when the experiment is built; test scored after each epoch, off the clock)
#   4. DDP smoke test: `trainlab train` under torchrun (1 process) must finish and checkpoint;
#      then NCCL itself: the recipe's model in DistributedDataParallel (bench/_ddp_smoke.py)
#   5. evaluation throughput (bench/eval_throughput.py on the GPU)
# Fails with exit code 2 and one line when there is no CUDA GPU. Prints `bench gpu_… VALUE UNIT`.
#
# Environment: TRAINLAB_FMNIST (folder with the four Fashion-MNIST .gz files, when neither
# /usr/share/datasets/fashion-mnist nor the network has them), GPU_SUITE_OUT (run folders; default
# a temporary folder), GPU_SUITE_DEVICE=cpu with GPU_SUITE_QUICK=1: a dry run of the plumbing on
# the CPU at tiny scale (no CUDA check, gloo instead of NCCL; figures mean nothing).
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICE=${GPU_SUITE_DEVICE:-cuda}
QUICK=${GPU_SUITE_QUICK:-0}
OUT=${GPU_SUITE_OUT:-$(mktemp -d -t trainlab-gpu-XXXXXX)}
mkdir -p "$OUT"
PY=.venv/bin/python
RECIPE=recipes/fashion_mnist.yaml
T_START=$(date +%s)

die() { echo "gpu_suite: $*" >&2; exit 2; }
step() { echo; echo "== $* ($(( $(date +%s) - T_START )) s)"; }

if [ "$DEVICE" = cuda ]; then
    command -v nvidia-smi >/dev/null \
        || die "no NVIDIA driver here (nvidia-smi not found): this suite needs a CUDA GPU"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
        || die "nvidia-smi sees no GPU: this suite needs a CUDA GPU"
fi

step "1. set-up"
if [ "${1:-}" != "--no-setup" ]; then
    timeout 240 make setup || die "make setup failed (no package index reachable? build .venv \
elsewhere with a CUDA torch, or run with --no-setup on a machine that has one)"
fi
[ -x "$PY" ] || die "$PY missing: run make setup first"
"$PY" - "$DEVICE" <<'EOF' || die "torch in .venv sees no CUDA device (a CPU-only torch build?)"
import sys, torch
if sys.argv[1] == "cuda" and not torch.cuda.is_available():
    sys.exit(1)
cuda = torch.version.cuda or "none"
name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu (dry run)"
print(f"torch {torch.__version__}, CUDA {cuda}, device {name}")
EOF
if [ -n "${TRAINLAB_FMNIST:-}" ]; then DATA_ROOT=("data.root=$TRAINLAB_FMNIST"); else DATA_ROOT=(); fi
COMMON=(train.device="$DEVICE" train.tensorboard=false train.report=false "${DATA_ROOT[@]}")
if [ "$QUICK" = 1 ]; then
    COMMON+=(data.subset=1024 data.test_subset=1000 train.epochs=1)
fi

# The last value of each key in a run's metrics.jsonl, as `bench` lines.
figures() {  # RUN_DIR PREFIX
    "$PY" - "$1" "$2" <<'EOF'
import json, math, sys
from pathlib import Path
rows = [json.loads(l) for l in Path(sys.argv[1], "metrics.jsonl").read_text().splitlines() if l]
last = {}
for r in rows:
    last.update(r)
p = sys.argv[2]
loss = last.get("train/loss_epoch", last.get("train/loss", float("nan")))
if not math.isfinite(loss):
    sys.exit(f"gpu_suite: {p}: non-finite training loss {loss}")
print(f"bench {p}_samples_per_s {last.get('train/samples_per_s', float('nan')):.0f} samples/s")
print(f"bench {p}_val_acc {last.get('val/acc', float('nan')):.4f} frac")
print(f"bench {p}_train_loss {loss:.4f} loss")
EOF
}

step "2. fp16 (GradScaler) and bf16, one epoch each"
for prec in fp16 bf16; do
    if [ "$DEVICE" = cpu ] && [ "$prec" = fp16 ]; then echo "fp16: CUDA only, skipped"; continue; fi
    timeout 120 "$PY" -m trainlab train "$RECIPE" "${COMMON[@]}" train.precision=$prec \
        train.epochs=1 --no-progress --run-dir "$OUT/$prec" >"$OUT/$prec.log" 2>&1 \
        || { tail -5 "$OUT/$prec.log"; die "the $prec run failed (log: $OUT/$prec.log)"; }
    figures "$OUT/$prec" "gpu_$prec"
done
if [ "$DEVICE" = cuda ]; then
    "$PY" - "$OUT/fp16" <<'EOF' || die "fp16: no GradScaler state in the checkpoint"
import sys, torch
from trainlab.train.checkpoint import resolve_checkpoint
ck = resolve_checkpoint(sys.argv[1])
state = torch.load(ck / "state.pt", weights_only=True)
assert any("scaler" in k and state[k] for k in state), sorted(state)
print("fp16: GradScaler state saved with the checkpoint")
EOF
fi

step "3. default recipe to 93 % test accuracy (training time, start-up excluded)"
timeout 180 "$PY" - "${COMMON[@]}" <<'EOF' || die "the time-to-93 % run failed"
import sys, time
sys.path.insert(0, "bench")
from _common import RECIPE, TestEachEpoch, sync
from trainlab import load_config
from trainlab.experiment import build_experiment

cfg = load_config(RECIPE, sys.argv[1:])
cfg = cfg.model_copy(update={"callbacks": []})
probe = TestEachEpoch(0.0, stop_at=0.93)
exp = build_experiment(cfg, callbacks=[probe])
probe.exp = exp
sync(exp.trainer.device)
probe.t0 = time.perf_counter()  # built and on the device: the start-up is behind us
exp.trainer.fit(exp.model, exp.task, exp.data, exp.optimizer, exp.schedule)
for epoch, wall, val, test in probe.rows:
    print(f"epoch {epoch:g}: {wall:.2f} s, val {val:.4f}, test {test:.4f}")
hit = probe.first_reaching(0.93)
print(f"bench gpu_time_to_93_s {hit:.2f} s" if hit is not None else "bench gpu_time_to_93_s not_reached s")
print(f"bench gpu_default_recipe_test_acc {probe.rows[-1][3]:.4f} frac")
EOF

step "4. DDP smoke test: torchrun, 1 process"
timeout 120 "$PY" -m torch.distributed.run --standalone --nproc-per-node 1 -m trainlab train \
    "$RECIPE" "${COMMON[@]}" train.max_steps=60 --no-progress --run-dir "$OUT/ddp" \
    >"$OUT/ddp.log" 2>&1 || { tail -5 "$OUT/ddp.log"; die "the DDP run failed (log: $OUT/ddp.log)"; }
"$PY" -c "from trainlab.train.checkpoint import resolve_checkpoint as r; r('$OUT/ddp')" \
    || die "the torchrun run left no intact checkpoint"
# One process joins no process group in trainlab (its rule), so NCCL itself is checked apart:
# the recipe's model in DistributedDataParallel, 20 steps, ranks in agreement (bench/_ddp_smoke.py).
timeout 120 "$PY" -m torch.distributed.run --standalone --nproc-per-node 1 bench/_ddp_smoke.py \
    "$DEVICE" "${COMMON[@]}" || die "the DDP smoke test (bench/_ddp_smoke.py) failed"

step "5. evaluation throughput"
EVAL=("train.device=$DEVICE" "${DATA_ROOT[@]}")
if [ "$QUICK" = 1 ]; then EVAL=(--quick "${EVAL[@]}"); fi
timeout 120 "$PY" bench/eval_throughput.py "${EVAL[@]}" | sed 's/^bench /bench gpu_/' \
    || die "bench/eval_throughput.py failed"

echo
echo "bench gpu_suite_wall_s $(( $(date +%s) - T_START )) s"
echo "run folders: $OUT"

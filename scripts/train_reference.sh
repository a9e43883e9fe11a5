#!/usr/bin/env bash
# The reference Shapes-world model (issue "samples that hold together", section 5): the tiny config, trained much
# longer. Hours on a 2-core CPU; run it in the background and resume it exactly as often as needed:
#   nohup scripts/train_reference.sh > runs/reference.log 2>&1 &
#   nohup scripts/train_reference.sh --ckpt_path last >> runs/reference.log 2>&1 &     # continue
# Extra arguments go to `vidiff fit`. Then ship its EMA weights (docs/benchmarks.md, "Reference model"):
#   .venv/bin/vidiff export --ckpt runs/reference/checkpoints/last.ckpt --out vidiff/assets/shapes_reference.safetensors
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${VIDIFF:-.venv/bin/vidiff}" fit --config configs/shapes/tiny.yaml \
    --trainer.default_root_dir runs/reference \
    --trainer.max_steps 40000 \
    --model.init_args.optimizer.init_args.lr 0.002 \
    --model.init_args.ema_decay 0.999 \
    --model.init_args.frame_noise 0.5 \
    --data.init_args.spacing '{contiguous: 0.5, log_uniform: 0.5}' \
    --trainer.val_check_interval 1000 \
    --trainer.enable_progress_bar false \
    --samples.every_n_validations 5 \
    "$@"

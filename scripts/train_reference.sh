#!/usr/bin/env bash
# The reference Shapes-world model (issue "samples that hold together", section 5): the tiny config, trained much
# longer. The shipped weights come from the `gpu` stage: the tiny net at batch 128 on one GPU (1,084 steps, 3.5
# minutes on an H200), which beats the two CPU stages below (hours on a 2-core CPU) on every score:
#   scripts/train_reference.sh gpu                                           # STEPS=1084 by default
#   .venv/bin/vidiff export --ckpt runs/reference_gpu/checkpoints/last.ckpt --out vidiff/assets/shapes_reference.safetensors
# The CPU stages (before 2026-12-04; run each in the background and resume it exactly when cut off):
#   nohup scripts/train_reference.sh 1 > runs/reference1.log 2>&1 &          # stage 1: 4000 steps (~28 min)
#   nohup scripts/train_reference.sh 2 > runs/reference2.log 2>&1 &          # stage 2: 14000 steps (~100 min; STEPS=N for fewer)
#   nohup scripts/train_reference.sh 2 --ckpt_path last >> runs/reference2.log 2>&1 &    # continue a stage
#   nohup scripts/train_reference.sh 3 > runs/reference3.log 2>&1 &          # stage 3 (not run yet): STEPS (8000) more
#                                                                             # from the shipped weights, frame_noise 1.0
# Stage 1 trains the tiny net (per-pixel temporal attention) from scratch at a constant lr 2e-3; stage 2 starts
# from its EMA weights (init_weights), makes the 8x8 temporal layers joint space-time attention (same parameters)
# and anneals the lr (one cycle, cosine) to the end. Extra arguments go to `vidiff fit`. Then ship the EMA weights:
#   .venv/bin/vidiff export --ckpt runs/reference2/checkpoints/last.ckpt --out vidiff/assets/shapes_reference.safetensors
# (docs/benchmarks.md, "Reference model"; docs/decisions.md, "Checkpoints and shipped weights").
set -euo pipefail
cd "$(dirname "$0")/.."
stage="${1:?usage: scripts/train_reference.sh gpu|1|2|3 [vidiff fit arguments]}"
shift
vidiff="${VIDIFF:-.venv/bin/vidiff}"
common=(
    --model.init_args.ema_decay 0.999
    --model.init_args.frame_noise 0.5
    --data.init_args.spacing '{contiguous: 0.5, log_uniform: 0.5}'
    --trainer.val_check_interval 1000
    --trainer.enable_progress_bar false
    --samples.every_n_validations 5
)
# A warm-started stage: ROOT, STEPS, INIT, then extra `vidiff fit` arguments; joint space-time attention at 8x8 and
# a one-cycle lr (cosine to 0 over STEPS).
annealed() {
    local root=$1 steps=$2 init=$3
    shift 3
    exec "$vidiff" fit --config configs/shapes/tiny.yaml "${common[@]}" \
        --trainer.default_root_dir "$root" \
        --trainer.max_steps "$steps" \
        --model.init_args.init_weights "$init" \
        --model.init_args.net.init_args.spacetime_attention_resolutions '[4]' \
        --model.init_args.lr_scheduler "{class_path: torch.optim.lr_scheduler.OneCycleLR, init_args: {max_lr: 0.002, total_steps: $steps, pct_start: 0.02, cycle_momentum: false}}" \
        "$@"
}
case "$stage" in
gpu)
    # tiny.yaml as shipped (frame_noise 1.0, logit-normal t, lr 2e-3) with 32x the batch, EMA 0.999, and 300-frame
    # training videos with half the clips log-uniformly spaced (for the long-range schemes); no validation
    exec "$vidiff" fit --config configs/shapes/tiny.yaml \
        --trainer.default_root_dir runs/reference_gpu \
        --trainer.accelerator gpu \
        --trainer.max_steps "${STEPS:-1084}" \
        --trainer.limit_val_batches 0 \
        --trainer.enable_progress_bar false \
        --trainer.log_every_n_steps 200 \
        --checkpoint.monitor null \
        --checkpoint.every_n_train_steps 500 \
        --model.init_args.ema_decay 0.999 \
        --data.init_args.length 300 \
        --data.init_args.spacing '{contiguous: 0.5, log_uniform: 0.5}' \
        --data.init_args.train_videos 100000 \
        --data.init_args.batch_size 128 \
        --data.init_args.num_workers 6 \
        "$@"
    ;;
1)
    exec "$vidiff" fit --config configs/shapes/tiny.yaml "${common[@]}" \
        --trainer.default_root_dir runs/reference1 \
        --trainer.max_steps 4000 \
        --model.init_args.optimizer.init_args.lr 0.002 \
        "$@"
    ;;
2)
    annealed runs/reference2 "${STEPS:-14000}" "${INIT:-runs/reference1/checkpoints/last.ckpt}" "$@"
    ;;
3)
    # tiny.yaml's frame_noise 1.0 (every sample per-frame timesteps) won the 2026-12-04 ablations; fine-tune the
    # shipped stage-2 weights with it, annealed again
    annealed runs/reference3 "${STEPS:-8000}" "${INIT:-vidiff/assets/shapes_reference.safetensors}" \
        --model.init_args.frame_noise 1.0 "$@"
    ;;
*)
    echo "scripts/train_reference.sh: stage must be gpu, 1, 2 or 3, got '$stage'" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# The GPU checks (docs/benchmarks.md, "GPU checks"): run on a CUDA machine from the repository root.
#   bash scripts/gpu_checks.sh > gpu_checks.log 2>&1
# 1. the CUDA tests (xformers == math attention when a working xformers is installed; half precision sampling);
# 2. bf16 throughput: the 3.2M U-Net at 64x64, 16 frames, batch 16, fwd+bwd, bf16 autocast (sdpa and math) and fp32;
# 3. the batched-stage speed-up of long-video sampling: 300-frame hierarchy-2 from the shipped reference model.
set -u
export PYTHONUNBUFFERED=1
py="${PYTHON:-python}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
"$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())
from vidiff.nn.attention import xformers_available; print('xformers usable:', xformers_available())"
"$py" -m pytest -q -p no:cacheprovider tests/test_attention.py tests/test_diffusion_samplers.py -k "cuda or xformers" -rs
backends=sdpa,math
"$py" -c "from vidiff.nn.attention import xformers_available as a; raise SystemExit(0 if a() else 1)" && backends=xformers,$backends
"$py" scripts/bench_unet.py --device cuda --backends "$backends" --size 64 --frames 16 --batch 16 --bf16 --rounds 10
"$py" scripts/bench_unet.py --device cuda --backends sdpa --size 64 --frames 16 --batch 16 --rounds 10
"$py" scripts/bench_sampling.py --device cuda --ckpt vidiff/assets/shapes_reference.safetensors --max-frames 8 \
    --steps 10 --videos 1 8 --batch-budget 64

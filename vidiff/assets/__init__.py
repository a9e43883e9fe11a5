"""Files shipped with vidiff: the reference Shapes-world model (docs/benchmarks.md, "Reference model").

``REFERENCE`` is the EMA weights of ``configs/shapes/tiny.yaml`` trained by ``scripts/train_reference.sh`` and
exported with ``vidiff export``; ``vidiff demo --pretrained`` samples from it without training.
"""

from pathlib import Path

REFERENCE = Path(__file__).with_name("shapes_reference.safetensors")

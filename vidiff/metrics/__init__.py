"""Video metrics: PSNR/SSIM, FVD/KVD (I3D from a local weights file), Shapes-world scores.

Pure torch/numpy: nothing here imports Lightning or ``vidiff.data``. Definitions and protocols: docs/metrics.md.
"""

from vidiff.metrics.detect import Detection, VideoDetections, classify_pixels, classify_shape, detect_objects
from vidiff.metrics.frechet import (
    frechet_distance,
    frechet_distance_from_stats,
    gaussian_stats,
    kernel_distance,
    kernel_distance_subsets,
    sqrtm_psd,
)
from vidiff.metrics.fvd import FVD_FRAMES, I3D_RESOLUTION, fvd, i3d_features, kvd, preprocess_for_i3d
from vidiff.metrics.i3d import InceptionI3d, load_i3d
from vidiff.metrics.image_quality import frame_psnr, frame_ssim, video_psnr, video_ssim
from vidiff.metrics.shapes import (
    CaptionScores,
    PredictionError,
    caption_accuracy,
    mean_scores,
    motion_consistency,
    parse_caption,
    persistence,
    prediction_error,
    shapes_scores,
)

__all__ = [
    "FVD_FRAMES",
    "I3D_RESOLUTION",
    "CaptionScores",
    "Detection",
    "InceptionI3d",
    "PredictionError",
    "VideoDetections",
    "caption_accuracy",
    "classify_pixels",
    "classify_shape",
    "detect_objects",
    "frame_psnr",
    "frame_ssim",
    "frechet_distance",
    "frechet_distance_from_stats",
    "fvd",
    "gaussian_stats",
    "i3d_features",
    "kernel_distance",
    "kernel_distance_subsets",
    "kvd",
    "load_i3d",
    "mean_scores",
    "motion_consistency",
    "parse_caption",
    "persistence",
    "prediction_error",
    "preprocess_for_i3d",
    "shapes_scores",
    "sqrtm_psd",
    "video_psnr",
    "video_ssim",
]

"""Video I/O: reading (decord), atomic and verified writing (mp4, gif, png strip, grids), the gallery page."""

from vidiff.io.atomic import atomic_path, write_json_atomic, write_text_atomic
from vidiff.io.frames import pad_to_even, to_float, to_uint8
from vidiff.io.gallery import GalleryItem, render_gallery, write_gallery
from vidiff.io.lock import FolderInUseError, FolderLock, lock_folder
from vidiff.io.images import (
    GIVEN_RGB,
    compare_frames,
    make_grid,
    save_image,
    save_image_grid,
    write_gif,
    write_labelled_strip,
    write_png_strip,
)
from vidiff.io.video import count_frames, read_video, write_video

__all__ = [
    "GIVEN_RGB",
    "FolderInUseError",
    "FolderLock",
    "GalleryItem",
    "atomic_path",
    "compare_frames",
    "count_frames",
    "lock_folder",
    "make_grid",
    "pad_to_even",
    "read_video",
    "render_gallery",
    "save_image",
    "save_image_grid",
    "to_float",
    "to_uint8",
    "write_gallery",
    "write_gif",
    "write_json_atomic",
    "write_labelled_strip",
    "write_png_strip",
    "write_text_atomic",
    "write_video",
]

"""A PNG of a handwritten digit turned into an MNIST-like input row."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import FileFormatError


def read_digit_png(path: str | Path, size: int = 28) -> np.ndarray:
    """Read a digit image as MNIST presents digits: ``(size*size,)`` float32 in [0, 1].

    Colour is averaged to grey; a transparent background counts as paper in contrast to the
    ink; a light background is inverted so that ink is bright on black, as in MNIST. An image
    that is not already ``size × size`` is cropped to its ink, scaled so that its longer side
    is 20/28 of ``size`` and centred by its centre of mass, which is how MNIST's digits were
    prepared.
    """
    from PIL import Image, UnidentifiedImageError

    lanczos = getattr(Image, "Resampling", Image).LANCZOS  # Pillow >= 9.1 names it there

    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
                # drawn on a transparent canvas (converting to grey would drop the alpha and
                # leave black ink on black): lay it on paper that contrasts with the ink
                rgba = img.convert("RGBA")
                alpha = np.asarray(rgba.getchannel("A"), dtype=np.float64)
                lum = np.asarray(rgba.convert("L"), dtype=np.float64)
                paper = "white" if (lum * alpha).sum() <= 127.5 * alpha.sum() else "black"
                img = Image.alpha_composite(Image.new("RGBA", rgba.size, paper), rgba)
            grey = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as err:
        raise FileFormatError(f"{path}: not a readable image ({err})") from None
    if grey.mean() > 0.5:
        grey = 1.0 - grey  # dark ink on light paper → bright ink on black
    if grey.shape == (size, size):
        return grey.reshape(-1)
    ink = np.argwhere(grey > 0.1)
    if ink.size == 0:
        raise FileFormatError(f"{path}: the image is blank")
    (top, left), (bottom, right) = ink.min(axis=0), ink.max(axis=0) + 1
    crop = grey[top:bottom, left:right]
    box = round(size * 20 / 28)
    scale = box / max(crop.shape)
    h, w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    small = np.asarray(Image.fromarray((crop * 255).astype(np.uint8)).resize((w, h), lanczos),
                       dtype=np.float32) / 255.0
    canvas = np.zeros((size, size), np.float32)
    rows, cols = np.indices(small.shape)
    mass = small.sum() or 1.0
    cy, cx = (rows * small).sum() / mass, (cols * small).sum() / mass
    top = int(np.clip(round(size / 2 - cy), 0, size - h))
    left = int(np.clip(round(size / 2 - cx), 0, size - w))
    canvas[top:top + h, left:left + w] = small
    return canvas.reshape(-1)

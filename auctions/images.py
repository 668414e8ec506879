"""Item photos (spec §9): checked by decoding them, turned upright, stripped of metadata, and
made once into a display size and a thumbnail.

`photo_prepare` does the image work with no storage: it takes what was uploaded and
returns the two encoded images, or raises ValidationFailed saying what is wrong (not an
image, not JPEG/PNG/WebP, too big, too many pixels, truncated). Nothing is stored until
it has succeeded.
"""

import io
import warnings
from dataclasses import dataclass
from typing import IO

from django.core.files import File
from PIL import Image, ImageOps, UnidentifiedImageError

from auctions.errors import ValidationFailed

MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_IMAGES_PER_ITEM = 10
# Beyond this many pixels an upload is refused before it is decoded (a decompression
# bomb: a small file that expands to gigabytes). 50 MP covers any camera's photo.
MAX_PIXELS = 50_000_000
DISPLAY_SIZE = 1600
THUMBNAIL_SIZE = 400
FORMATS = {
    "JPEG": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "WEBP": ("webp", "image/webp"),
}
# Pillow names a JPEG with the multi-picture extension (the depth or gain map many phones
# add) MPO: it is a JPEG, stored as one (its first picture).
ALIASES = {"MPO": "JPEG"}
FIELD = "images"


@dataclass(frozen=True, slots=True)
class PreparedPhoto:
    """A photo ready to store: both sizes encoded, and the display size's dimensions."""

    extension: str
    content_type: str
    display: bytes
    thumbnail: bytes
    width: int
    height: int


def photo_prepare(upload: IO[bytes] | File[bytes], *, size: int) -> PreparedPhoto:
    """Check and convert one upload of `size` bytes; ValidationFailed if it is not usable."""
    if size > MAX_IMAGE_BYTES:
        raise ValidationFailed(
            f"A photo can be at most {MAX_IMAGE_BYTES // (1024 * 1024)} MB.", FIELD
        )
    with warnings.catch_warnings():
        # Pillow warns above its own pixel limit and raises above twice it; ours is lower.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(upload)
            image_format = ALIASES.get(image.format or "", image.format or "")
            if image_format not in FORMATS:
                raise ValidationFailed("A photo must be a JPEG, PNG or WebP image.", FIELD)
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ValidationFailed(
                    f"The photo has too many pixels ({width}x{height}); at most "
                    f"{MAX_PIXELS // 1_000_000} megapixels.",
                    FIELD,
                )
            image.load()  # decodes it all: a truncated or corrupt file fails here
        except (
            UnidentifiedImageError,
            Image.DecompressionBombError,
            Image.DecompressionBombWarning,
        ) as exc:
            raise ValidationFailed("The file is not an image we can read.", FIELD) from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise ValidationFailed("The image is damaged or incomplete.", FIELD) from exc
    upright = ImageOps.exif_transpose(image)
    extension, content_type = FORMATS[image_format]
    display = _encoded(upright, DISPLAY_SIZE, image_format)
    thumbnail = _encoded(upright, THUMBNAIL_SIZE, image_format)
    return PreparedPhoto(
        extension=extension,
        content_type=content_type,
        display=display[0],
        thumbnail=thumbnail[0],
        width=display[1],
        height=display[2],
    )


def _encoded(image: Image.Image, longest: int, image_format: str) -> tuple[bytes, int, int]:
    """The image scaled to fit `longest` (never up), re-encoded with no metadata at all."""
    copy = image.copy()
    # PNG's encoder alone would copy the source's colour profile over unasked.
    copy.info.pop("icc_profile", None)
    copy.thumbnail((longest, longest), Image.Resampling.LANCZOS)
    if image_format == "JPEG" and copy.mode not in ("RGB", "L"):
        copy = copy.convert("RGB")
    elif copy.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        copy = copy.convert("RGBA")
    out = io.BytesIO()
    # A fresh encode writes no EXIF (GPS included), XMP, text chunks or ICC profile: Pillow
    # writes them only when asked to.
    options = {"quality": 85} if image_format in ("JPEG", "WEBP") else {"optimize": True}
    copy.save(out, format=image_format, **options)
    return out.getvalue(), copy.width, copy.height

"""Real image files, made in memory with Pillow, for the catalogue's tests."""

import functools
import io
import struct
import zlib

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageCms, PngImagePlugin

CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "MPO": "image/jpeg",
}
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "MPO": "jpg"}

ORIENTATION = 0x0112
MAKE = 0x010F
GPS_IFD = 0x8825
# A place nobody should learn from a photo of a teapot.
SECRET_PLACE = "Secret Street 7"


def two_halves(size: tuple[int, int] = (600, 400), mode: str = "RGB") -> Image.Image:
    """Red on the left half, blue on the right: shows which way an image was turned."""
    width, height = size
    image = Image.new("RGB", size, (255, 0, 0))
    image.paste((0, 0, 255), (width // 2, 0, width, height))
    return image.convert(mode) if mode != "RGB" else image


def encoded(image: Image.Image, image_format: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=image_format, **options)
    return out.getvalue()


def photo_bytes(image_format: str = "JPEG", size: tuple[int, int] = (600, 400)) -> bytes:
    image = two_halves(size)
    if image_format == "MPO":
        return encoded(image, "MPO", save_all=True, append_images=[two_halves(size)])
    return encoded(image, image_format)


def camera_exif(orientation: int = 6) -> Image.Exif:
    """What a phone writes: the orientation to turn the picture by, its make, where it was."""
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[MAKE] = "SpyCam"
    exif[GPS_IFD] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
    return exif


def jpeg_from_camera(size: tuple[int, int] = (600, 400), orientation: int = 6) -> bytes:
    """A JPEG whose pixels lie on their side (EXIF orientation 6), with a GPS position."""
    return encoded(two_halves(size), "JPEG", exif=camera_exif(orientation), quality=95)


def png_with_metadata() -> bytes:
    """A PNG with text chunks, an eXIf chunk (GPS) and an ICC colour profile."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", SECRET_PLACE)
    info.add_itxt("Author", "Jane Doe")
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return encoded(
        two_halves(), "PNG", pnginfo=info, exif=camera_exif(orientation=1), icc_profile=profile
    )


def webp_with_metadata() -> bytes:
    xmp = f'<x:xmpmeta xmlns:x="adobe:ns:meta/">{SECRET_PLACE}</x:xmpmeta>'.encode()
    return encoded(two_halves(), "WEBP", exif=camera_exif(orientation=1), xmp=xmp)


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


@functools.cache
def noisy_jpeg(size: tuple[int, int] = (800, 600)) -> bytes:
    """A JPEG whose detail survives compression, so cutting it short loses pixels."""
    return encoded(Image.effect_noise(size, 64).convert("RGB"), "JPEG", quality=95)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb's shape)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


@functools.cache
def huge_real_png(width: int = 8000, height: int = 8000) -> bytes:
    """A real, complete PNG of 64 megapixels that compresses to a few kilobytes."""
    return encoded(Image.new("1", (width, height), 0), "PNG", optimize=True)


def upload(data: bytes, name: str, content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def photo_upload(image_format: str = "JPEG", size: tuple[int, int] = (600, 400), name: str = ""):
    data = photo_bytes(image_format, size)
    filename = name or f"photo.{EXTENSIONS[image_format]}"
    return upload(data, filename, CONTENT_TYPES[image_format])


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def dominant(image: Image.Image, xy: tuple[int, int]) -> str:
    """ "red" or "blue": which of the two halves' colours this pixel is closest to."""
    red, _, blue = image.convert("RGB").getpixel(xy)[:3]
    return "red" if red > blue else "blue"

"""Campaign cover images: checked by content, cleaned and re-encoded, stored under random names.

What a creator uploads is never stored or served as is. ``process_cover`` reads at most
``MAX_UPLOAD_BYTES`` (+1 to tell "too big"), lets Pillow identify it from its bytes — only JPEG,
PNG and WebP; the file name and the browser's Content-Type are ignored — and refuses
decompression bombs (more than ``MAX_PIXELS`` pixels, checked from the header before any pixel is
decoded), animations, and damaged or truncated files. It then applies the EXIF orientation,
converts to sRGB (through the embedded ICC profile, if any), flattens transparency onto white,
scales down to at most ``MAX_WIDTH`` pixels wide and encodes a fresh JPEG with no metadata at all
(no EXIF, GPS, XMP, ICC or comments), plus a ``THUMBNAIL_WIDTH`` variant for cards.

Why JPEG and not WebP out: covers also go into emails and social previews (og:image), where
JPEG is the one format every client shows; a photo at quality 85 and 1600 px is ~150–300 KB.

``save_cover`` writes the result atomically under ``secrets.token_hex(16) + ".jpg"``;
``open_cover``/``cover_path`` accept only names of that exact shape, so a name taken from a URL can
never leave the upload folder. Error messages are translated at the moment they are raised
(flask_babel's ``gettext``, which falls back to English outside a request) and are written to be
shown next to the form field: ``form.cover.errors.append(str(error))``.
"""
from __future__ import annotations

import io
import logging
import math
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from flask_babel import gettext as _
from PIL import Image, ImageCms, UnidentifiedImageError

__all__ = [
    "ALLOWED_FORMATS",
    "MAX_PIXELS",
    "MAX_UPLOAD_BYTES",
    "MAX_WIDTH",
    "THUMBNAIL_WIDTH",
    "ImageError",
    "ProcessedImage",
    "content_type_for",
    "cover_path",
    "delete_cover",
    "is_cover_name",
    "open_cover",
    "process_cover",
    "save_cover",
    "thumbnail_name",
]

log = logging.getLogger(__name__)

#: Largest upload accepted, in bytes (SPEC §3: ≤ 5 MB).
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
#: Largest picture accepted, in pixels (width × height), far below what would exhaust memory.
MAX_PIXELS = 40_000_000
#: Stored covers are at most this wide; the height follows the aspect ratio.
MAX_WIDTH = 1600
#: Width of the card-sized variant.
THUMBNAIL_WIDTH = 600
JPEG_QUALITY = 85
THUMBNAIL_QUALITY = 80
#: Formats Pillow may identify an upload as (MPO is a camera JPEG carrying extra views; we keep the first).
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP")
_ACCEPTED = {"JPEG", "MPO", "PNG", "WEBP"}
_COVER_NAME = re.compile(r"[0-9a-f]{32}(?:\.thumb)?\.(?:jpg|webp)")
_CONTENT_TYPES = {"jpg": "image/jpeg", "webp": "image/webp"}
_READ_CHUNK = 64 * 1024
_ORIENTATION_TAG = 0x0112
# EXIF orientation → the transpose that shows the picture upright (as ImageOps.exif_transpose does).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SRGB = ImageCms.createProfile("sRGB")


class ImageError(ValueError):
    """An upload we refuse; ``message`` is translated and fit to show next to the form field."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return str(self.message)


@dataclass(frozen=True)
class ProcessedImage:
    """A cover re-encoded by us: what gets stored and served."""

    data: bytes
    content_type: str
    extension: str
    width: int
    height: int
    #: The same picture at most THUMBNAIL_WIDTH wide, same format.
    thumbnail: bytes | None = None


# --- reading -------------------------------------------------------------------------------------


def _read_limited(source: object) -> bytes:
    """The upload's bytes; raises as soon as more than MAX_UPLOAD_BYTES are seen."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        if len(data) > MAX_UPLOAD_BYTES:
            raise _too_big()
        return data
    stream: BinaryIO | None = getattr(source, "stream", None) or (source if hasattr(source, "read") else None)
    if stream is None:
        raise TypeError("process_cover takes a FileStorage, a binary file or bytes")
    try:
        stream.seek(0)  # a validator may have peeked at it already
    except (AttributeError, OSError, ValueError):
        pass
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_UPLOAD_BYTES:
        chunk = stream.read(min(_READ_CHUNK, MAX_UPLOAD_BYTES + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > MAX_UPLOAD_BYTES:
        raise _too_big()
    return b"".join(chunks)


def _too_big() -> ImageError:
    return ImageError(_("The image is larger than %(limit)s MB. Choose a smaller file.", limit=MAX_UPLOAD_BYTES // (1024 * 1024)))


def _not_an_image() -> ImageError:
    return ImageError(_("This file is not a JPEG, PNG or WebP image."))


def _damaged() -> ImageError:
    return ImageError(_("The image could not be read: the file may be damaged or incomplete."))


def _too_many_pixels() -> ImageError:
    return ImageError(
        _("The image has too many pixels: at most %(limit)s megapixels (for example 8000 × 5000).", limit=MAX_PIXELS // 1_000_000)
    )


def _has_allowed_signature(data: bytes) -> bool:
    return data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def _open(data: bytes) -> Image.Image:
    """Open from the bytes, trying only the allowed decoders; check format, pixel count and frames."""
    try:
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except UnidentifiedImageError:
        # Pillow cannot tell "not an image" from "a PNG cut after its signature": the magic bytes can.
        raise (_damaged() if _has_allowed_signature(data) else _not_an_image()) from None
    except Image.DecompressionBombError:
        raise _too_many_pixels() from None
    except Exception as exc:  # hostile input can make any decoder raise anything
        log.info("cover rejected while opening: %r", exc)
        raise _damaged() from None
    if image.format not in _ACCEPTED:
        raise _not_an_image()
    width, height = image.size
    if width < 1 or height < 1:
        raise _damaged()
    # Checked from the header, before decoding; far below Pillow's own bomb threshold (~89 MP),
    # so its DecompressionBombWarning can never fire for a picture that passes here.
    if width * height > MAX_PIXELS:
        raise _too_many_pixels()
    if image.format != "MPO" and getattr(image, "is_animated", False):
        raise ImageError(_("Animated images are not accepted. Choose a still image."))
    return image


def _verify(data: bytes) -> None:
    """Pillow's structural check (chunk CRCs for PNG); the image must be reopened after it."""
    image = _open(data)
    try:
        image.verify()
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise _too_many_pixels() from None
    except Exception as exc:
        log.info("cover rejected by verify: %r", exc)
        raise _damaged() from None
    finally:
        image.close()


# --- cleaning ------------------------------------------------------------------------------------


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # a broken EXIF block is not worth refusing the picture for
        return 1
    return value if isinstance(value, int) and value in _TRANSPOSE else 1


def _to_srgb(image: Image.Image) -> Image.Image:
    """Convert through the embedded ICC profile (phones shoot Display P3), so colours survive stripping it."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "RGBA", "CMYK", "L", "LA"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        out_mode = "RGBA" if image.mode in ("RGBA", "LA") else "RGB"
        if image.mode == "LA":
            image = image.convert("RGBA")
        converted = ImageCms.profileToProfile(image, source, _SRGB, outputMode=out_mode)
    except Exception as exc:  # a bad or unusual profile: keep the pixels as they are
        log.info("cover ICC profile ignored: %r", exc)
        return image
    return converted if converted is not None else image


def _to_rgb(image: Image.Image) -> Image.Image:
    """Plain 8-bit RGB; transparency is laid on white (covers show on a light page)."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        # 16-bit greyscale PNG: scale to 8 bits instead of clipping everything above 255 to white.
        image = image.convert("I").point(lambda v: v * (1 / 257)).convert("L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        background.alpha_composite(rgba)
        image = background
    return image.convert("RGB") if image.mode != "RGB" else image


def _scaled(image: Image.Image, max_width: int) -> Image.Image:
    if image.width <= max_width:
        return image
    height = max(1, round(image.height * max_width / image.width))
    return image.resize((max_width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)


def _encode_jpeg(image: Image.Image, quality: int) -> bytes:
    # A fresh image carries no info dict: nothing of the upload's metadata can reach the encoder.
    clean = Image.new("RGB", image.size)
    clean.paste(image)
    buffer = io.BytesIO()
    clean.save(buffer, "JPEG", quality=quality, optimize=True, progressive=True)
    return buffer.getvalue()


def process_cover(source: object) -> ProcessedImage:
    """Check an uploaded cover by its content and re-encode it; raises ImageError with a message for the form.

    `source` is a werkzeug FileStorage, a binary file object or bytes.
    """
    data = _read_limited(source)
    if not data:
        raise ImageError(_("The file is empty. Choose a JPEG, PNG or WebP image."))
    _verify(data)
    original = _open(data)
    try:
        orientation = _orientation(original)
        sideways = orientation in (5, 6, 7, 8)
        # Let libjpeg decode big JPEGs at 1/2, 1/4 or 1/8 scale: a fraction of the memory and time.
        across = original.height if sideways else original.width
        if original.format in ("JPEG", "MPO") and across > MAX_WIDTH:
            scale = MAX_WIDTH / across
            original.draft(None, (math.ceil(original.width * scale), math.ceil(original.height * scale)))
        original.load()
        image = original.transpose(_TRANSPOSE[orientation]) if orientation in _TRANSPOSE else original
        image = _scaled(_to_rgb(_to_srgb(image)), MAX_WIDTH)
        width, height = image.size
        data_out = _encode_jpeg(image, JPEG_QUALITY)
        thumbnail = _encode_jpeg(_scaled(image, THUMBNAIL_WIDTH), THUMBNAIL_QUALITY)
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise _too_many_pixels() from None
    except Exception as exc:  # truncated data, decoder errors: the upload is at fault, not us
        log.info("cover rejected while decoding: %r", exc)
        raise _damaged() from None
    finally:
        original.close()
    return ProcessedImage(
        data=data_out, content_type="image/jpeg", extension="jpg", width=width, height=height, thumbnail=thumbnail
    )


# --- storing -------------------------------------------------------------------------------------


def is_cover_name(filename: object) -> bool:
    """True for names save_cover makes: 32 hex digits, optional ".thumb", ".jpg" or ".webp"."""
    return isinstance(filename, str) and _COVER_NAME.fullmatch(filename) is not None


def thumbnail_name(filename: str) -> str:
    """The name of a stored cover's card-sized variant."""
    if not is_cover_name(filename) or ".thumb." in filename:
        raise ValueError(f"not a cover name: {filename!r}")
    stem, extension = filename.split(".", 1)
    return f"{stem}.thumb.{extension}"


def content_type_for(filename: str) -> str:
    """The Content-Type to serve a stored cover with."""
    return _CONTENT_TYPES[filename.rsplit(".", 1)[-1]]


def _write_atomically(folder: Path, name: str, data: bytes) -> None:
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, 0o644)  # readable by a front web server serving the folder
        os.replace(temporary, folder / name)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save_cover(image: ProcessedImage, folder: str | os.PathLike[str]) -> str:
    """Store a processed cover (and its thumbnail) under a new random name in `folder`; return the name."""
    if not isinstance(image, ProcessedImage):
        raise TypeError("save_cover takes the ProcessedImage returned by process_cover")
    if image.extension not in _CONTENT_TYPES:
        raise ValueError(f"unexpected extension {image.extension!r}")
    directory = Path(folder)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_hex(16)}.{image.extension}"
    # The thumbnail first: once the main name exists, everything it refers to exists.
    if image.thumbnail is not None:
        _write_atomically(directory, thumbnail_name(name), image.thumbnail)
    _write_atomically(directory, name, image.data)
    return name


def cover_path(folder: str | os.PathLike[str], filename: str) -> Path:
    """The path of a stored cover; FileNotFoundError for a malformed name (a route answers 404) or a missing file."""
    if not is_cover_name(filename):
        raise FileNotFoundError(f"not a cover name: {filename!r}")
    directory = Path(folder).resolve()
    path = directory / filename
    # The regex already rules out separators and dots; this guards against a symlink planted in the folder.
    if path.resolve().parent != directory or not path.is_file():
        raise FileNotFoundError(f"no cover {filename!r}")
    return path


def open_cover(folder: str | os.PathLike[str], filename: str) -> BinaryIO:
    """Open a stored cover for reading; FileNotFoundError for a malformed name or a missing file."""
    return cover_path(folder, filename).open("rb")


def delete_cover(folder: str | os.PathLike[str], filename: str) -> None:
    """Remove a stored cover and its thumbnail (when replaced); a missing file is not an error."""
    if not is_cover_name(filename) or ".thumb." in filename:
        raise ValueError(f"not a cover name: {filename!r}")
    directory = Path(folder)
    for name in (filename, thumbnail_name(filename)):
        (directory / name).unlink(missing_ok=True)


def stored_covers(folder: str | os.PathLike[str]) -> list[tuple[str, float]]:
    """Every stored cover (not thumbnails) and left-over partial upload in `folder`, with its mtime."""
    directory = Path(folder)
    if not directory.is_dir():
        return []
    found = []
    for entry in os.scandir(directory):
        leftover = entry.name.startswith(".upload-") and entry.name.endswith(".part")
        if entry.is_file(follow_symlinks=False) and (leftover or (is_cover_name(entry.name) and ".thumb." not in entry.name)):
            found.append((entry.name, entry.stat(follow_symlinks=False).st_mtime))
    return found


def delete_stored(folder: str | os.PathLike[str], filename: str) -> None:
    """Remove a stored cover with its thumbnail, or a left-over partial upload."""
    if filename.startswith(".upload-") and filename.endswith(".part") and "/" not in filename:
        (Path(folder) / filename).unlink(missing_ok=True)
    else:
        delete_cover(folder, filename)

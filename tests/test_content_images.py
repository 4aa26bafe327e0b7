"""Cover images: good pictures are cleaned and re-encoded; hostile uploads are refused with a clear message."""
from __future__ import annotations

import io
import os
import random
import stat
import struct
import zlib

import pytest
from PIL import ExifTags, Image, ImageCms, ImageOps
from PIL.PngImagePlugin import PngInfo
from werkzeug.datastructures import FileStorage

from app.content import images
from app.content.images import (
    MAX_UPLOAD_BYTES,
    MAX_WIDTH,
    THUMBNAIL_WIDTH,
    ImageError,
    ProcessedImage,
    content_type_for,
    cover_path,
    delete_cover,
    is_cover_name,
    open_cover,
    process_cover,
    save_cover,
    thumbnail_name,
)

RED, GREEN, BLUE, YELLOW = (220, 20, 20), (20, 200, 20), (20, 20, 220), (230, 220, 20)
GPS = {1: "N", 2: (52.0, 22.0, 1.5), 3: "E", 4: (4.0, 53.0, 2.0)}


# --- builders ------------------------------------------------------------------------------------


def quadrants(width: int = 400, height: int = 200) -> Image.Image:
    """Four coloured quadrants, so that any rotation or flip is visible."""
    image = Image.new("RGB", (width, height))
    half_w, half_h = width // 2, height // 2
    image.paste(RED, (0, 0, half_w, half_h))
    image.paste(GREEN, (half_w, 0, width, half_h))
    image.paste(BLUE, (0, half_h, half_w, height))
    image.paste(YELLOW, (half_w, half_h, width, height))
    return image


def exif_with(orientation: int = 1, gps: bool = True) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010E] = "<script>alert(1)</script>"  # ImageDescription
    exif[0x013B] = "Secret Photographer"  # Artist
    if gps:
        exif.get_ifd(ExifTags.IFD.GPSInfo).update(GPS)
    return exif


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def noise(width: int, height: int, seed: int = 1) -> Image.Image:
    return Image.frombytes("RGB", (width, height), random.Random(seed).randbytes(width * height * 3))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width: int, height: int, with_pixels: bool = True) -> bytes:
    """A valid 1-bit greyscale PNG of width × height pixels, all black: tiny on disk, huge in memory."""
    header = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
    compressor = zlib.compressobj(9)
    parts: list[bytes] = []
    if with_pixels:
        row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
        rows_per_block = max(1, (1 << 20) // len(row))
        block = row * rows_per_block
        remaining = height
        while remaining > 0:
            count = min(rows_per_block, remaining)
            parts.append(compressor.compress(block if count == rows_per_block else row * count))
            remaining -= count
    parts.append(compressor.flush())
    return b"\x89PNG\r\n\x1a\n" + header + _png_chunk(b"IDAT", b"".join(parts)) + _png_chunk(b"IEND", b"")


def reopen(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def near(pixel, colour, tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], colour, strict=True))


def assert_no_metadata(data: bytes) -> None:
    out = reopen(data)
    assert out.format == "JPEG"
    for key in ("exif", "icc_profile", "comment", "xmp", "XML:com.adobe.xmp", "photoshop", "adobe"):
        assert key not in out.info, key
    assert dict(out.getexif()) == {}
    for marker in (b"Exif\x00\x00", b"Secret Photographer", b"<script", b"secret", b"xmpmeta", b"ICC_PROFILE"):
        assert marker not in data, marker


# --- good pictures -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_valid_image_is_accepted_and_re_encoded(fmt):
    source = encode(quadrants(), fmt, exif=exif_with(1))
    assert b"Secret Photographer" in source  # the metadata really is in the upload
    result = process_cover(source)
    assert isinstance(result, ProcessedImage)
    assert (result.content_type, result.extension) == ("image/jpeg", "jpg")
    assert (result.width, result.height) == (400, 200)
    assert result.data != source
    assert result.data.startswith(b"\xff\xd8\xff")
    out = reopen(result.data)
    assert out.size == (400, 200) and out.mode == "RGB"
    assert near(out.getpixel((50, 50)), RED) and near(out.getpixel((350, 150)), YELLOW)
    assert_no_metadata(result.data)


def test_all_metadata_is_stripped_exif_gps_icc_xmp_comment():
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = encode(
        quadrants(), "JPEG", exif=exif_with(1, gps=True), icc_profile=icc, comment=b"secret comment",
        xmp=b"<x:xmpmeta>secret-xmp</x:xmpmeta>",
    )
    before = Image.open(io.BytesIO(source))
    assert dict(before.getexif().get_ifd(ExifTags.IFD.GPSInfo)) == GPS
    assert {"exif", "icc_profile", "comment", "xmp"} <= set(before.info)
    result = process_cover(source)
    assert_no_metadata(result.data)
    assert dict(reopen(result.data).getexif().get_ifd(ExifTags.IFD.GPSInfo)) == {}
    assert_no_metadata(result.thumbnail)


def test_png_text_chunks_are_stripped():
    info = PngInfo()
    info.add_text("Author", "secret author")
    info.add_itxt("Comment", "secret comment")
    result = process_cover(encode(quadrants(), "PNG", pnginfo=info, exif=exif_with(1)))
    assert_no_metadata(result.data)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation):
    source_image = quadrants(400, 200)
    source = encode(source_image, "JPEG", quality=95, exif=exif_with(orientation))
    expected = ImageOps.exif_transpose(Image.open(io.BytesIO(source))).convert("RGB")
    result = process_cover(source)
    out = reopen(result.data)
    assert out.size == expected.size == ((200, 400) if orientation >= 5 else (400, 200))
    assert (result.width, result.height) == out.size
    w, h = out.size
    for point in ((w // 4, h // 4), (3 * w // 4, h // 4), (w // 4, 3 * h // 4), (3 * w // 4, 3 * h // 4)):
        assert near(out.getpixel(point), expected.getpixel(point)), (orientation, point)
    assert dict(out.getexif()) == {}  # the orientation tag is gone too, so nobody rotates it twice


def test_orientation_six_turns_the_picture_clockwise():
    result = process_cover(encode(quadrants(400, 200), "JPEG", quality=95, exif=exif_with(6)))
    out = reopen(result.data)
    assert out.size == (200, 400)
    # Rotated 90° clockwise: the left column (red over blue) becomes the top row (blue, red).
    assert near(out.getpixel((50, 50)), BLUE) and near(out.getpixel((150, 50)), RED)
    assert near(out.getpixel((50, 350)), YELLOW) and near(out.getpixel((150, 350)), GREEN)


def test_large_image_is_scaled_to_max_width_with_a_thumbnail():
    result = process_cover(encode(quadrants(4000, 3000), "JPEG", quality=90))
    assert (result.width, result.height) == (MAX_WIDTH, 1200)
    assert reopen(result.data).size == (MAX_WIDTH, 1200)
    thumb = reopen(result.thumbnail)
    assert thumb.size == (THUMBNAIL_WIDTH, 450) and thumb.format == "JPEG"
    assert near(thumb.getpixel((10, 10)), RED)


def test_sideways_large_jpeg_is_limited_by_its_displayed_width():
    result = process_cover(encode(quadrants(3200, 2000), "JPEG", exif=exif_with(8)))
    assert (result.width, result.height) == (MAX_WIDTH, 2560)


def test_small_image_is_not_upscaled():
    result = process_cover(encode(quadrants(300, 120), "PNG"))
    assert (result.width, result.height) == (300, 120)
    assert reopen(result.thumbnail).size == (300, 120)


def test_transparency_is_laid_on_white():
    image = Image.new("RGBA", (100, 50), (0, 0, 0, 0))
    image.paste((200, 0, 0, 255), (0, 0, 50, 50))
    out = reopen(process_cover(encode(image, "PNG")).data)
    assert out.mode == "RGB"
    assert near(out.getpixel((75, 25)), (255, 255, 255), 8)
    assert near(out.getpixel((25, 25)), (200, 0, 0))


def test_palette_png_with_transparency_and_webp_with_alpha():
    palette = Image.new("P", (40, 40), 0)
    palette.putpalette([10, 200, 10] + [0, 0, 0] * 255)
    out = reopen(process_cover(encode(palette, "PNG", transparency=0)).data)
    assert near(out.getpixel((20, 20)), (255, 255, 255), 8)
    webp = reopen(process_cover(encode(Image.new("RGBA", (40, 40), (0, 0, 255, 0)), "WEBP", lossless=True)).data)
    assert near(webp.getpixel((20, 20)), (255, 255, 255), 8)


def test_sixteen_bit_greyscale_png_keeps_its_tones():
    out = reopen(process_cover(encode(Image.new("I;16", (32, 32), 32768), "PNG")).data)
    assert near(out.getpixel((16, 16)), (128, 128, 128), 6)


def test_cmyk_jpeg_becomes_rgb():
    out = reopen(process_cover(encode(Image.new("CMYK", (40, 30), (0, 255, 255, 0)), "JPEG")).data)
    assert out.mode == "RGB"
    assert out.getpixel((20, 15))[0] > 180 and out.getpixel((20, 15))[1] < 90


def test_camera_mpo_keeps_its_first_view():
    source = encode(Image.new("RGB", (80, 60), RED), "MPO", save_all=True, append_images=[Image.new("RGB", (80, 60), BLUE)])
    assert Image.open(io.BytesIO(source)).format == "MPO"
    out = reopen(process_cover(source).data)
    assert out.size == (80, 60) and near(out.getpixel((40, 30)), RED)


def test_polyglot_trailer_is_not_carried_over():
    source = encode(quadrants(), "JPEG") + b"<script>alert(1)</script><?php system($_GET['c']); ?>"
    result = process_cover(source)
    assert b"<script" not in result.data and b"<?php" not in result.data


def test_accepts_file_storage_and_file_objects_and_ignores_the_claimed_name():
    data = encode(quadrants(), "PNG")
    upload = FileStorage(stream=io.BytesIO(data), filename="holiday.gif", content_type="image/gif")
    upload.stream.read(10)  # a validator peeked at it
    assert process_cover(upload).width == 400
    assert process_cover(io.BytesIO(data)).height == 200
    assert process_cover(bytearray(data)).width == 400


# --- hostile uploads -----------------------------------------------------------------------------

NOT_AN_IMAGE = "not a JPEG, PNG or WebP image"
DAMAGED = "could not be read"


def _gif() -> bytes:
    return encode(quadrants(), "GIF")


def _truncated_png() -> bytes:
    data = encode(noise(200, 200), "PNG")
    return data[: len(data) // 2]


def _bad_crc_png() -> bytes:
    data = bytearray(encode(noise(64, 64), "PNG"))
    idat = data.index(b"IDAT")
    data[idat + 20] ^= 0xFF
    return bytes(data)


def _truncated_jpeg() -> bytes:
    data = encode(noise(400, 300), "JPEG")
    return data[: len(data) // 2]


HOSTILE = {
    "svg with script": (
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'
        b"<script>alert(document.cookie)</script></svg>",
        NOT_AN_IMAGE,
    ),
    "text file named .png": (b"just some text, honestly a picture\n", NOT_AN_IMAGE),
    "html file": (b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>", NOT_AN_IMAGE),
    "html with png magic": (b"\x89PNG\r\n\x1a\n<html><script>alert(1)</script></html>", DAMAGED),
    "jpeg magic only": (b"\xff\xd8\xff", DAMAGED),
    "webp header only": (b"RIFF\x10\x00\x00\x00WEBPVP8 ", DAMAGED),
    "gif": (_gif(), NOT_AN_IMAGE),
    "bmp": (encode(quadrants(), "BMP"), NOT_AN_IMAGE),
    "tiff": (encode(quadrants(), "TIFF"), NOT_AN_IMAGE),
    "pdf": (b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF", NOT_AN_IMAGE),
    "random bytes": (random.Random(7).randbytes(4096), NOT_AN_IMAGE),
    "png signature only": (b"\x89PNG\r\n\x1a\n", DAMAGED),
    "truncated png": (_truncated_png(), DAMAGED),
    "png with a bad checksum": (_bad_crc_png(), DAMAGED),
    "truncated jpeg": (_truncated_jpeg(), DAMAGED),
    "zero-byte file": (b"", "empty"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_upload_is_refused_with_a_clear_message(name):
    data, expected = HOSTILE[name]
    upload = FileStorage(stream=io.BytesIO(data), filename="cover.png", content_type="image/png")
    with pytest.raises(ImageError) as caught:
        process_cover(upload)
    message = str(caught.value)
    assert expected in message
    assert message == caught.value.message and message.endswith(".")
    assert "Traceback" not in message and "Error" not in message


def test_animated_images_are_refused():
    frames = [Image.new("RGB", (40, 40), RED), Image.new("RGB", (40, 40), BLUE)]
    for fmt in ("PNG", "WEBP"):
        with pytest.raises(ImageError, match="Animated images are not accepted"):
            process_cover(encode(frames[0], fmt, save_all=True, append_images=frames[1:]))


def test_oversized_upload_is_refused_by_size():
    big = encode(quadrants(), "JPEG") + b"\x00" * MAX_UPLOAD_BYTES
    with pytest.raises(ImageError, match="larger than 5 MB"):
        process_cover(big)
    with pytest.raises(ImageError, match="larger than 5 MB"):
        process_cover(FileStorage(stream=io.BytesIO(big), filename="big.jpg"))
    with pytest.raises(ImageError, match="larger than 5 MB"):
        process_cover(b"\xff" * (MAX_UPLOAD_BYTES + 1))


def test_exactly_the_size_limit_is_judged_by_content():
    with pytest.raises(ImageError, match=NOT_AN_IMAGE):
        process_cover(b"\x00" * MAX_UPLOAD_BYTES)


def test_never_reads_more_than_the_limit_plus_one_byte():
    class Endless(io.RawIOBase):
        given = 0

        def readable(self):
            return True

        def readinto(self, buffer):
            size = len(buffer)
            buffer[:size] = b"\xff" * size
            self.given += size
            return size

    endless = Endless()
    with pytest.raises(ImageError, match="larger than"):
        process_cover(FileStorage(stream=endless, filename="endless.jpg"))
    assert endless.given == MAX_UPLOAD_BYTES + 1


def test_decompression_bomb_is_refused_before_decoding():
    bomb = png_bomb(30_000, 30_000)  # 900 megapixels in about a hundred kilobytes
    assert len(bomb) < 1024 * 1024
    with pytest.raises(ImageError, match="too many pixels"):
        process_cover(bomb)
    with pytest.raises(ImageError, match="too many pixels"):
        process_cover(png_bomb(30_000, 30_000, with_pixels=False))


def test_pixel_cap_below_pillows_own_threshold():
    bomb = png_bomb(8_000, 5_001)  # 40.008 MP: Pillow alone would decode it
    assert 8_000 * 5_001 < Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageError, match="at most 40 megapixels"):
        process_cover(bomb)


def test_pixel_cap_boundary(monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 10_000)
    assert process_cover(png_bomb(100, 100)).width == 100
    with pytest.raises(ImageError, match="too many pixels"):
        process_cover(png_bomb(100, 101))


def test_non_upload_argument_is_a_programming_error():
    with pytest.raises(TypeError):
        process_cover(12345)


@pytest.mark.parametrize("name", list(HOSTILE))
def test_every_message_goes_through_gettext(monkeypatch, name):
    def fake_gettext(text, **variables):
        return "«" + (text % variables if variables else text) + "»"

    monkeypatch.setattr(images, "_", fake_gettext)
    with pytest.raises(ImageError) as caught:
        process_cover(HOSTILE[name][0])
    assert str(caught.value).startswith("«") and str(caught.value).endswith("»")


def test_size_pixel_and_animation_messages_go_through_gettext(monkeypatch):
    monkeypatch.setattr(images, "_", lambda text, **variables: "«" + (text % variables if variables else text) + "»")
    frames = [Image.new("RGB", (8, 8), RED), Image.new("RGB", (8, 8), BLUE)]
    for data in (b"\x00" * (MAX_UPLOAD_BYTES + 1), png_bomb(9_000, 9_000, with_pixels=False),
                 encode(frames[0], "PNG", save_all=True, append_images=frames[1:])):
        with pytest.raises(ImageError, match="^«.*»$"):
            process_cover(data)


# --- storing and opening -------------------------------------------------------------------------


@pytest.fixture
def stored(tmp_path):
    result = process_cover(encode(quadrants(2000, 1000), "PNG"))
    return tmp_path, save_cover(result, tmp_path / "covers"), result


def test_save_cover_writes_random_names_atomically(stored):
    root, name, result = stored
    folder = root / "covers"
    assert is_cover_name(name) and name.endswith(".jpg") and len(name) == 36
    assert (folder / name).read_bytes() == result.data
    assert (folder / thumbnail_name(name)).read_bytes() == result.thumbnail
    assert sorted(os.listdir(folder)) == sorted([name, thumbnail_name(name)])  # no temporary files left
    assert stat.S_IMODE((folder / name).stat().st_mode) == 0o644
    assert save_cover(result, folder) != name


def test_open_cover_and_cover_path(stored):
    root, name, result = stored
    with open_cover(root / "covers", name) as handle:
        assert handle.read() == result.data
    with open_cover(str(root / "covers"), thumbnail_name(name)) as handle:
        assert reopen(handle.read()).width == THUMBNAIL_WIDTH
    assert cover_path(root / "covers", name) == (root / "covers" / name).resolve()
    assert content_type_for(name) == "image/jpeg"
    assert content_type_for("0" * 32 + ".webp") == "image/webp"


@pytest.mark.parametrize(
    "name",
    [
        "../secret.txt", "..", ".", "", "/etc/passwd", "..%2F..%2Fetc%2Fpasswd", "..\\..\\secret.txt",
        "0123456789abcdef0123456789abcdef.jpg/../../secret.txt", "../0123456789abcdef0123456789abcdef.jpg",
        "covers/0123456789abcdef0123456789abcdef.jpg", "0123456789ABCDEF0123456789ABCDEF.jpg",
        "0123456789abcdef0123456789abcdef.JPG", "0123456789abcdef0123456789abcdef.png",
        "0123456789abcdef0123456789abcdef.jpg\n", "0123456789abcdef0123456789abcdef.jpg\x00.txt",
        "0123456789abcdef0123456789abcde.jpg", "0123456789abcdef0123456789abcdef0.jpg",
        "0123456789abcdef0123456789abcdef.thumb.thumb.jpg", "０１２３４５６７８９abcdef0123456789abcdef.jpg",
        ".upload-abc.part", "~/x.jpg", None, b"0123456789abcdef0123456789abcdef.jpg",
    ],
)
def test_bad_names_are_refused(tmp_path, name):
    (tmp_path / "secret.txt").write_text("secret")
    covers = tmp_path / "covers"
    covers.mkdir()
    with pytest.raises(FileNotFoundError):
        open_cover(covers, name)
    with pytest.raises(FileNotFoundError):
        cover_path(covers, name)
    assert not is_cover_name(name)


def test_missing_cover_is_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        open_cover(tmp_path, "f" * 32 + ".jpg")


def test_symlink_planted_in_the_folder_is_refused(tmp_path):
    (tmp_path / "secret.txt").write_text("secret")
    covers = tmp_path / "covers"
    covers.mkdir()
    (covers / ("a" * 32 + ".jpg")).symlink_to(tmp_path / "secret.txt")
    with pytest.raises(FileNotFoundError):
        open_cover(covers, "a" * 32 + ".jpg")


def test_delete_cover_removes_both_files(stored):
    root, name, _result = stored
    delete_cover(root / "covers", name)
    assert os.listdir(root / "covers") == []
    delete_cover(root / "covers", name)  # already gone: fine
    with pytest.raises(ValueError):
        delete_cover(root / "covers", "../secret.txt")


def test_save_cover_takes_a_processed_image(tmp_path):
    with pytest.raises(TypeError):
        save_cover(b"\xff\xd8\xff raw bytes", tmp_path)
    with pytest.raises(ValueError):
        thumbnail_name("../x.jpg")

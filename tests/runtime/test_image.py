"""Image implementations: size, mode and known pixels; bombs and broken data refused."""

from __future__ import annotations

import io

import pytest
from PIL import Image as PILImage

from neira.runtime.builtin.image import DecodeParams, decode, edge_detect, features, grayscale
from neira.runtime.payloads import Image
from neira.runtime.registry import BadInput
from tests.runtime.media import image_bytes, png_bomb

D = DecodeParams()


def pil(payload: Image) -> PILImage.Image:
    assert payload.media_type == "image/png"
    img = PILImage.open(io.BytesIO(payload.data_b64))
    assert (img.format, img.width, img.height) == ("PNG", payload.width, payload.height)
    return img


@pytest.mark.parametrize(("fmt", "media"), [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_decode_reads_every_format_into_a_png(fmt: str, media: str) -> None:
    out = decode(Image(media_type=media, data_b64=image_bytes((40, 20), fmt=fmt)), D)  # type: ignore[arg-type]
    img = pil(out)
    assert (img.mode, img.size) == ("RGB", (40, 20))
    r, g, b = img.getpixel((0, 0))  # type: ignore[misc]
    assert abs(r - 200) < 12 and abs(g - 40) < 12 and abs(b - 10) < 12  # JPEG/WebP are lossy
    assert img.getpixel((20, 10)) == (255, 255, 255) if fmt == "PNG" else True


def test_decode_puts_transparency_over_white() -> None:
    buf = io.BytesIO()
    PILImage.new("RGBA", (4, 4), (0, 0, 0, 0)).save(buf, "PNG")
    assert pil(decode(Image(data_b64=buf.getvalue()), D)).getpixel((1, 1)) == (255, 255, 255)


def test_grayscale_is_luma() -> None:
    img = pil(grayscale(Image(data_b64=image_bytes((32, 24))), D))
    assert (img.mode, img.size) == ("L", (32, 24))
    assert img.getpixel((0, 0)) == 200 * 299 // 1000 + 40 * 587 // 1000 + 10 * 114 // 1000 + 1  # 84: ITU-R 601-2
    assert img.getpixel((16, 12)) == 255


def test_edges_are_bright_on_the_square_border_and_dark_inside() -> None:
    img = pil(edge_detect(Image(data_b64=image_bytes((64, 64))), D))
    assert img.mode == "L"
    assert img.getpixel((32, 32)) == 0 and img.getpixel((5, 32)) == 0
    assert max(img.getpixel((x, 32)) for x in range(14, 19)) > 60  # the square's left edge is at x = 16


def test_features_of_a_known_image() -> None:
    data = features(Image(data_b64=image_bytes((40, 40), colour=(0, 0, 0))), D).data
    assert data == {"width": 40, "height": 40, "mode": "RGB", "brightness": 63.75, "contrast": 110.42,
                    "edge_density": 0.25, "dominant": "#000000"}


@pytest.mark.parametrize(("data", "media", "message"), [
    (png_bomb(), "image/png", "more pixels than the limit of 16000000"),
    (png_bomb(4100, 4000), "image/png", "4100×4000 pixels, more than the limit"),
    (b"not an image at all", "image/png", "not a PNG, JPEG or WebP"),
    (image_bytes()[:60], "image/png", "broken"),
    (image_bytes(fmt="JPEG"), "image/png", "is image/jpeg, not image/png"),
])
def test_bad_images_are_refused(data: bytes, media: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        decode(Image(media_type=media, data_b64=data), D)  # type: ignore[arg-type]


def test_the_pixel_limit_is_a_param() -> None:
    with pytest.raises(BadInput, match="more than the limit of 100"):
        grayscale(Image(data_b64=image_bytes((20, 20))), DecodeParams(max_pixels=100))


def test_edges_between_colours_of_equal_brightness_show() -> None:
    """Red (200, 30, 30) and blue (30, 90, 160) have the same luma: a grey-only edge filter misses the border."""
    img = PILImage.new("RGB", (40, 40), (30, 90, 160))
    img.paste((200, 30, 30), (20, 0, 40, 40))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    edges = pil(edge_detect(Image(data_b64=buf.getvalue()), D))
    assert max(edges.getpixel((x, 20)) for x in range(18, 22)) > 60 and edges.getpixel((5, 20)) == 0

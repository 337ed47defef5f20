"""Images on Pillow: decode (PNG/JPEG/WebP, decompression bombs refused before any pixel is read), grayscale,
edges, and a few features for the vision adapter. Every image output is a PNG with its size."""

from __future__ import annotations

import io
import warnings

import msgspec
from PIL import Image as PILImage
from PIL import ImageChops, ImageFilter, ImageOps, ImageStat, UnidentifiedImageError

from neira.runtime.payloads import Image, JsonData
from neira.runtime.registry import BadInput

MAX_PIXELS = 16_000_000  # 16 MP: a 4,000 × 4,000 photo; above it decoding is refused
FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
PILImage.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own guard, for any other code path in this process


class DecodeParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """`max_pixels`: the largest width × height accepted (at most the built-in 16 MP)."""

    max_pixels: int = MAX_PIXELS

    def __post_init__(self) -> None:
        if not 1 <= self.max_pixels <= MAX_PIXELS:
            raise ValueError(f"max_pixels must be between 1 and {MAX_PIXELS}")


def open_image(payload: Image, max_pixels: int) -> PILImage.Image:
    """The decoded image; BadInput for anything that is not a PNG/JPEG/WebP within the pixel limit.

    The size is read from the header and checked before the pixels are decoded, so a 20,000 × 20,000 PNG of a
    few kilobytes costs nothing."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)  # refused just below, by name
            img = PILImage.open(io.BytesIO(payload.data_b64), formats=list(FORMATS))
            if img.width * img.height > max_pixels:
                raise BadInput(f"image is {img.width}×{img.height} pixels, more than the limit of {max_pixels}")
            img.load()
    except BadInput:
        raise
    except PILImage.DecompressionBombError:  # Pillow's own guard, past twice MAX_IMAGE_PIXELS
        raise BadInput(f"image has more pixels than the limit of {max_pixels}") from None
    except UnidentifiedImageError:
        raise BadInput("data is not a PNG, JPEG or WebP image") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt files
        raise BadInput(f"image data is broken ({type(exc).__name__})") from None
    if FORMATS.get(img.format or "") != payload.media_type:
        raise BadInput(f"data is {FORMATS.get(img.format or '', 'another format')}, not {payload.media_type}")
    return img


def png(img: PILImage.Image) -> Image:
    """An image payload: PNG, with its size."""
    out = io.BytesIO()
    img.save(out, format="PNG", compress_level=1)  # speed over size: outputs are short-lived
    return Image(media_type="image/png", data_b64=out.getvalue(), width=img.width, height=img.height)


def _rgb_or_l(img: PILImage.Image) -> PILImage.Image:
    img = ImageOps.exif_transpose(img) or img
    if img.mode in ("RGB", "L"):
        return img
    if img.mode in ("RGBA", "LA", "P", "PA"):  # transparent parts over white, as a page shows them
        rgba = img.convert("RGBA")
        canvas = PILImage.new("RGB", img.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return img.convert("RGB")


def decode(payload: Image, params: DecodeParams) -> Image:
    """Any PNG/JPEG/WebP → a PNG in RGB or L (orientation applied, transparency over white)."""
    return png(_rgb_or_l(open_image(payload, params.max_pixels)))


def grayscale(payload: Image, params: DecodeParams) -> Image:
    """Shades of grey (mode L, ITU-R 601-2 luma)."""
    return png(_rgb_or_l(open_image(payload, params.max_pixels)).convert("L"))


def edge_detect(payload: Image, params: DecodeParams) -> Image:
    """Edges (mode L): a light blur against noise, a Laplacian edge filter on each colour band (so a border
    between two colours of equal brightness still shows), the strongest band per pixel, stretched to 0..255."""
    smooth = _rgb_or_l(open_image(payload, params.max_pixels)).convert("RGB").filter(ImageFilter.GaussianBlur(1))
    r, g, b = (band.filter(ImageFilter.FIND_EDGES) for band in smooth.split())
    return png(ImageOps.autocontrast(ImageChops.lighter(ImageChops.lighter(r, g), b)))


def features(payload: Image, params: DecodeParams) -> JsonData:
    """`{width, height, mode, brightness, contrast, edge_density, dominant}`: brightness and contrast are the
    mean and standard deviation of grey (0..255); edge density is the share of pixels brighter than 32 in an
    edge image (the vision organ feeds it one); dominant is the most common colour, #rrggbb."""
    img = _rgb_or_l(open_image(payload, params.max_pixels))
    grey = img.convert("L")
    stat = ImageStat.Stat(grey)
    histogram = grey.histogram()
    bright = sum(histogram[33:])
    small = img.convert("RGB").resize((64, 64)).quantize(8)
    palette = small.getpalette() or [0, 0, 0]
    index = max(small.getcolors() or [(1, 0)])[1]
    r, g, b = palette[index * 3: index * 3 + 3]
    return JsonData(data={
        "width": img.width, "height": img.height, "mode": img.mode,
        "brightness": round(stat.mean[0], 2), "contrast": round(stat.stddev[0], 2),
        "edge_density": round(bright / (img.width * img.height), 4), "dominant": f"#{r:02x}{g:02x}{b:02x}",
    })

"""Deterministic, labelled synthetic phone photos of documents, for `services.photo_quality`.

A photo is a paper document (a letter or form, an ID card or a passport page: printed text of
several sizes, a header, boxes, a photo block, a stamp, a signature) lying on a textured table,
seen slightly rotated and in perspective, sometimes held by a thumb, under uneven light (a
gradient, a vignette, sometimes the shadow of the phone), through a camera that adds some
softness, sensor noise, sometimes sharpening, and JPEG compression (quality 60-92). Its label
says what, if anything, spoils it:

  good        readable; includes borderline cases: dim (down to -1.5 EV), soft (Gaussian
              sigma up to 0.8 px per 1000 px of the long side), uneven light, the phone's
              shadow, a thumb on the page, white paper clipped to 255 (+0.6 to +1.2 EV, 15%),
              small glints, a faint hot spot
  too_small   a good photo whose shorter side is 240-540 px (every other label: >= 720 px)
  too_dark    underexposed by 3 to 5 EV, with high-ISO noise
  too_bright  overexposed by 2 to 3.5 EV plus veiling flare (110-180 of 255): paper clipped,
              even the blackest ink washed to grey
  glare       a specular reflection whose saturated core covers 5-18% of the document, over
              text, on a photo otherwise exposed normally (-1.5 to 0 EV: the paper not clipped)
  blurry      defocus (sigma 2-5 px per 1000 px) or camera shake (8-22 px per 1000 px)

Sizes: the long side is 1000-2048 px (messenger-compressed), 8% of the time 2600-4032 px
(camera files); a third are portrait.

Seeds below HOLDOUT_SEED_BASE form the "train" split (used to choose the thresholds), seeds from
it on the "holdout" split (used only to report).
"""
from __future__ import annotations

import io
import math
from functools import lru_cache
from typing import Iterator

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

LABELS = ("good", "too_small", "too_dark", "too_bright", "glare", "blurry")
HOLDOUT_SEED_BASE = 100_000
SPLITS = {"train": 0, "holdout": HOLDOUT_SEED_BASE}

_WORDS = (
    "name nombre date fecha birth nacimiento country pais address direccion city ciudad state "
    "estado number numero case caso receipt notice aviso applicant solicitante petitioner "
    "beneficiary beneficiario department homeland security immigration services form page of "
    "the and for with this that your please read instructions carefully signature firma "
    "employment authorization document valid until expires category sex male female place "
    "issued authority surname given names nationality passport card permanent resident "
    "court hearing judge tribunal audiencia removal proceedings notice appear attorney abogado "
    "mail correo telephone telefono total amount paid fee payment received approved pending"
).split()
_PAPERS = ((247, 246, 242), (242, 238, 226), (236, 240, 246), (244, 240, 232), (238, 244, 236))
_CARDS = ((226, 236, 246), (236, 244, 230), (246, 236, 230), (240, 240, 240))
_TABLES = (  # wood, dark wood, grey laminate, white table, black, blue cloth, beige
    (150, 103, 62), (88, 56, 34), (128, 128, 124), (214, 212, 204), (34, 34, 36), (52, 72, 110),
    (190, 168, 130),
)
_INKS = ((20, 20, 22), (30, 30, 40), (18, 28, 80), (40, 36, 34))


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(6, size))


def _rng(seed: int, label: str) -> np.random.Generator:
    return np.random.default_rng([seed, LABELS.index(label), 20_240_611])


def _words(rng: np.random.Generator, n: int, upper: bool = False) -> str:
    text = " ".join(_WORDS[i] for i in rng.integers(0, len(_WORDS), n))
    return text.upper() if upper else text.capitalize()


def _code(rng: np.random.Generator, letters: int, digits: int) -> str:
    return ("".join(chr(65 + i) for i in rng.integers(0, 26, letters))
            + "".join(str(i) for i in rng.integers(0, 10, digits)))


def _line(draw: ImageDraw.ImageDraw, rng, xy, width: float, size: int, fill, upper=False) -> None:
    """A line of random words about `width` px long (ragged right)."""
    n = max(1, int(width / (size * 0.55) / 6.5 * rng.uniform(0.6, 1.0)))
    text = _words(rng, n, upper)
    font = _font(size)
    while len(text) > 3 and font.getlength(text) > width:
        text = text[: int(len(text) * 0.9)].rstrip()
    draw.text(xy, text, fill=fill, font=font)


def _photo_block(doc: Image.Image, rng, box) -> None:
    x0, y0, x1, y1 = (int(v) for v in box)
    w, h = x1 - x0, y1 - y0
    photo = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(150, 225, 3)))
    d = ImageDraw.Draw(photo)
    skin = tuple(int(v) for v in (rng.integers(110, 230), rng.integers(80, 180), rng.integers(60, 150)))
    hair = tuple(int(v) for v in rng.integers(10, 90, 3))
    d.ellipse((0.05 * w, 0.72 * h, 0.95 * w, 1.5 * h), fill=hair)  # shoulders
    d.ellipse((0.24 * w, 0.10 * h, 0.76 * w, 0.55 * h), fill=hair)
    d.ellipse((0.28 * w, 0.18 * h, 0.72 * w, 0.72 * h), fill=skin)
    doc.paste(photo, (x0, y0))


def _signature(draw: ImageDraw.ImageDraw, rng, x, y, w, h, ink) -> None:
    n = 14
    xs = x + np.linspace(0, w, n)
    ys = y + h / 2 + rng.normal(0, h / 3, n)
    draw.line(list(zip(xs.tolist(), ys.tolist())), fill=ink, width=max(1, int(h / 12)), joint="curve")


def _stamp(doc: Image.Image, rng, cx: float, cy: float, r: float) -> None:
    layer = Image.new("RGBA", doc.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    color = ((170, 30, 40), (30, 50, 150), (80, 40, 120))[int(rng.integers(0, 3))] + (int(rng.integers(120, 200)),)
    wdt = max(1, int(r / 14))
    d.ellipse((cx - r, cy - r, cx + r, cy + r), outline=color, width=wdt)
    d.ellipse((cx - 0.8 * r, cy - 0.8 * r, cx + 0.8 * r, cy + 0.8 * r), outline=color, width=wdt)
    d.text((cx - 0.6 * r, cy - 0.2 * r), _words(rng, 1, upper=True)[:8], fill=color, font=_font(int(r / 3.5)))
    doc.alpha_composite(layer)


def _letter(rng, w: int, h: int) -> Image.Image:
    """A letter or form page (portrait)."""
    paper = _PAPERS[int(rng.integers(0, len(_PAPERS)))]
    ink = _INKS[int(rng.integers(0, len(_INKS)))]
    doc = Image.new("RGBA", (w, h), paper + (255,))
    d = ImageDraw.Draw(doc)
    u = w / 100
    m = u * rng.uniform(6, 9)
    y = m
    if rng.random() < 0.6:  # seal
        d.ellipse((m, y, m + 9 * u, y + 9 * u), outline=ink, width=max(1, int(u / 3)))
        d.ellipse((m + 2 * u, y + 2 * u, m + 7 * u, y + 7 * u), fill=(60, 80, 130))
    _line(d, rng, (m + 11 * u, y + u), w - 2 * m - 11 * u, int(2.6 * u), ink, upper=True)
    _line(d, rng, (m + 11 * u, y + 4.6 * u), w - 2 * m - 11 * u, int(1.6 * u), ink, upper=True)
    d.text((w - m - 22 * u, y + 7 * u), _code(rng, 3, 10), fill=ink, font=_font(int(1.8 * u)))
    y += 12 * u
    d.line((m, y, w - m, y), fill=ink, width=max(1, int(u / 4)))
    y += 2 * u
    body = int(u * rng.uniform(1.3, 1.9))
    small = int(u * rng.uniform(0.95, 1.2))
    while y < h - m - 12 * u:
        kind = rng.random()
        if kind < 0.5:  # paragraph
            size = body
            for _ in range(int(rng.integers(2, 7))):
                if y > h - m - 12 * u:
                    break
                _line(d, rng, (m, y), (w - 2 * m) * rng.uniform(0.8, 1.0), size, ink)
                y += size * 1.45
            y += size
        elif kind < 0.75:  # boxes with labels and filled-in values
            cols = int(rng.integers(2, 4))
            bw = (w - 2 * m) / cols
            bh = 6 * u
            for c in range(cols):
                x0 = m + c * bw
                d.rectangle((x0, y, x0 + bw - u, y + bh), outline=ink, width=max(1, int(u / 6)))
                d.text((x0 + 0.6 * u, y + 0.4 * u), _words(rng, 2, upper=True), fill=ink, font=_font(small))
                d.text((x0 + 0.8 * u, y + 2.6 * u), _words(rng, 2), fill=(20, 40, 140), font=_font(body))
            y += bh + 2 * u
        elif kind < 0.88:  # table
            rows, cols = int(rng.integers(2, 5)), 4
            rh = body * 1.8
            for r in range(rows + 1):
                d.line((m, y + r * rh, w - m, y + r * rh), fill=ink, width=max(1, int(u / 8)))
            for c in range(cols + 1):
                x = m + c * (w - 2 * m) / cols
                d.line((x, y, x, y + rows * rh), fill=ink, width=max(1, int(u / 8)))
            for r in range(rows):
                for c in range(cols):
                    d.text((m + c * (w - 2 * m) / cols + 0.6 * u, y + r * rh + 0.3 * body),
                           _code(rng, 0, 6) if c else _words(rng, 1), fill=ink, font=_font(small))
            y += rows * rh + 2 * u
        else:  # small print
            for _ in range(int(rng.integers(2, 5))):
                _line(d, rng, (m, y), w - 2 * m, small, ink)
                y += small * 1.35
            y += small
    _signature(d, rng, m, h - m - 8 * u, 25 * u, 5 * u, (20, 30, 110))
    _line(d, rng, (m, h - m - 2 * u), w - 2 * m, small, ink)
    if rng.random() < 0.5:
        _stamp(doc, rng, w - m - 12 * u, h - m - 12 * u, 9 * u)
    return doc


def _card(rng, w: int, h: int, passport: bool) -> Image.Image:
    """An ID card or a passport data page (landscape)."""
    base = _CARDS[int(rng.integers(0, len(_CARDS)))]
    ink = _INKS[int(rng.integers(0, len(_INKS)))]
    doc = Image.new("RGBA", (w, h), base + (255,))
    d = ImageDraw.Draw(doc)
    u = w / 100
    # guilloche background
    xs = np.linspace(0, w, 80)
    for k in range(9):
        phase, amp = rng.uniform(0, 6.3), rng.uniform(2, 6) * u
        ys = h * (k + 0.5) / 9 + amp * np.sin(xs / w * rng.uniform(6, 14) + phase)
        col = tuple(max(0, c - int(rng.integers(12, 30))) for c in base)
        d.line(list(zip(xs.tolist(), ys.tolist())), fill=col, width=max(1, int(u / 5)))
    band = tuple(int(v) for v in rng.integers(30, 140, 3))
    d.rectangle((0, 0, w, 11 * u), fill=band)
    _line(d, rng, (3 * u, 2 * u), w * 0.8, int(3.4 * u), (250, 250, 250), upper=True)
    _line(d, rng, (3 * u, 6.6 * u), w * 0.6, int(2.2 * u), (240, 240, 240), upper=True)
    top = 14 * u
    _photo_block(doc, rng, (4 * u, top, 30 * u, top + 34 * u))
    x = 34 * u
    y = top
    lab, val = int(u * rng.uniform(1.5, 1.9)), int(u * rng.uniform(2.3, 3.0))
    bottom = h - (14 * u if passport else 8 * u)
    while y + lab + val < bottom:
        d.text((x, y), _words(rng, 2, upper=True), fill=(90, 90, 100), font=_font(lab))
        y += lab * 1.2
        value = _code(rng, 2, 9) if rng.random() < 0.3 else _words(rng, int(rng.integers(1, 4)), upper=True)
        d.text((x, y), value, fill=ink, font=_font(val))
        y += val * 1.5
    _signature(d, rng, 5 * u, top + 38 * u, 22 * u, 6 * u, (20, 30, 110))
    if passport:  # machine-readable zone
        mrz = int(u * 2.6)
        for k in range(2):
            line = "P<" + _code(rng, 3, 0) + "<<" + _code(rng, 18, 0) + "<<<<" + _code(rng, 0, 10)
            d.text((3 * u, h - 12 * u + k * mrz * 1.5), line, fill=ink, font=_font(mrz))
    if rng.random() < 0.4:
        _stamp(doc, rng, 24 * u, h - 14 * u, 8 * u)
    return doc


def _document(rng, frame: tuple[int, int]) -> Image.Image:
    kind = rng.choice(["letter", "letter", "id", "passport"])
    fw, fh = frame
    fill = rng.uniform(0.6, 0.88)
    aspect = 1 / 1.294 if kind == "letter" else (1.586 if kind == "id" else 1.42)  # width / height
    if fw / fh > aspect:
        dh = fill * fh
        dw = dh * aspect
    else:
        dw = fill * fw
        dh = dw / aspect
    dw, dh = max(40, int(dw)), max(30, int(dh))
    return _letter(rng, dw, dh) if kind == "letter" else _card(rng, dw, dh, kind == "passport")


def _perspective_coeffs(dst: np.ndarray, src: np.ndarray) -> list[float]:
    """Coefficients for Image.transform(PERSPECTIVE) mapping output points `dst` to input `src`."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return np.linalg.solve(np.array(rows, float), np.array(rhs, float)).tolist()


def _low_res(frame: tuple[int, int], long: int = 160) -> tuple[int, int]:
    fw, fh = frame
    k = long / max(fw, fh)
    return max(2, round(fw * k)), max(2, round(fh * k))


def _table(rng, frame: tuple[int, int]) -> Image.Image:
    """A textured table top (colour, blotches, grain), built small and scaled up."""
    sw, sh = _low_res(frame, 320)
    base = np.array(_TABLES[int(rng.integers(0, len(_TABLES)))], np.float32)
    blotch = np.asarray(Image.fromarray((rng.random((sh // 8 + 2, sw // 8 + 2)) * 255).astype(np.uint8))
                        .resize((sw, sh), Image.Resampling.BICUBIC), np.float32) / 255 - 0.5
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    ang = rng.uniform(0, math.pi)
    t = xx * math.cos(ang) + yy * math.sin(ang)
    grain = np.sin(t * rng.uniform(0.3, 1.2) + blotch * rng.uniform(4, 12))
    amp = rng.uniform(4, 16)
    arr = base[None, None, :] * (1 + 0.12 * blotch[..., None]) + amp * grain[..., None] * (base / 160)
    arr += rng.normal(0, 3, (sh, sw, 1))
    small = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    return small.resize(frame, Image.Resampling.BICUBIC)


def _place(rng, scene: Image.Image, doc: Image.Image) -> tuple[float, float, float, float]:
    """Lays `doc` on `scene`, rotated and in perspective, with a soft shadow; returns its bbox."""
    fw, fh = scene.size
    dw, dh = doc.size
    cx = fw / 2 + rng.uniform(-0.05, 0.05) * fw
    cy = fh / 2 + rng.uniform(-0.05, 0.05) * fh
    ang = math.radians(rng.uniform(-5, 5))
    corners = np.array([(-dw / 2, -dh / 2), (dw / 2, -dh / 2), (dw / 2, dh / 2), (-dw / 2, dh / 2)])
    rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
    dst = corners @ rot.T + (cx, cy)
    dst += rng.uniform(-0.03, 0.03, (4, 2)) * (dw, dh)
    src = np.array([(0, 0), (dw, 0), (dw, dh), (0, dh)], float)
    warped = doc.transform((fw, fh), Image.Transform.PERSPECTIVE, _perspective_coeffs(dst, src),
                           Image.Resampling.BICUBIC)
    alpha = warped.getchannel("A")
    # shadow: the document's outline, blurred and shifted, darkening the table
    sw, sh = _low_res((fw, fh))
    shadow = alpha.resize((sw, sh), Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(2.5))
    shadow = ImageChops.offset(shadow, int(rng.integers(-2, 3)), int(rng.integers(0, 3)))
    k = rng.uniform(0.15, 0.45)
    shade = shadow.point([255 - int(k * v) for v in range(256)]).resize((fw, fh), Image.Resampling.BILINEAR)
    scene.paste(ImageChops.multiply(scene, Image.merge("RGB", (shade,) * 3)))
    scene.paste(warped.convert("RGB"), (0, 0), alpha)
    return float(dst[:, 0].min()), float(dst[:, 1].min()), float(dst[:, 0].max()), float(dst[:, 1].max())


def _lighting(rng, frame: tuple[int, int], darkest: float, vignette: float, shadow: float) -> Image.Image:
    """Multiplicative illumination (linear-light `darkest`..1, a vignette, and the soft shadow of
    the phone or the photographer `shadow` deep over one side), as sRGB factors."""
    sw, sh = _low_res(frame, 64)
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    xx, yy = xx / (sw - 1) - 0.5, yy / (sh - 1) - 0.5
    ang = rng.uniform(0, 2 * math.pi)
    t = (xx * math.cos(ang) + yy * math.sin(ang)) / 1.42 + 0.5  # 0..1 across the frame
    lin = (darkest + (1 - darkest) * t) * (1 - vignette * (xx ** 2 + yy ** 2) * 2)
    if shadow:
        side = rng.uniform(0, 2 * math.pi)
        cx, cy = 0.5 * math.cos(side), 0.5 * math.sin(side)
        rx, ry = rng.uniform(0.3, 0.6), rng.uniform(0.3, 0.6)
        r = np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
        lin = lin * (1 - shadow * np.clip((1.1 - r) / 0.25, 0, 1))
    srgb = np.clip(lin, 0, 1) ** (1 / 2.2)
    return Image.fromarray((srgb * 255).astype(np.uint8), "L").resize(frame, Image.Resampling.BILINEAR)


def _fingers(rng, scene: Image.Image, bbox) -> None:
    """A thumb or two holding the document flat, coming in from the nearest frame edge."""
    fw, fh = scene.size
    d = ImageDraw.Draw(scene)
    x0, y0, x1, y1 = bbox
    skin = tuple(int(v) for v in (rng.integers(120, 235), rng.integers(85, 185), rng.integers(60, 160)))
    shade = tuple(int(c * 0.8) for c in skin)
    wdt = min(fw, fh) * rng.uniform(0.1, 0.15)
    for _ in range(int(rng.integers(1, 3))):
        side = int(rng.integers(0, 3))
        if side == 2:  # from the bottom edge
            x = rng.uniform(x0 + wdt, max(x0 + wdt + 1, x1 - 2 * wdt))
            box = (x, y1 - wdt * rng.uniform(0.8, 1.6), x + wdt, fh + wdt)
        else:  # from the left or the right edge
            y = rng.uniform(y0 + wdt, max(y0 + wdt + 1, y1 - 2 * wdt))
            reach = wdt * rng.uniform(0.8, 1.6)
            box = (-wdt, y, x0 + reach, y + wdt) if side == 0 else (x1 - reach, y, fw + wdt, y + wdt)
        d.rounded_rectangle(box, radius=wdt / 2, fill=shade)
        inset = wdt * 0.12
        d.rounded_rectangle((box[0] + inset, box[1] + inset, box[2] - inset, box[3] - inset),
                            radius=wdt / 2 - inset, fill=skin)


def _hot_spot(rng, frame, bbox, core_fraction: float, peak: float) -> Image.Image:
    """A specular reflection over the document: a Gaussian blob of light whose centre exceeds
    white wherever `peak` * falloff >= 1; that saturated core covers `core_fraction` of the bbox."""
    sw, sh = _low_res(frame, 256)
    sx, sy = sw / frame[0], sh / frame[1]
    x0, y0, x1, y1 = bbox
    bw, bh = (x1 - x0) * sx, (y1 - y0) * sy
    cx = (x0 + (x1 - x0) * rng.uniform(0.25, 0.75)) * sx
    cy = (y0 + (y1 - y0) * rng.uniform(0.25, 0.75)) * sy
    e = rng.uniform(0.5, 2.0)
    core_r2 = 2 * math.log(max(peak, 1.05))  # r^2 at which the blob reaches white
    rxy = core_fraction * bw * bh / (math.pi * core_r2)  # rx * ry
    rx, ry = math.sqrt(rxy * e), math.sqrt(rxy / e)
    ang = rng.uniform(0, math.pi)
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    dx, dy = xx - cx, yy - cy
    u = (dx * math.cos(ang) + dy * math.sin(ang)) / rx
    v = (-dx * math.sin(ang) + dy * math.cos(ang)) / ry
    val = peak * np.exp(-(u * u + v * v) / 2)
    small = Image.fromarray((np.clip(val, 0, 1) * 255).astype(np.uint8), "L")
    return small.resize(frame, Image.Resampling.BILINEAR)


def _motion_blur(img: Image.Image, length: float, angle: float) -> Image.Image:
    """Camera shake: a straight box kernel `length` px long, as 32 taps by repeated doubling."""
    step = length / 32
    dx, dy = step * math.cos(angle), step * math.sin(angle)
    fill = tuple(int(v) for v in np.asarray(img.resize((16, 16), Image.Resampling.BOX)).reshape(-1, 3).mean(0))
    out = img.transform(img.size, Image.Transform.AFFINE, (1, 0, -15.5 * dx, 0, 1, -15.5 * dy),
                        Image.Resampling.BILINEAR, fillcolor=fill)
    for i in range(5):
        s = 2 ** i
        shifted = out.transform(out.size, Image.Transform.AFFINE, (1, 0, dx * s, 0, 1, dy * s),
                                Image.Resampling.BILINEAR, fillcolor=fill)
        out = Image.blend(out, shifted, 0.5)
    return out


def _frame_size(rng, label: str) -> tuple[int, int]:
    aspect = float(rng.choice([4 / 3, 4 / 3, 4 / 3, 16 / 9, 3 / 2]))
    if label == "too_small":
        short = int(rng.integers(240, 541))
        long = round(short * aspect)
    else:
        long = int(rng.integers(2600, 4033)) if rng.random() < 0.08 else int(rng.integers(1000, 2049))
        short = round(long / aspect)
        if short < 720:
            short, long = 720, round(720 * aspect)
    return (short, long) if rng.random() < 0.35 else (long, short)


def generate(seed: int, label: str, *, size: tuple[int, int] | None = None) -> Image.Image:
    """A synthetic phone photo of a document with the given label (RGB, decoded from JPEG)."""
    if label not in LABELS:
        raise ValueError(f"unknown label {label!r}")
    rng = _rng(seed, label)
    frame = size or _frame_size(rng, label)
    fw, fh = frame
    scale = max(frame) / 1000  # blur sizes are given per 1000 px of the long side

    scene = _table(rng, frame)
    bbox = _place(rng, scene, _document(rng, frame))
    if rng.random() < 0.2:
        _fingers(rng, scene, bbox)

    # uneven light (multiplicative), exposure, tint, veiling flare
    bad_light = label in ("too_dark", "too_bright")
    scene = ImageChops.multiply(scene, Image.merge("RGB", (_lighting(
        rng, frame, darkest=rng.uniform(0.45 if bad_light else 0.55, 1.0), vignette=rng.uniform(0, 0.3),
        shadow=rng.uniform(0.3, 0.6) if rng.random() < 0.3 else 0.0),) * 3))
    if label == "too_dark":
        ev, flare, noise = rng.uniform(-5, -3), 0.0, rng.uniform(4, 10)
    elif label == "too_bright":
        ev, flare, noise = rng.uniform(2.0, 3.5), rng.uniform(110, 180), rng.uniform(1.5, 4)
    else:
        ev = rng.uniform(-1.5, 0.0 if label == "glare" else 0.6)
        flare, noise = rng.uniform(0, 25), rng.uniform(1.5, 5)
        if label != "glare" and rng.random() < 0.15:  # auto-exposure on a dark table: paper clipped
            ev = rng.uniform(0.6, 1.2)
    warm = rng.uniform(0, 0.15) if rng.random() < 0.5 else 0.0
    tint = (1.0, 1 - warm / 2, 1 - warm)

    # optics: softness for everyone, defocus or shake for "blurry"
    if label == "blurry":
        if rng.random() < 0.6:
            scene = scene.filter(ImageFilter.GaussianBlur(rng.uniform(2.0, 5.0) * scale))
        else:
            scene = _motion_blur(scene, rng.uniform(8, 22) * scale, rng.uniform(0, math.pi))
            scene = scene.filter(ImageFilter.GaussianBlur(0.6 * scale))
    else:
        soft = rng.uniform(0, 0.8) * scale
        if soft >= 0.2:
            scene = scene.filter(ImageFilter.GaussianBlur(soft))

    gain = 2 ** (ev / 2.2)
    lut = []
    for band in range(3):
        g = gain * tint[band]
        lut += [round(255 - (255 - min(255.0, v * g)) * (255 - flare) / 255) for v in range(256)]
    scene = scene.point(lut)

    # specular light: the big reflection of "glare", or harmless glints and hot spots
    if label == "glare":
        spot = _hot_spot(rng, frame, bbox, rng.uniform(0.05, 0.18), rng.uniform(2.5, 6))
        scene = ImageChops.screen(scene, Image.merge("RGB", (spot,) * 3))
    elif label != "too_dark" and rng.random() < 0.35:
        if rng.random() < 0.5:
            spot = _hot_spot(rng, frame, bbox, rng.uniform(0.001, 0.006), rng.uniform(1.5, 3))
        else:
            spot = _hot_spot(rng, frame, bbox, 0.15, rng.uniform(0.1, 0.35))  # faint, never white
        scene = ImageChops.screen(scene, Image.merge("RGB", (spot,) * 3))

    # sensor noise (clipped highlights stay clipped), then the phone's sharpening and JPEG
    arr = np.asarray(scene)
    clipped = arr == 255
    noisy = arr.astype(np.float32)
    noisy += (rng.standard_normal((fh, fw), dtype=np.float32) * noise)[..., None]
    chroma = rng.standard_normal(((fh + 1) // 2, (fw + 1) // 2, 3), dtype=np.float32) * (noise / 2)
    noisy += chroma.repeat(2, 0).repeat(2, 1)[:fh, :fw]  # colour noise is coarser than luma noise
    out = np.clip(noisy, 0, 255).astype(np.uint8)
    out[clipped] = 255
    scene = Image.fromarray(out, "RGB")
    if rng.random() < 0.5:
        scene = scene.filter(ImageFilter.UnsharpMask(rng.uniform(0.8, 2.0), int(rng.integers(40, 120)), 2))
    buf = io.BytesIO()
    scene.save(buf, "JPEG", quality=int(rng.integers(60, 93)))
    buf.seek(0)
    photo = Image.open(buf)
    photo.load()
    return photo.convert("RGB")


def labelled_set(split: str, n_per_label: int, labels: tuple[str, ...] = LABELS
                 ) -> Iterator[tuple[str, int, Image.Image]]:
    """Yields (label, seed, photo), n_per_label of each label, from the split's own seed range."""
    base = SPLITS[split]
    for seed in range(base, base + n_per_label):
        for label in labels:
            yield label, seed, generate(seed, label)

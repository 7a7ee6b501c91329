"""The PRISMA 2020 flow diagram (SVG drawn here, PNG drawn with Pillow) and its counts (JSON).

The counts dict (`prisma`), every count an int >= 0:

    identified                 records identified, all sources together
    identified_by_source       {source name: records}   (optional; file names or API sources; sums to identified)
    duplicates_removed         records merged into another record by deduplication
    removed_before_screening   {reason: records}        (optional; e.g. {"not in English": 3, "no abstract": 2})
    screened                   studies screened: coded against the codebook (titles and abstracts)
    excluded                   {reason: studies}        (optional; e.g. {"no code matched": 12})
    included                   studies included in the synthesis: studies with at least one code
    reports_included           records behind the included studies (optional; a study merges >= 1 record)

The flow must add up: identified - duplicates_removed - sum(removed_before_screening) = screened and
screened - sum(excluded) = included; a mismatch is logged as a warning (the diagram shows the counts as given).
`prisma_counts()` builds the dict from the studies and assignments tables, so it adds up by construction.

Mapping from the pipeline's vocabulary: coded -> included; not_coded -> excluded["no code matched"];
excluded_non_english -> removed_before_screening["not in English"].

The diagram adapts the PRISMA 2020 template for new reviews (databases, registers and other sources): there is no
full-text retrieval stage, so "records screened" leads to "studies included" directly.
"""

from __future__ import annotations

import io
import logging
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.errors import ReviewError
from pipeline.frames import member_of
from pipeline.io import atomic_write, write_json

log = logging.getLogger(__name__)

REQUIRED_KEYS: tuple[str, ...] = ("identified", "duplicates_removed", "screened", "included")
BREAKDOWN_KEYS: tuple[str, ...] = ("identified_by_source", "removed_before_screening", "excluded")
NO_CODE = "no code matched"
MAX_SOURCES_SHOWN = 10  # further sources are summed into one 'other sources' line

# Layout in SVG user units (px). The PNG is drawn from the same layout at PNG_SCALE.
WIDTH = 860
FONT_SIZE = 13
LINE_HEIGHT = 18
PAD = 10
ROW_GAP = 36
PHASE_X, PHASE_W = 12, 28
LEFT_X, LEFT_W = 56, 390
RIGHT_X, RIGHT_W = 500, 348
CHAR_WIDTH = 0.58 * FONT_SIZE  # a conservative average glyph width, to wrap text before it overflows a box
PNG_SCALE = 2
FONT_FAMILY = "DejaVu Sans, Verdana, Arial, Helvetica, sans-serif"
PHASE_FILL = "#9dc3e6"
BANNER_FILL = "#f6c26b"
STROKE = "#333333"


# ---------------------------------------------------------------- counts


def prisma_counts(
    studies: pd.DataFrame,
    assignments: pd.DataFrame,
    *,
    identified_by_source: Mapping[str, int],
    removed_before_screening: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Counts from the pipeline's tables.

    `studies` holds every study after deduplication (its `records` column: records merged into it), including
    those removed before screening; `removed_before_screening` counts those (reason -> studies).
    """
    identified = int(sum(int(n) for n in identified_by_source.values()))
    records = pd.to_numeric(studies.get("records", pd.Series(1, index=studies.index)), errors="coerce").fillna(1)
    removed = {str(k): int(v) for k, v in (removed_before_screening or {}).items() if int(v)}
    coded_ids = set(assignments["study_id"].astype(str)) if len(assignments) else set()
    is_coded = pd.Series(member_of(studies["study_id"].astype(str), coded_ids), index=studies.index)
    screened = len(studies) - sum(removed.values())
    included = int(is_coded.sum())
    counts: dict[str, Any] = {
        "identified": identified,
        "identified_by_source": {str(k): int(v) for k, v in sorted(identified_by_source.items())},
        "duplicates_removed": identified - len(studies),
        "removed_before_screening": removed,
        "screened": screened,
        "excluded": {NO_CODE: screened - included} if screened - included else {},
        "included": included,
        "reports_included": int(records[is_coded].sum()),
    }
    return check_prisma(counts)


def check_prisma(prisma: Mapping[str, Any]) -> dict[str, Any]:
    """A normalised copy of the counts; ReviewError for a missing key or a count that is not an int >= 0."""
    missing = [key for key in REQUIRED_KEYS if key not in prisma]
    if missing:
        raise ReviewError(
            f"the PRISMA counts have no {', '.join(repr(k) for k in missing)}; "
            f"give {', '.join(REQUIRED_KEYS)} (see pipeline.export.prisma)."
        )
    out: dict[str, Any] = {key: _count(key, prisma[key]) for key in REQUIRED_KEYS}
    for key in BREAKDOWN_KEYS:
        value = prisma.get(key) or {}
        if not isinstance(value, Mapping):
            raise ReviewError(f"the PRISMA count {key!r} must be a mapping of reason or source to a count.")
        out[key] = {str(name): _count(f"{key} -> {name}", n) for name, n in value.items()}
    if prisma.get("reports_included") is not None:
        out["reports_included"] = _count("reports_included", prisma["reports_included"])
    _warn_if_inconsistent(out)
    return out


def _count(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or value < 0:
        raise ReviewError(f"the PRISMA count {key!r} is {value!r}; give a whole number of 0 or more.")
    return int(value)


def _warn_if_inconsistent(counts: dict[str, Any]) -> None:
    expected = counts["identified"] - counts["duplicates_removed"] - sum(counts["removed_before_screening"].values())
    if expected != counts["screened"]:
        log.warning("PRISMA counts do not add up: identified - removed = %d, screened = %d",
                    expected, counts["screened"])
    if counts["screened"] - sum(counts["excluded"].values()) != counts["included"]:
        log.warning("PRISMA counts do not add up: screened - excluded != included (%d)", counts["included"])
    by_source = counts["identified_by_source"]
    if by_source and sum(by_source.values()) != counts["identified"]:
        log.warning("PRISMA counts: sources sum to %d, identified is %d", sum(by_source.values()), counts["identified"])


# ---------------------------------------------------------------- layout (shared by SVG and PNG)


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float
    lines: tuple[str, ...]
    kind: str = "box"  # box | phase (vertical label) | banner


@dataclass(frozen=True)
class Arrow:
    x1: float
    y1: float
    x2: float
    y2: float


def _n(value: int) -> str:
    # No-break spaces keep "(n = 12)" on one line when a box's text wraps.
    return f"(n\u00a0=\u00a0{value:,})"


def _wrap(text: str, width: float, indent: str = "") -> list[str]:
    chars = max(10, int((width - 2 * PAD) / CHAR_WIDTH))
    return textwrap.wrap(text, chars, subsequent_indent=indent + "  ", initial_indent=indent) or [""]


def _source_lines(counts: dict[str, Any]) -> list[str]:
    sources = sorted(counts["identified_by_source"].items(), key=lambda item: (-item[1], item[0]))
    shown, rest = sources[:MAX_SOURCES_SHOWN], sources[MAX_SOURCES_SHOWN:]
    lines = [f"{name} {_n(n)}" for name, n in shown]
    if rest:
        lines.append(f"{len(rest)} other sources {_n(sum(n for _, n in rest))}")
    return lines


def _box_texts(counts: dict[str, Any]) -> list[tuple[str, list[str], list[str]]]:
    """(phase, left box paragraphs, right box paragraphs) for each row of the diagram."""
    sources = _source_lines(counts)
    identified = ["Records identified from:"] + [f"  {line}" for line in sources]
    identified.append(f"{'  Total ' if sources else ''}{_n(counts['identified'])}")
    removed = ["Records removed before screening:", f"  Duplicate records removed {_n(counts['duplicates_removed'])}"]
    removed += [f"  {why} {_n(n)}" for why, n in sorted(counts["removed_before_screening"].items())]
    excluded_total = sum(counts["excluded"].values())
    excluded = [f"Records excluded {_n(excluded_total)}"]
    excluded += [f"  {why} {_n(n)}" for why, n in sorted(counts["excluded"].items())]
    included = [f"Studies included in the synthesis {_n(counts['included'])}"]
    if "reports_included" in counts:
        included.append(f"Reports (records) of included studies {_n(counts['reports_included'])}")
    screened = [f"Records screened {_n(counts['screened'])}", "(titles and abstracts coded against the codebook)"]
    return [
        ("Identification", identified, removed),
        ("Screening", screened, excluded),
        ("Included", included, []),
    ]


def _wrapped(paragraphs: list[str], width: float) -> tuple[str, ...]:
    lines: list[str] = []
    for paragraph in paragraphs:
        stripped = paragraph.lstrip(" ")
        lines.extend(_wrap(stripped, width, indent=" " * (len(paragraph) - len(stripped))))
    return tuple(lines)


def layout(counts: Mapping[str, Any]) -> tuple[list[Box], list[Arrow], float]:
    """Boxes, arrows and the total height of the diagram."""
    checked = check_prisma(counts)
    boxes = [Box(LEFT_X, 12, RIGHT_X + RIGHT_W - LEFT_X, LINE_HEIGHT + 2 * PAD,
                 ("Identification of studies via databases, registers and other sources",), "banner")]
    arrows: list[Arrow] = []
    y = boxes[0].y + boxes[0].h + ROW_GAP / 2
    previous: Box | None = None
    for phase, left_text, right_text in _box_texts(checked):
        left_lines, right_lines = _wrapped(left_text, LEFT_W), _wrapped(right_text, RIGHT_W)
        height = max(len(left_lines), len(right_lines)) * LINE_HEIGHT + 2 * PAD
        left = Box(LEFT_X, y, LEFT_W, height, left_lines)
        boxes.extend([Box(PHASE_X, y, PHASE_W, height, (phase,), "phase"), left])
        if right_lines:
            boxes.append(Box(RIGHT_X, y, RIGHT_W, height, right_lines))
            arrows.append(Arrow(LEFT_X + LEFT_W, y + height / 2, RIGHT_X, y + height / 2))
        if previous is not None:
            arrows.append(Arrow(LEFT_X + LEFT_W / 2, previous.y + previous.h, LEFT_X + LEFT_W / 2, y))
        previous = left
        y += height + ROW_GAP
    return boxes, arrows, y - ROW_GAP + 12


# ---------------------------------------------------------------- SVG


def prisma_svg(prisma: Mapping[str, Any]) -> str:
    """The flow diagram as a standalone SVG document; every text escaped."""
    boxes, arrows, height = layout(prisma)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:g}" '
        f'viewBox="0 0 {WIDTH} {height:g}" font-family="{FONT_FAMILY}" font-size="{FONT_SIZE}">',
        "<title>PRISMA 2020 flow diagram</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" '
        f'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{STROKE}"/></marker></defs>',
        f'<rect x="0" y="0" width="{WIDTH}" height="{height:g}" fill="#ffffff"/>',
    ]
    parts.extend(_svg_box(box) for box in boxes)
    parts.extend(
        f'<line x1="{a.x1:g}" y1="{a.y1:g}" x2="{a.x2:g}" y2="{a.y2:g}" stroke="{STROKE}" stroke-width="1.5" '
        'marker-end="url(#arrow)"/>'
        for a in arrows
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _svg_box(box: Box) -> str:
    fill = {"phase": PHASE_FILL, "banner": BANNER_FILL}.get(box.kind, "#ffffff")
    rect = (f'<rect x="{box.x:g}" y="{box.y:g}" width="{box.w:g}" height="{box.h:g}" rx="4" fill="{fill}" '
            f'stroke="{STROKE}" stroke-width="1"/>')
    if box.kind == "phase":
        cx, cy = box.x + box.w / 2, box.y + box.h / 2
        text = (f'<text x="{cx:g}" y="{cy:g}" transform="rotate(-90 {cx:g} {cy:g})" text-anchor="middle" '
                f'dominant-baseline="central" font-weight="bold">{escape(box.lines[0])}</text>')
        return rect + text
    anchor = ' text-anchor="middle"' if box.kind == "banner" else ""
    x = box.x + box.w / 2 if box.kind == "banner" else box.x + PAD
    weight = ' font-weight="bold"' if box.kind == "banner" else ""
    tspans = "".join(
        f'<tspan x="{x:g}" y="{box.y + PAD + (i + 1) * LINE_HEIGHT - 5:g}" xml:space="preserve">{escape(line)}</tspan>'
        for i, line in enumerate(box.lines)
    )
    return f"{rect}<text{anchor}{weight}>{tspans}</text>"


# ---------------------------------------------------------------- PNG (Pillow)


def prisma_png(prisma: Mapping[str, Any]) -> bytes:
    """The same layout drawn with Pillow (its bundled font, so the bytes do not depend on system fonts)."""
    from PIL import Image, ImageDraw

    boxes, arrows, height = layout(prisma)
    s = PNG_SCALE
    image = Image.new("RGB", (int(WIDTH * s), int(height * s)), "white")
    draw = ImageDraw.Draw(image)
    font = _font(FONT_SIZE * s)
    for box in boxes:
        _png_box(image, draw, box, font)
    for arrow in arrows:
        _png_arrow(draw, arrow)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()


def _font(size: float) -> Any:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _png_box(image: Any, draw: Any, box: Box, font: Any) -> None:
    from PIL import Image, ImageDraw

    s = PNG_SCALE
    fill = {"phase": PHASE_FILL, "banner": BANNER_FILL}.get(box.kind, "#ffffff")
    rect = (box.x * s, box.y * s, (box.x + box.w) * s, (box.y + box.h) * s)
    draw.rounded_rectangle(rect, radius=4 * s, fill=fill, outline=STROKE, width=s)
    if box.kind == "phase":
        label = Image.new("RGBA", (int(box.h * s), int(box.w * s)), (0, 0, 0, 0))
        ImageDraw.Draw(label).text((box.h * s / 2, box.w * s / 2), box.lines[0], font=font, fill=STROKE, anchor="mm")
        rotated = label.rotate(90, expand=True)
        image.paste(rotated, (int(box.x * s), int(box.y * s)), rotated)
        return
    for i, line in enumerate(box.lines):
        y = (box.y + PAD + (i + 1) * LINE_HEIGHT - 5) * s
        if box.kind == "banner":
            draw.text(((box.x + box.w / 2) * s, y), line, font=font, fill=STROKE, anchor="ms")
        else:
            draw.text(((box.x + PAD) * s, y), line, font=font, fill=STROKE, anchor="ls")


def _png_arrow(draw: Any, arrow: Arrow) -> None:
    s = PNG_SCALE
    x1, y1, x2, y2 = arrow.x1 * s, arrow.y1 * s, arrow.x2 * s, arrow.y2 * s
    head = 8 * s
    if y1 == y2:  # horizontal, pointing right
        draw.line((x1, y1, x2 - head, y2), fill=STROKE, width=int(1.5 * s))
        draw.polygon([(x2, y2), (x2 - head, y2 - head / 2), (x2 - head, y2 + head / 2)], fill=STROKE)
    else:  # vertical, pointing down
        draw.line((x1, y1, x2, y2 - head), fill=STROKE, width=int(1.5 * s))
        draw.polygon([(x2, y2), (x2 - head / 2, y2 - head), (x2 + head / 2, y2 - head)], fill=STROKE)


# ---------------------------------------------------------------- files


def write_prisma(prisma: Mapping[str, Any], outputs_dir: str | Path) -> list[Path]:
    """prisma_counts.json, prisma_flow.svg and prisma_flow.png (the PNG needs Pillow) in outputs_dir."""
    counts = check_prisma(prisma)
    outputs = Path(outputs_dir)
    json_path, svg_path, png_path = (outputs / "prisma_counts.json", outputs / "prisma_flow.svg",
                                     outputs / "prisma_flow.png")
    write_json(counts, json_path)
    with atomic_write(svg_path, newline="\n") as handle:
        handle.write(prisma_svg(counts))
    try:
        png = prisma_png(counts)
    except ImportError:
        log.warning("Pillow is not installed: wrote %s but not %s (pip install pillow)", svg_path.name, png_path.name)
        return [json_path, svg_path]
    with atomic_write(png_path, mode="wb") as handle:
        handle.write(png)
    return [json_path, svg_path, png_path]

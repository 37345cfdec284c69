"""The grammar of the embedded synthetic dataset: two shapes with attributes and a spatial relation.

A caption reads ``"a {size} {colour} {shape} {relation} a {size} {colour} {shape}"``, e.g.
``"a small red circle to the left of a large blue square"``. Generators of hard negatives for these
captions (swap attributes, swap objects, replace the relation)
parse them with :func:`parse_caption`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SIZES: dict[str, float] = {"small": 0.22, "large": 0.38}  # shape extent as a fraction of the image
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 40),
    "blue": (30, 60, 220),
    "yellow": (235, 215, 20),
    "purple": (140, 40, 170),
    "orange": (245, 130, 20),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
# relation phrase -> its converse (the relation seen from the other object)
RELATIONS: dict[str, str] = {
    "to the left of": "to the right of",
    "to the right of": "to the left of",
    "above": "below",
    "below": "above",
}


@dataclass(frozen=True)
class ShapeSpec:
    size: str
    colour: str
    shape: str

    def phrase(self) -> str:
        return f"{self.size} {self.colour} {self.shape}"


@dataclass(frozen=True)
class Scene:
    subject: ShapeSpec
    relation: str
    obj: ShapeSpec

    def caption(self) -> str:
        return f"a {self.subject.phrase()} {self.relation} a {self.obj.phrase()}"


_ALT = "|".join
_SHAPE_RE = (
    rf"(?P<{{p}}size>{_ALT(SIZES)}) (?P<{{p}}colour>{_ALT(COLOURS)}) (?P<{{p}}shape>{_ALT(SHAPES)})"
)
_CAPTION_RE = re.compile(
    rf"^a {_SHAPE_RE.format(p='s_')} (?P<relation>{_ALT(map(re.escape, RELATIONS))}) "
    rf"a {_SHAPE_RE.format(p='o_')}$"
)


def parse_caption(caption: str) -> Scene | None:
    """The scene a synthetic caption describes, or ``None`` if it does not follow the grammar."""
    match = _CAPTION_RE.match(caption.strip().lower())
    if match is None:
        return None
    g = match.groupdict()
    return Scene(
        ShapeSpec(g["s_size"], g["s_colour"], g["s_shape"]),
        g["relation"],
        ShapeSpec(g["o_size"], g["o_colour"], g["o_shape"]),
    )

"""Rule-based negatives for the synthetic shapes grammar (``clipflow.data.vocabulary``).

A caption reads "a {size} {colour} {shape} {relation} a {size} {colour} {shape}". Each rule edits
the parsed scene once, the way SugarCrepe's and CE-CLIP's negatives do (§4), and returns ``None``
for a caption outside the grammar. An edit is valid only if it describes a different image:

- ``swap_attribute`` (attribute): swap the two colours, or the two sizes; only where they differ;
- ``replace_attribute`` (attribute): one object's colour to another colour, or its size to the
  other size;
- ``swap_object`` (object): swap the two shape nouns (attributes stay in place); only where the
  shapes differ;
- ``replace_object`` (object): one object's shape to another shape (CE-CLIP's object negative);
- ``replace_relation`` (relation): the converse relation first (the hardest: same objects, same
  axis), then the other relations. The converse is skipped when both objects are identical, as
  "X left of X" and "X right of X" describe the same image.

Negatives are rebuilt from the scene, so they come out in the grammar's lower-case form.
"""

from __future__ import annotations

import random
from dataclasses import replace

from clipflow.data.vocabulary import COLOURS, RELATIONS, SHAPES, SIZES, Scene, parse_caption
from clipflow.negatives.generate import register_generator


def _distinct(scene: Scene, edits: list[Scene]) -> list[str]:
    """Captions of ``edits`` that differ from ``scene``, first occurrence kept."""
    original = scene.caption()
    return list(dict.fromkeys(e.caption() for e in edits if e.caption() != original))


@register_generator("swap_attribute", kind="attribute")
def swap_attribute(caption: str, rng: random.Random) -> list[str] | None:
    scene = parse_caption(caption)
    if scene is None:
        return None
    s, o = scene.subject, scene.obj
    edits = [
        replace(scene, subject=replace(s, colour=o.colour), obj=replace(o, colour=s.colour)),
        replace(scene, subject=replace(s, size=o.size), obj=replace(o, size=s.size)),
    ]
    rng.shuffle(edits)
    return _distinct(scene, edits)


@register_generator("replace_attribute", kind="attribute")
def replace_attribute(caption: str, rng: random.Random) -> list[str] | None:
    scene = parse_caption(caption)
    if scene is None:
        return None
    edits = []
    for role in ("subject", "obj"):
        spec = getattr(scene, role)
        edits += [replace(scene, **{role: replace(spec, colour=c)}) for c in COLOURS]
        edits += [replace(scene, **{role: replace(spec, size=z)}) for z in SIZES]
    rng.shuffle(edits)
    return _distinct(scene, edits)


@register_generator("swap_object", kind="object")
def swap_object(caption: str, rng: random.Random) -> list[str] | None:
    scene = parse_caption(caption)
    if scene is None:
        return None
    s, o = scene.subject, scene.obj
    return _distinct(
        scene, [replace(scene, subject=replace(s, shape=o.shape), obj=replace(o, shape=s.shape))]
    )


@register_generator("replace_object", kind="object")
def replace_object(caption: str, rng: random.Random) -> list[str] | None:
    scene = parse_caption(caption)
    if scene is None:
        return None
    edits = [
        replace(scene, **{role: replace(getattr(scene, role), shape=shape)})
        for role in ("subject", "obj")
        for shape in SHAPES
    ]
    rng.shuffle(edits)
    return _distinct(scene, edits)


@register_generator("replace_relation", kind="relation")
def replace_relation(caption: str, rng: random.Random) -> list[str] | None:
    scene = parse_caption(caption)
    if scene is None:
        return None
    converse = RELATIONS[scene.relation]
    others = [r for r in RELATIONS if r not in (scene.relation, converse)]
    rng.shuffle(others)
    first = [converse] if scene.subject != scene.obj else []
    return _distinct(scene, [replace(scene, relation=r) for r in first + others])

"""Word lists behind the English negatives (docs/algorithms.md §4): what WordNet alone gets wrong.

WordNet decides most edits (co-hyponyms for objects, antonyms for attributes, verb categories);
these short lists cover what it cannot:

- :data:`ATTRIBUTE_CATEGORIES`: contrast groups of common caption adjectives. A replacement comes
  from the same category but another group, so "large" never becomes its synonym "big" nor the
  no-contrast "huge", and colours, which WordNet does not oppose, change to another colour;
- :data:`VERB_FORMS`: common visual verbs with their inflections and transitivity, the pool of
  replacement verbs (WordNet has no inflection, and a verb must fit the caption's form);
- :data:`VAGUE_NOUNS`, :data:`RELATIONAL_NOUNS`, :data:`NON_RELATIONS`: nouns that name no object
  ("a photo of", "in front of") and relations whose swap says the same thing ("next to").
"""

from __future__ import annotations

from types import MappingProxyType


def _word_set(spec: str) -> frozenset[str]:
    return frozenset(spec.split())


def _groups(spec: str) -> tuple[frozenset[str], ...]:
    return tuple(_word_set(group) for group in spec.split("|"))


# category -> contrast groups: words of one group are near-synonyms (never replace each other).
ATTRIBUTE_CATEGORIES: MappingProxyType[str, tuple[frozenset[str], ...]] = MappingProxyType(
    {
        name: _groups(spec)
        for name, spec in {
            "colour": "white | black | red | blue | green | yellow | orange | purple | pink"
            " | brown | gray grey | silver | gold golden",
            "size": "large big huge giant enormous | small little tiny",
            "height": "tall | short",
            "length": "long | short",
            "age": "old | young",
            "newness": "new | old",
            "temperature": "hot warm | cold cool",
            "material": "wooden | metal metallic | plastic | glass | stone | brick | leather"
            " | paper | concrete",
            "wetness": "wet | dry",
            "cleanness": "clean | dirty",
            "fullness": "full | empty",
            "openness": "open | closed",
            "brightness": "bright sunny | dark",
            "crowd": "crowded busy | empty deserted",
            "weight": "heavy | light",
            "width": "wide | narrow",
            "thickness": "thick | thin",
            "speed": "fast | slow",
            "mood": "happy | sad",
        }.items()
    }
)

# Forms of a replacement verb: "base 3sg ing past participle transitivity", transitivity t (takes
# a direct object), i (does not) or b (both). Only verbs a photo can show.
_VERBS = """
sit sits sitting sat sat i
stand stands standing stood stood i
lie lies lying lay lain i
walk walks walking walked walked i
run runs running ran run i
jump jumps jumping jumped jumped i
swim swims swimming swam swum i
fly flies flying flew flown b
sleep sleeps sleeping slept slept i
wait waits waiting waited waited i
smile smiles smiling smiled smiled i
laugh laughs laughing laughed laughed i
kneel kneels kneeling knelt knelt i
dance dances dancing danced danced i
climb climbs climbing climbed climbed b
skate skates skating skated skated i
surf surfs surfing surfed surfed b
ski skis skiing skied skied i
lean leans leaning leaned leaned i
rest rests resting rested rested i
graze grazes grazing grazed grazed i
float floats floating floated floated i
race races racing raced raced b
ride rides riding rode ridden t
eat eats eating ate eaten t
drink drinks drinking drank drunk t
hold holds holding held held t
carry carries carrying carried carried t
throw throws throwing threw thrown t
catch catches catching caught caught t
kick kicks kicking kicked kicked t
hit hits hitting hit hit t
push pushes pushing pushed pushed t
pull pulls pulling pulled pulled t
watch watches watching watched watched t
read reads reading read read t
cut cuts cutting cut cut t
cook cooks cooking cooked cooked t
wear wears wearing wore worn t
drive drives driving drove driven t
chase chases chasing chased chased t
feed feeds feeding fed fed t
hug hugs hugging hugged hugged t
wash washes washing washed washed t
paint paints painting painted painted t
open opens opening opened opened t
fill fills filling filled filled t
slice slices slicing sliced sliced t
sell sells selling sold sold t
buy buys buying bought bought t
lift lifts lifting lifted lifted t
touch touches touching touched touched t
grab grabs grabbing grabbed grabbed t
swing swings swinging swung swung t
bite bites biting bit bitten t
lick licks licking licked licked t
follow follows following followed followed t
clean cleans cleaning cleaned cleaned t
build builds building built built t
fix fixes fixing fixed fixed t
toss tosses tossing tossed tossed t
play plays playing played played b
"""

# base -> {Penn verb tag: form}, plus "transitivity": t, i or b.
VERB_FORMS: MappingProxyType[str, MappingProxyType[str, str]] = MappingProxyType(
    {
        base: MappingProxyType(
            {
                "VB": base,
                "VBP": base,
                "VBZ": third,
                "VBG": ing,
                "VBD": past,
                "VBN": participle,
                "transitivity": transitivity,
            }
        )
        for base, third, ing, past, participle, transitivity in (
            line.split() for line in _VERBS.strip().splitlines()
        )
    }
)

# Verbs never replaced: auxiliaries and light verbs whose swap changes no depicted action.
LIGHT_VERBS = _word_set("be have do get let make take give go come seem appear")

# Nouns that name no depicted object: replacing or swapping them makes no hard negative.
VAGUE_NOUNS = _word_set(
    """
    photo picture image view shot closeup close scene photograph snapshot
    front top side middle edge back bottom corner center centre end inside outside left right
    rear base part area way lot couple group bunch pair set variety kind sort type number
    piece slice half rest background foreground day night time
    """
)

# "in front of X", "on top of X": the relation continues through "of" to X.
RELATIONAL_NOUNS = _word_set(
    "front top side middle edge back bottom corner center centre end inside outside rear"
)

# Relations whose two sides can be swapped without changing what the caption says, or that are
# not relations between two objects ("a slice of pizza", "a man like a bear").
NON_RELATIONS = frozenset(
    {
        "next to",
        "close to",
        "near",
        "near to",
        "nearby",
        "beside",
        "besides",
        "by",
        "alongside",
        "with",
        "together with",
        "along with",
        "among",
        "amongst",
        "between",
        "across from",
        "opposite",
        "of",
        "as",
        "like",
        "than",
        "including",
        "and",
    }
)

# COCO's object classes (single words): familiar caption nouns that the familiarity signals of
# nlp.is_familiar (spaCy's training text, WordNet's counts) happen to miss ("zebra", "kite").
COCO_OBJECTS = _word_set(
    """
    person bicycle car motorcycle airplane bus train truck boat bench bird cat dog horse sheep
    cow elephant bear zebra giraffe backpack umbrella handbag tie suitcase frisbee skis ski
    snowboard kite skateboard surfboard bottle cup fork knife spoon bowl banana apple sandwich
    orange broccoli carrot pizza donut doughnut cake chair couch bed toilet television laptop
    mouse keyboard microwave oven toaster sink refrigerator book clock vase scissors toothbrush
    """
)

# Irregular plurals of replacement nouns; the rest follow the spelling rules in nlp.pluralize.
IRREGULAR_PLURALS = MappingProxyType(
    {
        "man": "men",
        "woman": "women",
        "child": "children",
        "person": "people",
        "foot": "feet",
        "tooth": "teeth",
        "mouse": "mice",
        "goose": "geese",
        "ox": "oxen",
        "sheep": "sheep",
        "deer": "deer",
        "fish": "fish",
        "moose": "moose",
        "bison": "bison",
        "knife": "knives",
        "wife": "wives",
        "life": "lives",
        "leaf": "leaves",
        "loaf": "loaves",
        "shelf": "shelves",
        "wolf": "wolves",
        "calf": "calves",
        "half": "halves",
        "scarf": "scarves",
        "thief": "thieves",
        "potato": "potatoes",
        "tomato": "tomatoes",
        "hero": "heroes",
        "cactus": "cacti",
    }
)

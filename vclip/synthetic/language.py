"""The vocabulary of the synthetic world: domains of many how-to tasks built from shared steps.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4.1 pre-trains on HowTo100M, instructional videos
whose narration (ASR) describes the steps being performed; 23,611 tasks over 1.22M videos, so two
random videos rarely show the same task, while the evaluation sets (YouCook2, CrossTask, COIN)
annotate the steps of a few tasks. Reference data: HowTo100M ``raw_caption.json`` (``how2processor.py``)
and the end-task annotation files (``dsprocessor.py``). Nothing here comes from those datasets.

The world is a hierarchy, built compositionally:

* a *domain* (kitchen, garage, home, garden) has *bases* ("make _ soup", "change the tire of a _")
  and *variants* (mushroom, chicken, ...; truck, van, ...); every (base, variant) pair is a *task*
  ("make mushroom soup"), so a domain holds tens to hundreds of tasks;
* a base lists its ordered *steps* as (verb, object) pairs, some naming the variant ("chop the
  mushrooms"); a *step* ("add the salt") is shared by every task whose base uses it, across
  variants and across bases, as "add salt" belongs to many recipes;
* sibling tasks (one base, or one variant) look alike (:mod:`vclip.synthetic.world` builds a task's
  scene from its base's and its variant's), which is what retrieval finds.

The sentence generators below produce four registers of text:

* ASR narration (lowercase, no punctuation, fillers), said *before*, *during* or *after* the action,
  sometimes naming the task ("... to make mushroom soup");
* off-topic chatter and task introductions (no step);
* YouCook2/COIN/CrossTask-style imperative step annotations (:func:`annotation` can name the task);
* MSR-VTT/DiDeMo-style third-person descriptions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _regular(base: str, ing: str | None = None, past: str | None = None, third: str | None = None):
    head, _, particle = base.partition(" ")
    tail = f" {particle}" if particle else ""
    ing = ing or (head[:-1] + "ing" if head.endswith("e") and not head.endswith("ee") else head + "ing")
    past = past or (head + "d" if head.endswith("e") else head[:-1] + "ied" if head.endswith("y") else head + "ed")
    third = third or (head + "es" if head.endswith(("sh", "ch", "x", "s")) else head + "s")
    return (base, ing + tail, past + tail, third + tail, past + tail)


# verb: (base, -ing, past tense, 3rd person, past participle); a trailing particle is part of the verb
VERBS: dict[str, tuple[str, str, str, str, str]] = {v: _regular(v, *forms) for v, *forms in [
    ("chop", "chopping", "chopped"), ("slice",), ("peel",), ("wash",), ("crack",), ("whisk",), ("heat",),
    ("pour",), ("add",), ("stir", "stirring", "stirred"), ("mix",), ("fry", "frying", "fried", "fries"),
    ("boil",), ("bake",), ("knead",), ("roll out",), ("spread", None, "spread"), ("season",),
    ("cut", "cutting", "cut"), ("grate",), ("drain",), ("sprinkle",), ("melt",),
    ("flip", "flipping", "flipped"), ("serve",), ("mash",), ("squeeze",), ("dip", "dipping", "dipped"),
    ("loosen",), ("tighten",), ("jack up",), ("lower",), ("remove",), ("sand",), ("paint",), ("measure",),
    ("drill",), ("attach",), ("clean",), ("apply", "applying", "applied", "applies"), ("fill",),
    ("plunge",), ("water",), ("dig", "digging", "dug"), ("plant",), ("rinse",),
    ("scrub", "scrubbing", "scrubbed"), ("dry", "drying", "dried", "dries"), ("open",), ("close",),
    ("mark",), ("hammer",), ("hang", None, "hung"), ("level",), ("cover",), ("blend",), ("trim", "trimming", "trimmed"),
]}

# A domain's bases: (title with "{}" for the variant's attributive form, ordered steps "verb|object",
# where the object "X" is the variant's noun). Variants: (attributive form, noun).
DOMAIN_BASES: dict[str, list[tuple[str, list[str]]]] = {
    "kitchen": [
        ("make {} soup", ["chop|X", "chop|onion", "heat|oil", "fry|onion", "add|X", "pour|water", "boil|water",
                          "add|salt"]),
        ("make {} salad", ["wash|X", "cut|X", "wash|lettuce", "slice|cucumber", "add|X", "pour|oil", "add|salt",
                           "mix|salad"]),
        ("make a {} omelette", ["chop|X", "crack|eggs", "whisk|eggs", "melt|butter", "pour|eggs", "add|X",
                                "flip|omelette", "serve|omelette"]),
        ("cook {} pasta", ["boil|water", "add|salt", "add|pasta", "cut|X", "fry|X", "drain|pasta", "add|sauce",
                           "grate|cheese"]),
        ("make {} pizza", ["knead|dough", "roll out|dough", "spread|sauce", "slice|X", "add|X", "sprinkle|cheese",
                           "bake|pizza"]),
        ("make {} stir fry", ["cut|X", "chop|garlic", "heat|oil", "fry|garlic", "add|X", "stir|X", "pour|sauce",
                              "serve|rice"]),
        ("make a {} sandwich", ["slice|bread", "spread|butter", "slice|X", "fry|X", "add|X", "add|lettuce",
                                "cut|sandwich"]),
        ("bake a {} pie", ["add|flour", "add|butter", "knead|dough", "roll out|dough", "chop|X", "add|X",
                           "cover|pie", "bake|pie"]),
        ("make {} curry", ["chop|onion", "chop|garlic", "heat|oil", "fry|onion", "cut|X", "add|X", "pour|milk",
                           "stir|curry", "serve|rice"]),
        ("make {} fried rice", ["boil|rice", "drain|rice", "crack|eggs", "heat|oil", "chop|X", "fry|X", "add|rice",
                                "stir|rice"]),
    ],
    "garage": [
        ("change the tire of a {}", ["loosen|lug nuts", "jack up|X", "remove|lug nuts", "remove|tire",
                                     "attach|spare tire", "tighten|lug nuts", "lower|X"]),
        ("change the oil of a {}", ["jack up|X", "remove|drain plug", "drain|oil", "attach|drain plug",
                                    "remove|filter", "attach|filter", "pour|oil", "lower|X"]),
        ("replace the battery of a {}", ["open|hood", "remove|cables", "remove|battery", "clean|terminals",
                                         "attach|battery", "attach|cables", "close|hood"]),
        ("wash a {}", ["fill|bucket", "rinse|X", "apply|soap", "scrub|wheels", "wash|X", "dry|X"]),
        ("replace the brakes of a {}", ["jack up|X", "remove|tire", "remove|caliper", "remove|brake pads",
                                        "attach|brake pads", "attach|caliper", "lower|X"]),
        ("replace the headlight of a {}", ["open|hood", "remove|screws", "remove|headlight", "attach|bulb",
                                           "attach|headlight", "tighten|screws", "close|hood"]),
    ],
    "home": [
        ("paint the {} wall", ["clean|wall", "sand|wall", "apply|tape", "stir|paint", "paint|wall", "remove|tape"]),
        ("build a shelf in the {}", ["measure|wall", "drill|holes", "attach|bracket", "tighten|screws",
                                     "attach|shelf", "level|shelf"]),
        ("hang a picture in the {}", ["measure|wall", "mark|wall", "hammer|nail", "hang|picture", "level|picture"]),
        ("unclog the {} sink", ["remove|drain", "pour|water", "plunge|sink", "remove|pipe", "clean|pipe",
                                "attach|pipe"]),
        ("clean the {} window", ["fill|bucket", "apply|soap", "scrub|window", "rinse|window", "dry|window"]),
    ],
    "garden": [
        ("plant {}", ["dig|hole", "add|compost", "plant|X", "fill|hole", "water|X"]),
        ("grow {} in a pot", ["fill|pot", "add|soil", "plant|seeds", "sprinkle|soil", "water|seeds"]),
        ("prune the {}", ["clean|shears", "trim|stems", "remove|leaves", "cut|X", "water|X"]),
    ],
}
DOMAIN_VARIANTS: dict[str, list[tuple[str, str]]] = {
    "kitchen": [("mushroom", "mushrooms"), ("chicken", "chicken"), ("tomato", "tomatoes"), ("potato", "potatoes"),
                ("carrot", "carrots"), ("spinach", "spinach"), ("pepper", "peppers"), ("zucchini", "zucchini"),
                ("broccoli", "broccoli"), ("beef", "beef"), ("shrimp", "shrimp"), ("tofu", "tofu"), ("corn", "corn"),
                ("pumpkin", "pumpkin"), ("ham", "ham"), ("salmon", "salmon"), ("bacon", "bacon"),
                ("cabbage", "cabbage"), ("leek", "leeks"), ("pea", "peas")],
    "garage": [(v, v) for v in ("car", "truck", "van", "jeep", "motorcycle", "scooter", "trailer", "tractor", "bus",
                                "minivan")],
    "home": [(v, v) for v in ("bedroom", "bathroom", "hallway", "office", "basement", "attic", "nursery", "kitchen",
                              "laundry room", "living room", "guest room", "dining room")],
    "garden": [(v, v) for v in ("roses", "tomatoes", "basil", "mint", "strawberries", "sunflowers", "tulips",
                                "lavender", "peppers", "lettuce", "blueberries", "parsley")],
}
DOMAINS = tuple(DOMAIN_BASES)
_MASS = {"garlic", "lettuce", "butter", "oil", "milk", "flour", "sugar", "salt", "cheese", "pasta", "water",
         "sauce", "bread", "rice", "spinach", "chicken", "beef", "shrimp", "tofu", "corn", "pumpkin", "ham", "salmon",
         "bacon", "cabbage", "broccoli", "zucchini", "soil", "compost", "soap", "paint", "tape", "basil", "mint",
         "lavender", "parsley", "curry", "salad"}


def _indefinite(noun: str) -> str:
    if noun in _MASS or noun.endswith("s"):
        return f"some {noun}"
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


@dataclass(frozen=True)
class Step:
    """One latent step: the unit that features, captions and annotations share."""

    index: int
    verb: str
    obj: str  # the object's noun as said ("mushrooms", "lug nuts")

    @property
    def forms(self) -> tuple[str, str, str, str, str]:
        return VERBS[self.verb]

    @property
    def noun(self) -> str:
        return self.obj

    @property
    def name(self) -> str:
        """The imperative with an article, e.g. "chop the onion"."""
        return f"{self.verb} the {self.noun}"

    @property
    def label(self) -> str:
        """A short label without article, as CrossTask and COIN write them, e.g. "chop onion"."""
        return f"{self.verb} {self.noun}"


@dataclass(frozen=True)
class Task:
    """One how-to task: a (base, variant) pair of a domain, with its ordered latent steps."""

    index: int
    title: str  # "make mushroom soup"
    domain: str  # "kitchen", "garage", "home", "garden"
    steps: tuple[int, ...]  # latent step indices, in order, all distinct
    base: int = 0  # index into DOMAIN_BASES[domain]
    variant: int = 0  # index into DOMAIN_VARIANTS[domain]


def _build() -> tuple[list[Step], list[Task]]:
    steps: list[Step] = []
    lookup: dict[tuple[str, str], int] = {}
    tasks: list[Task] = []
    for domain in DOMAINS:
        for variant_index, (attributive, noun) in enumerate(DOMAIN_VARIANTS[domain]):
            for base_index, (title, names) in enumerate(DOMAIN_BASES[domain]):
                indices = []
                for name in names:
                    verb, obj = name.split("|")
                    obj = noun if obj == "X" else obj
                    assert verb in VERBS, name
                    if (verb, obj) not in lookup:
                        lookup[verb, obj] = len(steps)
                        steps.append(Step(len(steps), verb, obj))
                    indices.append(lookup[verb, obj])
                assert len(set(indices)) == len(indices), (title, attributive)
                tasks.append(Task(len(tasks), title.format(attributive), domain, tuple(indices), base_index,
                                  variant_index))
    return steps, tasks


STEPS, TASKS = _build()
VERB_NAMES = sorted(VERBS)
OBJECT_NAMES = sorted({s.obj for s in STEPS})
OBJECTS: dict[str, tuple[str, str]] = {noun: (noun, _indefinite(noun)) for noun in OBJECT_NAMES}
TASKS_BY_TITLE: dict[str, Task] = {t.title: t for t in TASKS}
assert len(TASKS_BY_TITLE) == len(TASKS), "task titles must be unique"

_PLACES = {"kitchen": ["in the kitchen", "in a kitchen", "at the counter", "on the stove"],
           "garage": ["in the garage", "in a driveway", "on the street"],
           "home": ["in a room", "in the house", "in the bathroom"],
           "garden": ["in the garden", "in the backyard", "on a porch"]}
_TAILS = {"kitchen": ["", "", "", " in a bowl", " carefully", " well", " a little"],
          "garage": ["", "", " with a wrench", " by hand", " on the car"],
          "home": ["", "", " with a brush", " with a drill", " carefully"],
          "garden": ["", "", " with a shovel", " in the pot", " by hand"]}
_PEOPLE = ["a man", "a woman", "a person", "someone", "a chef", "a girl", "a guy", "a cook", "the man",
           "the woman"]


def _pick(rng: np.random.Generator, options: list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def narration(rng: np.random.Generator, step: Step, when: str, task: Task | None = None) -> str:
    """One ASR-style sentence about ``step``, said ``when`` = "before", "during" or "after" the action;
    with ``task``, the sentence also names it ("... to make mushroom soup")."""
    base, ing, past, _, participle = step.forms
    obj = f"the {step.noun}"
    if when == "before":
        templates = [f"now we're going to {base} {obj}", f"next we need to {base} {obj}",
                     f"so the next step is to {base} {obj}", f"okay let's {base} {obj}",
                     f"i'm going to {base} {obj} now", f"first you want to {base} {obj}",
                     f"alright so now {base} {obj}", f"what we do next is {base} {obj}"]
    elif when == "during":
        templates = [f"i'm {ing} {obj}", f"just {ing} {obj} like this", f"so we're {ing} {obj} here",
                     f"keep {ing} {obj} a little bit", f"you can see i'm {ing} {obj}",
                     f"{ing} {obj} nice and slowly"]
    elif when == "after":
        templates = [f"so i {past} {obj}", f"now {obj} is {participle}", f"once you've {participle} {obj}",
                     f"okay so we {past} {obj}", f"that's how you {base} {obj}"]
    else:
        raise ValueError(f"when: expected 'before', 'during' or 'after', got {when!r}")
    sentence = _pick(rng, templates)
    if task is not None:
        sentence += f" to {task.title}"
    if rng.random() < 0.25:
        sentence = _pick(rng, ["um ", "so ", "okay ", "and ", "uh "]) + sentence
    return sentence


_CHATTER = [
    "hi guys welcome back to my channel", "don't forget to like and subscribe", "thanks for watching",
    "let me know in the comments what you think", "i hope you enjoy this video", "my kids love this one",
    "it's been a really long week", "i got this at the store yesterday", "music", "[Music]",
    "this is one of my favorite things to do", "the weather is really nice today", "oh sorry about that",
    "hold on one second", "you guys have been asking for this", "check out my other videos",
    "i'll put a link in the description", "this is super easy", "my mom used to do it this way",
    "see you next time", "okay where was i", "that's pretty much it", "it's really important",
]


def chatter(rng: np.random.Generator) -> str:
    """Off-topic narration that describes no step."""
    return _pick(rng, _CHATTER)


def introduction(rng: np.random.Generator, task: Task) -> str:
    """A task introduction: mentions the task but no single step."""
    return _pick(rng, [f"today i'm going to show you how to {task.title}",
                       f"in this video we will {task.title}", f"here is how to {task.title}",
                       f"hey everyone today we {task.title}"])


def annotation(rng: np.random.Generator, step: Step, domain: str, task: Task | None = None) -> str:
    """A YouCook2-style imperative annotation sentence, e.g. "chop the onion in a bowl"; with ``task``
    it names the task too: "chop the onion in a bowl to make mushroom soup"."""
    base = step.forms[0]
    article = _pick(rng, ["the ", "the ", ""])
    sentence = f"{base} {article}{step.noun}{_pick(rng, _TAILS[domain])}"
    return sentence if task is None else f"{sentence} to {task.title}"


def description(rng: np.random.Generator, step: Step, domain: str) -> str:
    """An MSR-VTT/DiDeMo-style third-person description, e.g. "a man is chopping an onion in the kitchen"."""
    _, ing, _, third, _ = step.forms
    person = _pick(rng, _PEOPLE)
    indefinite = OBJECTS[step.obj][1]
    place = _pick(rng, _PLACES[domain])
    sentence = _pick(rng, [f"{person} is {ing} {indefinite} {place}", f"{person} {third} {indefinite}",
                           f"{person} {third} the {step.noun} {place}", f"{person} is {ing} the {step.noun}"])
    return sentence

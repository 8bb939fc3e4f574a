"""The vocabulary of the synthetic world: how-to tasks made of ordered steps, in real English.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4.1 pre-trains on HowTo100M, instructional videos
whose narration (ASR) describes the steps being performed; the evaluation sets (YouCook2, CrossTask,
COIN) annotate such steps. Reference data: HowTo100M ``raw_caption.json`` (``mmpt/processors/how2processor.py``) and the end-task
annotation files (``mmpt/processors/dsprocessor.py``). Nothing here comes from those datasets; the tasks are written by hand.

A *step* is a (verb, object) pair such as "chop the onion". Steps are shared across tasks ("crack the
eggs" is in the omelette, the pancakes and the french toast), so that videos of different tasks share
visual content and similar videos make hard negatives. Verbs and objects are shared too ("chop the
onion" / "chop the garlic" / "fry the onion"), so telling steps apart needs both words.

The sentence generators below produce four registers of text:

* ASR narration (lowercase, no punctuation, fillers), said *before*, *during* or *after* the action;
* off-topic chatter and task introductions (no step);
* YouCook2/COIN/CrossTask-style imperative step annotations;
* MSR-VTT/DiDeMo-style third-person descriptions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# verb: (base, -ing, past tense, 3rd person, past participle); a trailing particle is part of the verb
VERBS: dict[str, tuple[str, str, str, str, str]] = {
    "chop": ("chop", "chopping", "chopped", "chops", "chopped"),
    "slice": ("slice", "slicing", "sliced", "slices", "sliced"),
    "peel": ("peel", "peeling", "peeled", "peels", "peeled"),
    "wash": ("wash", "washing", "washed", "washes", "washed"),
    "crack": ("crack", "cracking", "cracked", "cracks", "cracked"),
    "whisk": ("whisk", "whisking", "whisked", "whisks", "whisked"),
    "heat": ("heat", "heating", "heated", "heats", "heated"),
    "pour": ("pour", "pouring", "poured", "pours", "poured"),
    "add": ("add", "adding", "added", "adds", "added"),
    "stir": ("stir", "stirring", "stirred", "stirs", "stirred"),
    "mix": ("mix", "mixing", "mixed", "mixes", "mixed"),
    "fry": ("fry", "frying", "fried", "fries", "fried"),
    "boil": ("boil", "boiling", "boiled", "boils", "boiled"),
    "bake": ("bake", "baking", "baked", "bakes", "baked"),
    "knead": ("knead", "kneading", "kneaded", "kneads", "kneaded"),
    "roll out": ("roll out", "rolling out", "rolled out", "rolls out", "rolled out"),
    "spread": ("spread", "spreading", "spread", "spreads", "spread"),
    "season": ("season", "seasoning", "seasoned", "seasons", "seasoned"),
    "cut": ("cut", "cutting", "cut", "cuts", "cut"),
    "grate": ("grate", "grating", "grated", "grates", "grated"),
    "drain": ("drain", "draining", "drained", "drains", "drained"),
    "sprinkle": ("sprinkle", "sprinkling", "sprinkled", "sprinkles", "sprinkled"),
    "melt": ("melt", "melting", "melted", "melts", "melted"),
    "flip": ("flip", "flipping", "flipped", "flips", "flipped"),
    "serve": ("serve", "serving", "served", "serves", "served"),
    "mash": ("mash", "mashing", "mashed", "mashes", "mashed"),
    "squeeze": ("squeeze", "squeezing", "squeezed", "squeezes", "squeezed"),
    "dip": ("dip", "dipping", "dipped", "dips", "dipped"),
    "loosen": ("loosen", "loosening", "loosened", "loosens", "loosened"),
    "tighten": ("tighten", "tightening", "tightened", "tightens", "tightened"),
    "jack up": ("jack up", "jacking up", "jacked up", "jacks up", "jacked up"),
    "lower": ("lower", "lowering", "lowered", "lowers", "lowered"),
    "remove": ("remove", "removing", "removed", "removes", "removed"),
    "sand": ("sand", "sanding", "sanded", "sands", "sanded"),
    "paint": ("paint", "painting", "painted", "paints", "painted"),
    "measure": ("measure", "measuring", "measured", "measures", "measured"),
    "drill": ("drill", "drilling", "drilled", "drills", "drilled"),
    "attach": ("attach", "attaching", "attached", "attaches", "attached"),
    "clean": ("clean", "cleaning", "cleaned", "cleans", "cleaned"),
    "apply": ("apply", "applying", "applied", "applies", "applied"),
    "fill": ("fill", "filling", "filled", "fills", "filled"),
    "plunge": ("plunge", "plunging", "plunged", "plunges", "plunged"),
    "water": ("water", "watering", "watered", "waters", "watered"),
    "dig": ("dig", "digging", "dug", "digs", "dug"),
    "plant": ("plant", "planting", "planted", "plants", "planted"),
}

# object: (noun phrase without article, indefinite form for descriptions)
OBJECTS: dict[str, tuple[str, str]] = {
    "onion": ("onion", "an onion"), "garlic": ("garlic", "some garlic"), "tomato": ("tomato", "a tomato"),
    "carrot": ("carrots", "some carrots"), "potato": ("potatoes", "some potatoes"),
    "cucumber": ("cucumber", "a cucumber"), "lettuce": ("lettuce", "some lettuce"),
    "avocado": ("avocado", "an avocado"), "lemon": ("lemon", "a lemon"), "eggs": ("eggs", "some eggs"),
    "butter": ("butter", "some butter"), "oil": ("oil", "some oil"), "milk": ("milk", "some milk"),
    "flour": ("flour", "some flour"), "sugar": ("sugar", "some sugar"), "salt": ("salt", "some salt"),
    "cheese": ("cheese", "some cheese"), "pasta": ("pasta", "some pasta"), "water": ("water", "some water"),
    "sauce": ("sauce", "some sauce"), "dough": ("dough", "the dough"), "bread": ("bread", "some bread"),
    "chicken": ("chicken", "a chicken"), "batter": ("batter", "the batter"), "pancake": ("pancake", "a pancake"),
    "omelette": ("omelette", "an omelette"), "pan": ("pan", "a pan"), "salad": ("salad", "a salad"),
    "lug nuts": ("lug nuts", "the lug nuts"), "car": ("car", "a car"), "tire": ("tire", "a tire"),
    "spare tire": ("spare tire", "the spare tire"), "wall": ("wall", "a wall"), "shelf": ("shelf", "a shelf"),
    "bracket": ("bracket", "a bracket"), "screws": ("screws", "some screws"), "holes": ("holes", "some holes"),
    "paint": ("paint", "some paint"), "tape": ("tape", "some tape"), "sink": ("sink", "a sink"),
    "drain": ("drain", "a drain"), "pipe": ("pipe", "a pipe"), "soil": ("soil", "some soil"),
    "seeds": ("seeds", "some seeds"), "pot": ("pot", "a pot"), "plant": ("plant", "a plant"),
    "tree": ("tree", "a tree"),
    "hole": ("hole", "a hole"),
}


@dataclass(frozen=True)
class Step:
    """One latent step: the unit that features, captions and annotations share."""

    index: int
    verb: str
    obj: str

    @property
    def forms(self) -> tuple[str, str, str, str, str]:
        return VERBS[self.verb]

    @property
    def noun(self) -> str:
        return OBJECTS[self.obj][0]

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
    index: int
    title: str  # "make pancakes"
    domain: str  # "kitchen", "garage", "home", "garden"
    steps: tuple[int, ...]  # latent step indices, in order


# (title, domain, ordered steps as "verb|object")
_TASKS = [
    ("make an omelette", "kitchen", ["crack|eggs", "whisk|eggs", "chop|onion", "melt|butter", "pour|eggs",
                                     "sprinkle|cheese", "flip|omelette", "serve|omelette"]),
    ("make pancakes", "kitchen", ["add|flour", "add|sugar", "crack|eggs", "pour|milk", "whisk|batter",
                                  "heat|pan", "pour|batter", "flip|pancake", "serve|pancake"]),
    ("make a salad", "kitchen", ["wash|lettuce", "cut|lettuce", "slice|tomato", "slice|cucumber", "chop|onion",
                                 "pour|oil", "add|salt", "mix|salad"]),
    ("make tomato sauce", "kitchen", ["chop|onion", "chop|garlic", "heat|oil", "fry|onion", "add|tomato",
                                      "add|salt", "stir|sauce"]),
    ("cook pasta", "kitchen", ["boil|water", "add|salt", "add|pasta", "stir|pasta", "drain|pasta", "add|sauce",
                               "grate|cheese", "serve|pasta"]),
    ("make french toast", "kitchen", ["crack|eggs", "pour|milk", "whisk|eggs", "dip|bread", "melt|butter",
                                      "fry|bread", "sprinkle|sugar", "serve|bread"]),
    ("make bread", "kitchen", ["add|flour", "add|water", "add|salt", "mix|dough", "knead|dough",
                               "roll out|dough", "bake|bread", "slice|bread"]),
    ("make mashed potatoes", "kitchen", ["peel|potato", "cut|potato", "boil|potato", "drain|potato",
                                         "add|butter", "pour|milk", "mash|potato", "add|salt"]),
    ("make fried chicken", "kitchen", ["cut|chicken", "season|chicken", "crack|eggs", "dip|chicken",
                                       "add|flour", "heat|oil", "fry|chicken", "serve|chicken"]),
    ("make lemonade", "kitchen", ["wash|lemon", "cut|lemon", "squeeze|lemon", "add|sugar", "pour|water",
                                  "stir|water"]),
    ("make guacamole", "kitchen", ["cut|avocado", "mash|avocado", "chop|onion", "chop|tomato", "squeeze|lemon",
                                   "add|salt", "mix|avocado"]),
    ("make carrot soup", "kitchen", ["peel|carrot", "chop|carrot", "chop|onion", "heat|oil", "fry|onion",
                                     "add|carrot", "pour|water", "boil|water", "season|sauce"]),
    ("change a tire", "garage", ["loosen|lug nuts", "jack up|car", "remove|lug nuts", "remove|tire",
                                 "attach|spare tire", "tighten|lug nuts", "lower|car"]),
    ("build a shelf", "home", ["measure|wall", "drill|holes", "attach|bracket", "tighten|screws",
                               "attach|shelf", "clean|wall"]),
    ("paint a wall", "home", ["clean|wall", "sand|wall", "apply|tape", "stir|paint", "paint|wall",
                              "remove|tape"]),
    ("unclog a sink", "home", ["remove|drain", "pour|water", "plunge|sink", "remove|pipe", "clean|pipe",
                               "attach|pipe", "pour|water"]),
    ("plant a tree", "garden", ["dig|hole", "plant|tree", "fill|hole", "add|soil", "water|tree"]),
    ("grow herbs", "garden", ["fill|pot", "add|soil", "plant|seeds", "water|plant", "sprinkle|soil"]),
]


def _build() -> tuple[list[Step], list[Task]]:
    steps: list[Step] = []
    lookup: dict[tuple[str, str], int] = {}
    tasks: list[Task] = []
    for task_index, (title, domain, names) in enumerate(_TASKS):
        indices = []
        for name in names:
            verb, obj = name.split("|")
            assert verb in VERBS and obj in OBJECTS, name
            if (verb, obj) not in lookup:
                lookup[verb, obj] = len(steps)
                steps.append(Step(len(steps), verb, obj))
            indices.append(lookup[verb, obj])
        tasks.append(Task(task_index, title, domain, tuple(indices)))
    return steps, tasks


STEPS, TASKS = _build()
DOMAINS = ("kitchen", "garage", "home", "garden")
VERB_NAMES = sorted(VERBS)
OBJECT_NAMES = sorted(OBJECTS)

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


def narration(rng: np.random.Generator, step: Step, when: str) -> str:
    """One ASR-style sentence about ``step``, said ``when`` = "before", "during" or "after" the action."""
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


def annotation(rng: np.random.Generator, step: Step, domain: str) -> str:
    """A YouCook2-style imperative annotation sentence, e.g. "chop the onion in a bowl"."""
    base = step.forms[0]
    article = _pick(rng, ["the ", "the ", ""])
    return f"{base} {article}{step.noun}{_pick(rng, _TAILS[domain])}"


def description(rng: np.random.Generator, step: Step, domain: str) -> str:
    """An MSR-VTT/DiDeMo-style third-person description, e.g. "a man is chopping an onion in the kitchen"."""
    _, ing, _, third, _ = step.forms
    person = _pick(rng, _PEOPLE)
    indefinite = OBJECTS[step.obj][1]
    place = _pick(rng, _PLACES[domain])
    sentence = _pick(rng, [f"{person} is {ing} {indefinite} {place}", f"{person} {third} {indefinite}",
                           f"{person} {third} the {step.noun} {place}", f"{person} is {ing} the {step.noun}"])
    return sentence

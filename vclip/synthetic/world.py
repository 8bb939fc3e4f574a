"""Latent factors to per-second features and rolling ASR captions: the generative model of the world.

Paper: VideoCLIP (Xu et al., EMNLP 2021) sections 3.3 (the narration of a HowTo100M video is only
loosely aligned with what is shown, hence *overlapped* rather than exactly aligned clips) and 3.4
(similar videos are hard negatives, hence retrieval-augmented batches). Reference formats: S3D
features, one L2-normalised 512-d float16 vector per second (``scripts/video_feature_extractor``), and
HowTo100M ``raw_caption.json`` with rolling, duplicated ASR lines (``mmpt/processors/dedupprocessor.py``).

A video of task *k* is a timeline of its steps (some skipped) separated by background seconds.
Feature of second t (before L2 normalisation)::

    x_t = smooth( a_verb E_verb[v_t] + a_obj E_obj[o_t] + a_step E_step[s_t] )   (a step second)
          or a_bg E_background[b]                                                  (a background second)
        + a_task E_task[k] + a_domain E_domain[d] + a_video e_video + noise_t        (AR(1) in time)

    E_task[k] = unit( sqrt(s/2) (E_base[b_k] + E_variant[u_k]) + sqrt(1 - s) E_own[k] ),  s = task_sibling

so two tasks of one base ("make _ soup") or one variant ("mushroom") look alike (cosine about s/2),
which is what the retrieval pass finds; every amount is a named field of :class:`FeatureScales`.

The narration is a stream of sentences, each about a step and said before, during or after it
(:class:`NarrationStyle`: ``when``, ``before_lead``, ``after_lag``; ``silent_step`` steps are never
narrated; a share ``task_mention`` of the sentences names the task), plus chatter and introductions;
the stream is cut into ASR lines which, in "rolling" videos, repeat the tail of the previous line (as YouTube's auto captions do), sometimes
show a partial line first (a superset follows) or repeat a tail on its own (a subset follows).
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field

import numpy as np

from vclip.synthetic.language import (
    DOMAIN_BASES,
    DOMAIN_VARIANTS,
    DOMAINS,
    OBJECT_NAMES,
    STEPS,
    TASKS,
    VERB_NAMES,
    Task,
    chatter,
    introduction,
    narration,
)

FEATURE_DIM = 512
BACKGROUND = -1  # latent step of a background second or of chatter
_ID_CHARS = string.ascii_letters + string.digits + "-_"


@dataclass
class FeatureScales:
    """Norms of the factors that make a feature (each embedding is a random unit vector)."""

    verb: float = 0.8
    obj: float = 0.8
    step: float = 0.5  # what a (verb, object) pair looks like beyond its parts
    background: float = 1.0
    task: float = 0.6  # the task's scene: videos of one task look alike (retrieval finds them)
    task_sibling: float = 0.6  # share of a scene's variance from its base and its variant: siblings look alike
    domain: float = 0.4  # kitchen / garage / home / garden
    video: float = 0.5  # this video's camera, light, person
    noise: float = 1.0  # expected norm of the per-second noise
    noise_rho: float = 0.6  # AR(1) correlation of the noise between consecutive seconds


@dataclass
class NarrationStyle:
    """How the narrator talks (probabilities and seconds)."""

    when: tuple[float, float, float] = (0.45, 0.35, 0.20)  # said before / during / after the action
    before_lead: tuple[float, float] = (2.0, 9.0)  # "before" speech starts this long before the step
    after_lag: tuple[float, float] = (0.0, 4.0)  # "after" speech starts this long after the step ends
    silent_step: float = 0.1  # a step nobody talks about
    task_mention: float = 0.3  # a step sentence also names the task ("... to make mushroom soup")
    extra_sentences: float = 1.0  # mean number (Poisson) of further sentences during or after the step
    chatter_per_minute: float = 1.5
    words_per_second: tuple[float, float] = (2.0, 3.0)
    line_words: tuple[int, int] = (5, 10)  # words per ASR line
    rolling_videos: float = 0.7  # fraction of videos with YouTube-style rolling duplicate lines
    rolling_overlap: float = 0.8  # in a rolling video: a line repeats the tail of the previous one
    partial_line: float = 0.15  # a partial line is shown before the full line (a "superset" follows)
    repeated_tail: float = 0.1  # the tail of a line is repeated on its own (a "subset" follows)


@dataclass
class Timeline:
    """The latent content of one video: ordered step segments [start, end) in whole seconds."""

    task: Task
    duration: int
    segments: list[tuple[int, int, int]]  # (latent step, start, end)
    positions: list[int]  # index of each segment's step in task.steps (a step can occur twice in a task)

    def per_second(self) -> np.ndarray:
        """(duration,) int: the latent step of each second, -1 for background."""
        labels = np.full(self.duration, BACKGROUND, dtype=np.int64)
        for step, start, end in self.segments:
            labels[start:end] = step
        return labels


@dataclass
class Captions:
    """Generated ASR lines with their latent step (majority over the words; -1 for chatter)."""

    start: list[float] = field(default_factory=list)
    end: list[float] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"start": self.start, "end": self.end, "text": self.text}


def _unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.linalg.norm(matrix, axis=-1, keepdims=True)


class World:
    """The random embeddings of one world (fixed by the seed) and the generators that use them."""

    def __init__(self, seed: int, scales: FeatureScales | None = None, style: NarrationStyle | None = None,
                 tasks_per_domain: int | None = None):
        """``tasks_per_domain``: keep at most this many tasks of each domain (drawn with the seed, the
        same for every folder); None keeps all of :data:`~vclip.synthetic.language.TASKS`."""
        self.seed = seed
        self.scales = scales or FeatureScales()
        self.style = style or NarrationStyle()
        rng = np.random.default_rng([seed, 0])
        d = FEATURE_DIM
        self.verb_embeddings = _unit(rng.standard_normal((len(VERB_NAMES), d)))
        self.object_embeddings = _unit(rng.standard_normal((len(OBJECT_NAMES), d)))
        self.step_embeddings = _unit(rng.standard_normal((len(STEPS), d)))
        self.background_embeddings = _unit(rng.standard_normal((3, d)))  # talking head, idle, title card
        # a task's scene: its base's, its variant's and its own direction (siblings share the first two)
        base = {(dom, b): _unit(rng.standard_normal(d)) for dom in DOMAINS for b in range(len(DOMAIN_BASES[dom]))}
        variant = {(dom, v): _unit(rng.standard_normal(d)) for dom in DOMAINS for v in range(len(DOMAIN_VARIANTS[dom]))}
        own = _unit(rng.standard_normal((len(TASKS), d)))
        shared = self.scales.task_sibling
        self.task_embeddings = _unit(np.stack([
            np.sqrt(shared / 2) * (base[t.domain, t.base] + variant[t.domain, t.variant]) + np.sqrt(1 - shared) * own[t.index]
            for t in TASKS]))
        self.domain_embeddings = _unit(rng.standard_normal((len(DOMAINS), d)))
        self.tasks: list[Task] = list(TASKS)  # the tasks this world's videos show
        if tasks_per_domain is not None:
            keep = np.random.default_rng([seed, 1])
            self.tasks = []
            for dom in DOMAINS:
                of_domain = [t for t in TASKS if t.domain == dom]
                pick = sorted(keep.choice(len(of_domain), size=min(tasks_per_domain, len(of_domain)), replace=False))
                self.tasks += [of_domain[i] for i in pick]
        self._step_verb = np.array([VERB_NAMES.index(s.verb) for s in STEPS])
        self._step_object = np.array([OBJECT_NAMES.index(s.obj) for s in STEPS])
        self._step_parts = (self.scales.verb * self.verb_embeddings[self._step_verb]
                            + self.scales.obj * self.object_embeddings[self._step_object]
                            + self.scales.step * self.step_embeddings)  # (num_steps, D)
        self._ids: set[str] = set()

    # ----------------------------------------------------------------------------------------------
    def new_video_id(self, rng: np.random.Generator, prefix: str = "") -> str:
        """A fresh YouTube-like id (11 characters), unique within the world."""
        while True:
            video_id = prefix + "".join(_ID_CHARS[i] for i in rng.integers(len(_ID_CHARS), size=11))
            if video_id not in self._ids:
                self._ids.add(video_id)
                return video_id

    def plan(self, rng: np.random.Generator, task: Task, duration: int, keep_prob: float = 0.85,
             background: tuple[float, float] = (0.25, 0.45), min_step: int = 4,
             positions: list[int] | None = None) -> Timeline:
        """Lay out ``task``'s steps (each kept with ``keep_prob``, in order) over ``duration`` seconds.

        ``positions`` (indices into ``task.steps``) overrides the random choice of steps. A fraction
        ``background`` of the seconds is background, split into an intro, gaps and an outro.
        """
        if positions is None:
            positions = [i for i in range(len(task.steps)) if rng.random() < keep_prob]
            if not positions:
                positions = [int(rng.integers(len(task.steps)))]
        background_seconds = int(round(duration * rng.uniform(*background)))
        step_seconds = duration - background_seconds
        positions = positions[: max(1, step_seconds // min_step)]
        steps = [task.steps[i] for i in positions]
        n = len(steps)
        if step_seconds < min_step * n:
            raise ValueError(f"duration {duration} s is too short for {n} steps of >= {min_step} s")
        lengths = min_step + rng.multinomial(step_seconds - min_step * n, rng.dirichlet(np.full(n, 3.0)))
        gaps = rng.multinomial(background_seconds, rng.dirichlet(np.full(n + 1, 1.5)))
        segments, t = [], int(gaps[0])
        for step, length, gap in zip(steps, lengths, gaps[1:]):
            segments.append((int(step), t, t + int(length)))
            t += int(length) + int(gap)
        return Timeline(task, duration, segments, list(positions))

    def render(self, rng: np.random.Generator, timeline: Timeline) -> np.ndarray:
        """Per-second features of a timeline: (duration, 512) float16, each row of unit L2 norm."""
        s = self.scales
        labels = timeline.per_second()
        content = np.zeros((timeline.duration, FEATURE_DIM))
        is_step = labels >= 0
        content[is_step] = self._step_parts[labels[is_step]]
        # background seconds: one kind per gap (talking head, idle hands, title card)
        starts = np.flatnonzero(np.diff(np.concatenate([[0], (~is_step).astype(int)])) == 1)
        for start in starts:
            stop = start
            while stop < timeline.duration and not is_step[stop]:
                stop += 1
            content[start:stop] = s.background * self.background_embeddings[int(rng.integers(3))]
        if timeline.duration > 2:  # actions start and end gradually
            padded = np.concatenate([content[:1], content, content[-1:]])
            content = 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]
        video = _unit(rng.standard_normal(FEATURE_DIM))
        domain = DOMAINS.index(timeline.task.domain)
        context = (s.task * self.task_embeddings[timeline.task.index] + s.domain * self.domain_embeddings[domain]
                   + s.video * video)
        white = rng.standard_normal((timeline.duration, FEATURE_DIM)) * (s.noise / np.sqrt(FEATURE_DIM))
        noise = np.empty_like(white)
        noise[0] = white[0]
        innovation = np.sqrt(1.0 - s.noise_rho ** 2)
        for t in range(1, timeline.duration):
            noise[t] = s.noise_rho * noise[t - 1] + innovation * white[t]
        features = _unit(content + context + noise)
        return features.astype(np.float16)

    def narrate(self, rng: np.random.Generator, timeline: Timeline) -> Captions:
        """ASR lines for a timeline: offset step narration, chatter, and (maybe) rolling duplicates."""
        style, duration = self.style, timeline.duration
        events: list[tuple[float, str, int]] = []  # (time the sentence starts, text, latent step)
        if rng.random() < 0.7:
            events.append((rng.uniform(0, 3), introduction(rng, timeline.task), BACKGROUND))
        for step, start, end in timeline.segments:
            if rng.random() < style.silent_step:
                continue
            when = ("before", "during", "after")[int(rng.choice(3, p=style.when))]
            if when == "before":
                at = start - rng.uniform(*style.before_lead)
            elif when == "during":
                at = start + rng.uniform(0, 0.5 * (end - start))
            else:
                at = end + rng.uniform(*style.after_lag)
            named = timeline.task if rng.random() < style.task_mention else None
            events.append((at, narration(rng, STEPS[step], when, named), step))
            for _ in range(rng.poisson(style.extra_sentences)):
                if rng.random() < 0.7:
                    events.append((rng.uniform(start, end), narration(rng, STEPS[step], "during"), step))
                else:
                    events.append((end + rng.uniform(*style.after_lag), narration(rng, STEPS[step], "after"), step))
        for _ in range(rng.poisson(style.chatter_per_minute * duration / 60)):
            events.append((rng.uniform(0, duration), chatter(rng), BACKGROUND))
        events.sort(key=lambda event: event[0])

        # the word stream: one speaker, words in sequence
        rate = rng.uniform(*style.words_per_second)
        words: list[tuple[str, float, float, int]] = []  # (word, start, end, step)
        clock = 0.0
        for at, text, step in events:
            t = max(at, clock + rng.uniform(0.2, 1.0), 0.0)
            tokens = text.split()
            if t + len(tokens) / rate > duration:
                continue  # the video ended before the sentence could be said
            for token in tokens:
                words.append((token, t, t + 1.0 / rate, step))
                t += 1.0 / rate
            clock = t
        lines: list[list[tuple[str, float, float, int]]] = []
        i = 0
        while i < len(words):
            n = int(rng.integers(style.line_words[0], style.line_words[1] + 1))
            line = [words[i]]
            for word in words[i + 1: i + n]:
                if word[1] - line[-1][2] > 1.5:  # a pause ends the line
                    break
                line.append(word)
            lines.append(line)
            i += len(line)

        captions = Captions()

        def emit(chunk: list[tuple[str, float, float, int]]) -> None:
            steps = [w[3] for w in chunk]
            values, counts = np.unique(steps, return_counts=True)
            captions.start.append(round(chunk[0][1], 2))
            captions.end.append(round(chunk[-1][2], 2))
            captions.text.append(" ".join(w[0] for w in chunk))
            captions.steps.append(int(values[np.argmax(counts)]))

        rolling = rng.random() < style.rolling_videos
        previous: list[tuple[str, float, float, int]] = []
        for line in lines:
            shown = line
            if rolling and previous and line[0][1] - previous[-1][2] < 2.0 and rng.random() < style.rolling_overlap:
                shown = previous[-int(rng.integers(1, min(4, len(previous)) + 1)):] + line
            if rolling and len(shown) > 3 and rng.random() < style.partial_line:
                emit(shown[: int(rng.integers(2, len(shown)))])
            emit(shown)
            if rolling and len(shown) > 3 and rng.random() < style.repeated_tail:
                emit(shown[-int(rng.integers(1, 3)):])
            previous = line
        return captions

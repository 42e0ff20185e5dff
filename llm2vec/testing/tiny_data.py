"""Synthetic, learnable retrieval data for tests and CPU smoke runs.

Every sample is about one *topic* out of a fixed set of :data:`TOPICS`, each with its own
vocabulary of content words. A query is a short question using two or three words of its topic,
the positive is a longer passage on the same topic that repeats those words, and the negative is a
passage on a different topic. Query -> positive retrieval is therefore learnable from lexical
overlap (a trained model beats chance easily) while a randomly initialised model stays near
chance. Everything is deterministic given ``seed``.
"""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "TOPICS",
    "FILLER_WORDS",
    "QUESTION_TEMPLATES",
    "DEFAULT_E5_FILES",
    "DEFAULT_INSTRUCTIONS",
    "make_pair",
    "make_pairs",
    "write_tiny_pairs_dir",
    "write_tiny_pairs_jsonl",
]

#: topic name -> ten content words used only by that topic.
TOPICS: dict[str, tuple[str, ...]] = {
    "ocean": ("ocean", "wave", "tide", "coral", "whale", "reef", "salt", "shore", "current", "dolphin"),
    "space": ("planet", "star", "orbit", "galaxy", "comet", "rocket", "moon", "telescope", "nebula", "asteroid"),
    "cooking": ("recipe", "oven", "flour", "butter", "garlic", "simmer", "spice", "dough", "kitchen", "sauce"),
    "music": ("guitar", "melody", "rhythm", "piano", "chord", "song", "drum", "concert", "violin", "tempo"),
    "soccer": ("goal", "striker", "referee", "penalty", "stadium", "league", "midfield", "keeper", "match", "corner"),
    "finance": ("bank", "loan", "interest", "stock", "budget", "credit", "invest", "dividend", "market", "savings"),
    "medicine": ("doctor", "vaccine", "fever", "clinic", "surgery", "patient", "dose", "symptom", "nurse", "virus"),
    "computing": ("computer", "software", "code", "server", "memory", "program", "network", "chip", "database", "compiler"),
    "gardening": ("garden", "seed", "soil", "flower", "compost", "prune", "tulip", "weed", "harvest", "greenhouse"),
    "history": ("empire", "king", "battle", "castle", "treaty", "dynasty", "ancient", "revolution", "throne", "knight"),
    "weather": ("rain", "storm", "cloud", "thunder", "snow", "forecast", "humidity", "wind", "drought", "lightning"),
    "cars": ("engine", "wheel", "brake", "fuel", "garage", "tire", "gearbox", "diesel", "driver", "highway"),
    "birds": ("bird", "feather", "nest", "wing", "eagle", "sparrow", "beak", "owl", "parrot", "migrate"),
    "chemistry": ("atom", "molecule", "acid", "reaction", "element", "bond", "catalyst", "electron", "solvent", "crystal"),
    "law": ("court", "judge", "lawyer", "contract", "verdict", "jury", "appeal", "statute", "witness", "trial"),
    "education": ("school", "teacher", "student", "exam", "lesson", "homework", "classroom", "grade", "lecture", "campus"),
    "travel": ("airport", "passport", "hotel", "luggage", "flight", "ticket", "tourist", "visa", "journey", "map"),
    "art": ("painting", "canvas", "sculpture", "museum", "brush", "portrait", "gallery", "sketch", "color", "artist"),
    "fitness": ("muscle", "workout", "running", "yoga", "stretch", "gym", "cardio", "protein", "sprint", "endurance"),
    "farming": ("farm", "tractor", "wheat", "cattle", "barn", "crop", "plow", "dairy", "orchard", "irrigation"),
    "movies": ("film", "actor", "director", "scene", "cinema", "script", "camera", "premiere", "sequel", "trailer"),
    "geology": ("rock", "volcano", "mineral", "fossil", "quartz", "lava", "canyon", "erosion", "granite", "earthquake"),
    "coffee": ("coffee", "espresso", "bean", "roast", "latte", "brew", "caffeine", "grinder", "mug", "barista"),
    "photography": ("photo", "lens", "shutter", "aperture", "flash", "tripod", "exposure", "zoom", "pixel", "focus"),
    "dogs": ("dog", "puppy", "leash", "bark", "breed", "collar", "kennel", "fetch", "tail", "retriever"),
    "energy": ("solar", "battery", "turbine", "grid", "voltage", "power", "charge", "nuclear", "reactor", "generator"),
    "fashion": ("dress", "fabric", "jacket", "cotton", "tailor", "boot", "silk", "pattern", "wardrobe", "scarf"),
    "mountains": ("mountain", "summit", "glacier", "trail", "peak", "climber", "valley", "ridge", "altitude", "avalanche"),
    "insects": ("insect", "beetle", "bee", "ant", "butterfly", "larva", "hive", "mosquito", "spider", "cricket"),
    "politics": ("election", "vote", "senator", "parliament", "policy", "campaign", "minister", "ballot", "party", "debate"),
}

#: topic-neutral words used to pad passages.
FILLER_WORDS: tuple[str, ...] = (
    "the", "a", "of", "and", "is", "in", "it", "that", "with", "for", "on", "are", "this", "very",
    "often", "many", "some", "people", "usually", "can", "also", "when", "most", "new", "good",
    "about", "from", "by", "their", "they", "more", "than", "each", "other", "time", "year",
)

#: question templates; ``{}`` slots are filled with topic words.
QUESTION_TEMPLATES: tuple[str, ...] = (
    "what is a {} and a {}?",
    "how does the {} affect the {}?",
    "why is {} important for {}?",
    "where can i find a {} near the {}?",
    "when does the {} need a {} and {}?",
    "what do people know about {} {} and {}?",
    "which {} is best for a {}?",
    "how to choose a good {} for {} {}?",
    "is the {} related to {}?",
    "tell me about the {} of the {} today",
)

#: E5-style file names written by :func:`write_tiny_pairs_dir` by default.
DEFAULT_E5_FILES: tuple[str, ...] = ("allnli", "nq", "quora_duplicates", "squad")

#: instructions used by :func:`write_tiny_pairs_jsonl` when ``with_instruction`` is set.
DEFAULT_INSTRUCTIONS: tuple[str, ...] = (
    "Given a question, retrieve passages that answer the question",
    "Retrieve a passage about the same topic as the query",
    "Given a web search query, retrieve relevant passages",
)

_TOPIC_NAMES: tuple[str, ...] = tuple(TOPICS)


def _rng(seed: int, name: str) -> random.Random:
    """A generator seeded from ``seed`` and ``name`` (stable across processes and platforms)."""
    return random.Random(zlib.crc32(f"{seed}:{name}".encode()) + (seed << 32))


def _passage(rng: random.Random, topic: str, must_use: Sequence[str] = ()) -> str:
    """A 15-40 word passage on ``topic`` containing every word of ``must_use``."""
    words = TOPICS[topic]
    n_words = rng.randint(15, 40)
    n_topic = max(len(must_use) + 2, n_words // 2)
    topic_words = list(must_use) + [rng.choice(words) for _ in range(n_topic - len(must_use))]
    fillers = [rng.choice(FILLER_WORDS) for _ in range(n_words - n_topic)]
    tokens = topic_words + fillers
    rng.shuffle(tokens)
    # split into sentences of 5-12 words
    sentences, i = [], 0
    while i < len(tokens):
        j = i + rng.randint(5, 12)
        if j > len(tokens) - 3:  # no sentence fragments of one or two words at the end
            j = len(tokens)
        sentence = " ".join(tokens[i:j])
        sentences.append(sentence[0].upper() + sentence[1:] + ".")
        i = j
    return " ".join(sentences)


def make_pair(rng: random.Random) -> dict[str, str]:
    """One ``{"query", "positive", "negative"}`` sample drawn with ``rng``."""
    topic = rng.choice(_TOPIC_NAMES)
    template = rng.choice(QUESTION_TEMPLATES)
    n_slots = template.count("{}")
    query_words = rng.sample(TOPICS[topic], n_slots)
    query = template.format(*query_words)
    query = query[0].upper() + query[1:]
    positive = _passage(rng, topic, query_words)
    other = rng.choice([t for t in _TOPIC_NAMES if t != topic])
    negative = _passage(rng, other)
    return {"query": query, "positive": positive, "negative": negative}


def make_pairs(n: int, seed: int = 0, name: str = "pairs", with_negatives: bool = True) -> list[dict[str, str]]:
    """``n`` deterministic samples; ``name`` decorrelates streams that share a ``seed``."""
    rng = _rng(seed, name)
    samples = []
    for _ in range(n):
        sample = make_pair(rng)
        if not with_negatives:
            del sample["negative"]
        samples.append(sample)
    return samples


def _write_jsonl(path: Path, rows: Sequence[dict[str, str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_tiny_pairs_dir(
    output_dir: str | Path,
    files: Sequence[str] = DEFAULT_E5_FILES,
    n_per_file: int = 64,
    seed: int = 0,
    with_negatives: bool = True,
) -> Path:
    """Write an E5-format directory: one ``<name>.jsonl`` per entry of ``files``.

    Each line is ``{"query": ..., "positive": ..., "negative": ...}`` (``negative`` is left out
    when ``with_negatives`` is False). Returns the directory.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    for name in files:
        rows = make_pairs(n_per_file, seed=seed, name=name, with_negatives=with_negatives)
        _write_jsonl(output_dir / f"{name}.jsonl", rows)
    return output_dir


def write_tiny_pairs_jsonl(
    path: str | Path,
    n: int = 64,
    seed: int = 0,
    with_instruction: bool = False,
) -> Path:
    """Write one JSON-lines file for the generic pairs loader.

    Each line has ``query``, ``positive`` and ``negative``; with ``with_instruction`` also an
    ``instruction`` (one of :data:`DEFAULT_INSTRUCTIONS`). Returns the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = make_pairs(n, seed=seed, name="generic")
    if with_instruction:
        rng = _rng(seed, "instructions")
        rows = [{**row, "instruction": rng.choice(DEFAULT_INSTRUCTIONS)} for row in rows]
    _write_jsonl(path, rows)
    return path


#: a small lexicon with one tag per word: a linear probe can learn the tags from a random
#: model's states (a word's identity stays in its token's residual stream)
WORD_TASK_LEXICON = {
    "the": "DT", "a": "DT", "cat": "NN", "dog": "NN", "river": "NN", "sees": "VB", "likes": "VB",
    "finds": "VB", "green": "JJ", "quiet": "JJ", "old": "JJ", ".": ".",
}
#: sentences per split of :func:`write_tiny_word_task`
WORD_TASK_SPLITS = {"train": 160, "validation": 40, "test": 40}


def write_tiny_word_task(output_dir: str | Path, seed: int = 0) -> dict[str, Path]:
    """Write ``train.txt``, ``validation.txt`` and ``test.txt``: CoNLL files (word and tag per line,
    a blank line between sentences) of random 3-9-word sentences over :data:`WORD_TASK_LEXICON`."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    words = sorted(WORD_TASK_LEXICON)
    paths = {}
    for split, count in WORD_TASK_SPLITS.items():
        rng = _rng(seed, f"word_task/{split}")
        lines = []
        for _ in range(count):
            sentence = [rng.choice(words) for _ in range(rng.randint(3, 9))]
            lines += [f"{word} {WORD_TASK_LEXICON[word]}" for word in sentence] + [""]
        paths[split] = output_dir / f"{split}.txt"
        paths[split].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths

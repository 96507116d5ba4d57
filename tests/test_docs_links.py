"""Every relative link in README.md, docs/*.md and the two design notes (priors/SCORING.md,
eg_train/evaluation/ATTACKS.md), and every ``docs/*.md#anchor`` the code cites, points at a
file of the repository and, for a markdown page, at one of its headings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "priors" / "SCORING.md",
         ROOT / "eg_train" / "evaluation" / "ATTACKS.md"]

# Pages that other branches add; linked already. The integrator removes this allowance after merging them.
EXPECTED_FROM_OTHER_BRANCHES: set[str] = set()  # every linked page is in the repository

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _prose(text: str) -> str:
    """The text without fenced code blocks and code spans (their brackets are not links)."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def links(text: str) -> list[str]:
    return _LINK.findall(_prose(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (not ``-`` / ``_``), spaces to ``-``."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for line in text.splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base, n = slug(m.group(1)), 0
            while (base if n == 0 else f"{base}-{n}") in found:  # repeated headings get -1, -2, ...
                n += 1
            found.add(base if n == 0 else f"{base}-{n}")
    found |= set(re.findall(r'<a (?:id|name)="([^"]+)"', text))
    return found


def _check(target: str, source: Path) -> str | None:
    """None when ``target`` (a link written in ``source``) resolves, else what is wrong."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
        return None
    path_part, _, anchor = target.partition("#")
    resolved = (source.parent / path_part).resolve() if path_part else source
    rel = resolved.relative_to(ROOT).as_posix() if resolved.is_relative_to(ROOT) else str(resolved)
    if not resolved.exists():
        return None if rel in EXPECTED_FROM_OTHER_BRANCHES else f"{target}: {rel} does not exist"
    if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
        return f"{target}: no heading #{anchor} in {rel}"
    return None


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page: Path):
    problems = [p for t in links(page.read_text(encoding="utf-8")) if (p := _check(t, page))]
    assert not problems, f"{page.relative_to(ROOT)}: broken links:\n" + "\n".join(problems)


def test_code_citations_of_docs_resolve():
    problems = []
    for py in sorted([*ROOT.glob("eg_train/**/*.py"), *ROOT.glob("priors/**/*.py"), *ROOT.glob("scripts/*.py")]):
        for target in re.findall(r"docs/[\w-]+\.md#[\w-]+", py.read_text(encoding="utf-8")):
            if problem := _check(target, ROOT / "README.md"):
                problems.append(f"{py.relative_to(ROOT)}: {problem}")
    assert not problems, "\n".join(problems)


def test_the_checker_catches_a_broken_link_and_anchor(tmp_path):
    assert links("see [a](x.md) and `[b](y.md)`\n```\n[c](z.md)\n```\n") == ["x.md"]
    assert _check("docs/design.md#cap-prior", ROOT / "README.md") is None
    assert _check("docs/design.md#no-such-heading", ROOT / "README.md") is not None
    assert _check("docs/no-such-page.md", ROOT / "README.md") is not None
    assert slug("The `PipelineConfig` (top level), part 2") == "the-pipelineconfig-top-level-part-2"

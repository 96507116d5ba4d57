"""Long-input benchmark: full-document LIME vs Focus-LIME at the same target-query budget.

Documents are built by placing one short labelled CLINC150 query (the evidence, known words)
among filler sentences: CLINC150 queries of intents outside the label space, grouped into
paragraphs, at several lengths. ``--evidence-sentences n`` plants n queries of the gold intent
instead (redundant evidence: any one of them settles the label). Each method attributes the
gold label with the same number of target queries; then the words are deleted in attribution
order.

Metrics per method and length (mean over documents, medians in the JSON too):
- ``aopc@k`` = p(y|x) - p(y|x without the top-k words) (deletion), for k = 10, 50, 100;
  ``mean_aopc`` = the mean of ``aopc@k`` over k = 1..100. Ties (Focus-LIME's 0-scored words
  outside the focus) are broken in a seeded random order.
- ``recall150``: fraction of the evidence words among the top ceil(1.5 x |evidence|) words
  (by score, the deletion order); ``recall150_abs`` ranks by |score| instead, as LIME's own
  explanations do: it counts an evidence word the target scores negative as found.
- ``aopc_ratio_ceiling``: p(y|x) / full LIME's mean AOPC at the longest length. No deletion
  lowers p below 0, so no method's AOPC exceeds p(y|x): this is the largest
  ``aopc_ratio_focus_over_full`` any attribution could reach on these documents.
- target queries (the attribution budget), proxy queries, deletion-evaluation queries (counted
  apart), wall time of the attribution, tokens the target actually encoded.

Models (all offline): the *target* is the embedded SLM fine-tuned with CE on the label intents
plus an "other" class (queries of the remaining intents), read sentence by sentence:
p(y|document) = max over sentences of p(y|sentence), the multiple-instance reading of "does
the document contain a request of intent y" (like the Focus-LIME paper's clause questions);
``--target-pooling logsumexp|mean`` pools the sentence logits instead, so every sentence counts.
Fillers the target already reads as y (p > ``--filler-max-p``) are vetoed, so the planted
query is the only evidence. ``--target smollm2-135m-instruct`` uses the LLM with the plain
prompt instead: about 40 s per query on a 4,096-word document on this 2-core CPU (measured),
so only for a machine with time or a GPU. The *proxy* is the same SLM fine-tuned on far fewer
examples (a stand-in for "the SLM being trained"). Both checkpoints are fine-tuned once and
cached under ``$EG_TRAIN_CACHE/bench_long`` (a few minutes on the first run).

Every attribution starts with cold memo caches. The sentence-level target memoises sentence
logits, so Focus-LIME's Phase II (which changes only the focus sentences) encodes far fewer
tokens than full LIME; ``target_tokens`` reports the work actually done. A causal-LM target
has no such reuse: there a Phase II query costs a whole document.

    python scripts/bench_long.py --quick --out results/bench_long_quick.json
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eg_train.foundation.data.source import DataSpec, load_split  # noqa: E402
from eg_train.foundation.models.resolve import cache_dir, load_causal_lm, load_sequence_classifier  # noqa: E402
from eg_train.foundation.words import Words, split_words  # noqa: E402
from priors.base import PriorBatch  # noqa: E402
from priors.focus import FocusConfig, FocusSelector  # noqa: E402
from priors.masks import example_rng  # noqa: E402
from priors.methods.lime import LimePrior  # noqa: E402
from priors.proxy import ClassifierScorer  # noqa: E402

log = logging.getLogger("bench_long")
SLM = "all-minilm-l6-v2"


# ----------------------------------------------------------------------------- data
def sentence(text: str) -> str:
    """A CLINC query as a sentence: capitalised, with terminal punctuation."""
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text[-1:] in ".?!" else text + "."


def build_document(
    evidence: list[str], fillers: list[str], n_words: int, rng: np.random.Generator, accept=None
) -> tuple[str, list[np.ndarray]]:
    """Evidence sentences at random positions among filler sentences, in paragraphs of 3-6
    sentences, until the text has ``n_words`` words. ``accept(sentences) -> bool mask`` may veto
    fillers (e.g. those the target already reads as the gold label). Returns the text and, per
    evidence sentence, its word ids."""
    evs = [sentence(e) for e in evidence]
    target = n_words - sum(len(split_words(e)) for e in evs)
    sents, count = [], 0
    order = rng.permutation(len(fillers))
    for start in range(0, len(order), 64):
        if count >= target:
            break
        block = [sentence(fillers[i]) for i in order[start : start + 64]]
        ok = accept(block) if accept is not None else np.ones(len(block), dtype=bool)
        for s, good in zip(block, ok):
            if good and count < target:
                sents.append(s)
                count += len(split_words(s))
    if count < target:
        raise ValueError(f"not enough filler sentences for {n_words} words")
    if len(evs) == 1:  # the original one-query layout (same random stream as before)
        slots = [int(rng.integers(0, len(sents) + 1))]
    else:
        slots = sorted(rng.choice(len(sents) + len(evs), size=len(evs), replace=False).tolist())
    for pos, ev in zip(slots, evs):
        sents.insert(pos, ev)
    paragraphs, i = [], 0
    while i < len(sents):
        size = int(rng.integers(3, 7))
        paragraphs.append(" ".join(sents[i : i + size]))
        i += size
    text = "\n\n".join(paragraphs)
    words = split_words(text)
    ids = []
    for pos, ev in zip(slots, evs):
        start = _find_sentence(text, ev, sents, pos)
        ids.append(np.array([j for j, (s, e) in enumerate(words.spans) if start <= s and e <= start + len(ev)]))
    return text, ids


def _find_sentence(text: str, ev: str, sents: list[str], pos: int) -> int:
    """Character offset of the ``pos``-th sentence (an evidence sentence) in the joined text."""
    cursor = 0
    for s in sents[:pos]:
        cursor = text.index(s, cursor) + len(s)
    return text.index(ev, cursor)


# ----------------------------------------------------------------------------- models
def finetune(texts: list[str], labels: list[int], label_names: list[str], *, epochs: int, seed: int, tag: str) -> Path:
    """CE fine-tune of the embedded SLM (cached by data + settings); returns its directory."""
    key = hashlib.sha1(json.dumps([texts, labels, label_names, epochs, seed]).encode()).hexdigest()[:12]
    out = cache_dir() / "bench_long" / f"{tag}-{key}"
    if (out / "config.json").is_file():
        return out
    torch.manual_seed(seed)
    model, tok = load_sequence_classifier(SLM, label_names)
    # Fine-tune the top half only: a third less backward work on a shared 2-core CPU.
    for p in [*model.bert.embeddings.parameters(), *model.bert.encoder.layer[:3].parameters()]:
        p.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-4, weight_decay=0.01)
    rng = np.random.default_rng(seed)
    model.train()
    steps = epochs * math.ceil(len(texts) / 16)
    with tqdm(total=steps, desc=f"fine-tune {tag}") as bar:
        for _ in range(epochs):
            order = rng.permutation(len(texts))
            for s in range(0, len(order), 16):
                idx = order[s : s + 16]
                enc = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=48, return_tensors="pt")
                loss = model(**enc, labels=torch.tensor([labels[i] for i in idx])).loss
                opt.zero_grad()
                loss.backward()
                opt.step()
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def classifier_scorer(
    path: Path, label_names: list[str], model_id: str, pooling: str = "max", chunking: str = "sentence", max_length: int = 64
) -> ClassifierScorer:
    model, tok = load_sequence_classifier(str(path), label_names)
    return ClassifierScorer(model, tok, model_id=model_id, chunking=chunking, pooling=pooling, max_length=max_length)


# ----------------------------------------------------------------------------- metrics
def deletion_order(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Word indices by decreasing score; equal scores in a seeded random order."""
    return np.lexsort((rng.random(len(scores)), -np.asarray(scores, dtype=np.float64)))


def deletion_drops(scorer, words: Words, label: int, order: np.ndarray, k_max: int) -> tuple[float, np.ndarray]:
    """``p(y|x)`` and ``p(y|x) - p(y|x without order[:k])`` for k = 1..k_max."""
    k_max = min(k_max, len(words))
    texts = [words.text]
    keep = np.ones(len(words), dtype=np.uint8)
    for k in range(1, k_max + 1):
        keep[order[k - 1]] = 0
        texts.append(words.keep(keep))
    p = np.exp(scorer.log_prob(texts, [label] * len(texts)))
    return float(p[0]), p[0] - p[1:]


def aopc_at(drops: np.ndarray, k: int) -> float:
    """The drop after removing the top ``k`` words; NaN when fewer than ``k`` were removed
    (``--k-max`` below ``k``, or a document shorter than ``k`` words): never a wrong index."""
    return float(drops[k - 1]) if 1 <= k <= len(drops) else float("nan")


def evidence_recall(order: np.ndarray, evidence: np.ndarray, factor: float = 1.5) -> float:
    """Share of the evidence words among the top ``ceil(factor * |evidence|)`` words."""
    if len(evidence) == 0:
        return float("nan")
    k = math.ceil(factor * len(evidence))
    return len(set(order[:k].tolist()) & set(evidence.tolist())) / len(evidence)


def decisive_words(scorer, evidence: str, label: int, min_drop: float = 0.1) -> np.ndarray:
    """Positions (within the evidence sentence) of the words whose deletion alone lowers the
    target's p(y | evidence sentence) by more than ``min_drop``: the words the target uses."""
    w = split_words(evidence)
    texts = [evidence] + [w.keep(np.arange(len(w)) != j) for j in range(len(w))]
    p = np.exp(scorer.log_prob(texts, [label] * len(texts)))
    return np.flatnonzero(p[0] - p[1:] > min_drop)


# ----------------------------------------------------------------------------- benchmark
def evidence_sets(candidates: list[tuple[str, int]], n: int):
    """Groups of ``n`` candidate queries of one intent, in the order the groups fill up."""
    pending: dict[int, list[str]] = {}
    for text, label in candidates:
        pending.setdefault(label, []).append(text)
        if len(pending[label]) == n:
            yield pending.pop(label), label


def run_method(name, prior, scorer, proxy, doc, label, did) -> dict:
    for s in (scorer, proxy):
        if hasattr(s, "clear_memo"):
            s.clear_memo()  # each attribution starts cold: no reuse across methods
    q0, t0 = scorer.queries, getattr(scorer, "tokens_encoded", 0)
    start = time.perf_counter()
    if prior is None:  # random baseline
        scores = example_rng(0, f"random:{did}").random(len(split_words(doc)))  # not hash(): salted per process
        res = None
    else:
        res = prior.compute(PriorBatch([did], [doc], [label]))[0]
        scores = res.scores
    wall = time.perf_counter() - start
    return {
        "scores": scores,
        "wall_s": wall,
        "target_queries": scorer.queries - q0,
        "target_tokens": getattr(scorer, "tokens_encoded", 0) - t0,
        "proxy_queries": 0 if res is None else res.proxy_queries,
        "focus_words": -1 if res is None else res.focus_words,
    }


def summarise(rows: list[dict]) -> dict:
    keys = ["aopc@10", "aopc@50", "aopc@100", "mean_aopc", "recall150", "recall150_abs", "recall150_decisive", "p_full", "target_queries",
            "proxy_queries", "eval_queries", "wall_s", "target_tokens", "focus_words"]
    out = {}
    for k in keys:
        v = np.array([r[k] for r in rows], dtype=np.float64)
        v = v[np.isfinite(v)]  # recall over decisive words is undefined when there are none
        out[k] = float(v.mean()) if len(v) else float("nan")
        out[k + "_median"] = float(np.median(v)) if len(v) else float("nan")
    out["docs"] = len(rows)
    return out


def comparison(per_length: dict[str, dict], longest: str) -> dict:
    """Focus-LIME against full LIME (the issue's figures at the longest length); NaN for a
    method that was not run."""
    nan = dict.fromkeys(["mean_aopc", "p_full", "recall150", "recall150_abs", "recall150_decisive", "wall_s_median",
                         "target_queries", "proxy_queries"], float("nan"))

    def ratio(a: float, b: float) -> float:
        return float("nan") if math.isnan(a) or math.isnan(b) else a / b if b > 0 else float("inf")

    pick = {k: (v.get("focus_lime", nan), v.get("full_lime", nan)) for k, v in per_length.items()}
    f, u = pick[longest]
    return {
        "aopc_ratio_focus_over_full": ratio(f["mean_aopc"], u["mean_aopc"]),
        # A deletion cannot push p(y|x) below 0, so no attribution's AOPC exceeds p(y|x): this is
        # the largest ratio over full LIME that any method could reach on these documents.
        "aopc_ratio_ceiling": ratio(u["p_full"], u["mean_aopc"]),
        "evidence_recall_150": f["recall150"],
        "evidence_recall_150_full": u["recall150"],
        "evidence_recall_150_abs": f["recall150_abs"],
        "evidence_recall_150_abs_full": u["recall150_abs"],
        "evidence_recall_150_decisive": f["recall150_decisive"],
        "evidence_recall_150_decisive_full": u["recall150_decisive"],
        "evidence_recall_150_by_length": {k: fk["recall150"] for k, (fk, _) in pick.items()},
        "aopc_ratio_by_length": {k: ratio(fk["mean_aopc"], uk["mean_aopc"]) for k, (fk, uk) in pick.items()},
        "wall_ratio_focus_over_full": ratio(f["wall_s_median"], u["wall_s_median"]),
        "target_queries_focus": f["target_queries"],
        "target_queries_full": u["target_queries"],
        "proxy_queries_focus": f["proxy_queries"],
    }


def markdown(result: dict) -> str:
    lines = [
        f"# bench_long ({result['config']['target']} target, {result['config']['budget']} target queries per attribution)",
        "",
        "| words | method | docs | p(y\\|x) | mean AOPC | AOPC@10 | AOPC@50 | AOPC@100 | recall@150% | recall@150% \\|score\\| | recall@150% decisive | target q | proxy q | focus words | wall s (median) | target tokens |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for length, methods in result["per_length"].items():
        for m, s in methods.items():
            lines.append(
                f"| {length} | {m} | {s['docs']} | {s['p_full']:.3f} | {s['mean_aopc']:.3f} | {s['aopc@10']:.3f} | {s['aopc@50']:.3f} | "
                f"{s['aopc@100']:.3f} | {s['recall150']:.2f} | {s['recall150_abs']:.2f} | {s['recall150_decisive']:.2f} | {s['target_queries']:.0f} | {s['proxy_queries']:.0f} | "
                f"{s['focus_words']:.0f} | {s['wall_s_median']:.1f} | {s['target_tokens']:.0f} |"
            )
    lines += ["", "Summary (longest length):", "", "```", json.dumps(
        {k: result[k] for k in ("aopc_ratio_focus_over_full", "aopc_ratio_ceiling", "evidence_recall_150", "evidence_recall_150_abs", "wall_ratio_focus_over_full",
                                "target_queries_focus", "target_queries_full")}, indent=1), "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="lengths 256 and 1024, one document each, budget 50")
    ap.add_argument("--out", required=True, help="JSON output; a markdown table is written next to it (.md)")
    ap.add_argument("--lengths", type=int, nargs="+", default=[256, 1024, 4096])
    ap.add_argument("--docs", type=int, nargs="+", default=[4, 3, 2], help="documents per length (one value or one per length)")
    ap.add_argument("--budget", type=int, default=100, help="target queries per attribution (both methods)")
    ap.add_argument("--word-budget", type=int, default=FocusConfig.word_budget)
    ap.add_argument("--proxy-samples", type=int, default=FocusConfig.proxy_samples)
    ap.add_argument("--keep-fraction", type=float, default=FocusConfig.keep_fraction)
    ap.add_argument("--min-kept-units", type=int, default=FocusConfig.min_kept_units)
    ap.add_argument("--min-drop", type=float, default=FocusConfig.min_drop)
    ap.add_argument("--also-min-drop", type=float, nargs="*", default=[],
                    help="also run Focus-LIME with these min_drop values (methods focus_lime_drop<v>), side by side")
    ap.add_argument("--n-intents", type=int, default=20, help="size of the label space (CLINC150 intents)")
    ap.add_argument("--target-k", type=int, default=16, help="training queries per intent for the target SLM")
    ap.add_argument("--proxy-k", type=int, default=8, help="training queries per intent for the proxy SLM")
    ap.add_argument("--target", default="slm", help="'slm' (fine-tuned, sentence-chunked) or a causal LM name")
    ap.add_argument("--target-prompt", default="plain", choices=["plain", "cap"],
                    help="causal-LM target: LIME's plain prompt, or the class-aware prompt (instruction + label list)")
    ap.add_argument("--renormalise", action="store_true",
                    help="causal-LM target: p(y) renormalised over the label space (a small LLM gives p(y) ~ 1e-9 without)")
    ap.add_argument("--device", default="cpu", help="torch device of every model (e.g. cuda)")
    ap.add_argument("--k-max", type=int, default=100)
    ap.add_argument("--filler-max-p", type=float, default=0.1, help="veto fillers with target p(gold) above this")
    ap.add_argument("--evidence-sentences", type=int, default=1,
                    help="queries of the gold intent planted per document; with n > 1 each one alone settles the label")
    ap.add_argument("--target-pooling", default="max", choices=["max", "logsumexp", "mean"],
                    help="how the chunked SLM target combines its chunks (see ClassifierScorer)")
    ap.add_argument("--target-chunking", default="sentence", choices=["sentence", "window"],
                    help="SLM target reads the document sentence by sentence, or in windows of --target-max-length "
                         "tokens (a word's context then depends on every word before it, as in an LLM)")
    ap.add_argument("--target-max-length", type=int, default=64, help="tokens per SLM target chunk")
    ap.add_argument("--methods", nargs="+", default=["full_lime", "focus_lime", "random"],
                    choices=["full_lime", "focus_lime", "random"], help="ratios need full_lime and focus_lime")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.evidence_sentences < 1:
        ap.error("--evidence-sentences must be >= 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.manual_seed(args.seed)
    if args.quick:
        args.lengths, args.docs = [256, 1024], [1]
        args.budget = min(args.budget, 50)
    docs_per = args.docs * len(args.lengths) if len(args.docs) == 1 else args.docs
    if len(docs_per) != len(args.lengths):
        ap.error("--docs takes one value or one per length")

    # Label space: n intents plus "other"; fillers come from the remaining intents. Some of the
    # remaining-intent queries train "other" (so that the classifier has somewhere to put
    # fillers); fillers are drawn from the rest.
    train = load_split(DataSpec(preset="clinc150"), "train")
    test = load_split(DataSpec(preset="clinc150"), "test")
    rng = np.random.default_rng(args.seed)
    all_names = train.label_names
    intents = sorted(rng.choice(len(all_names), size=args.n_intents, replace=False).tolist())
    names = [all_names[i] for i in intents] + ["other"]
    other = len(names) - 1
    remap = {c: j for j, c in enumerate(intents)}
    tr_text, tr_label = train.dataset["text"], train.dataset["label"]
    by_class = {j: [t for t, y in zip(tr_text, tr_label) if remap.get(y) == j] for j in range(other)}
    pool = [tr_text[i] for i in rng.permutation(len(tr_text)) if tr_label[i] not in remap]
    n_other = 4 * args.target_k * 2  # two disjoint "other" sets (target, proxy), the rest are fillers
    by_class[other] = pool[:n_other]
    fillers = pool[n_other:]

    def subset(k: int, seed: int, half: int):
        r = np.random.default_rng(seed)
        texts, labels = [], []
        for j, texts_j in by_class.items():
            if j == other:
                chosen = texts_j[half * n_other // 2 : half * n_other // 2 + 4 * k]
            else:
                chosen = [texts_j[i] for i in r.choice(len(texts_j), size=min(k, len(texts_j)), replace=False)]
            texts.extend(chosen)
            labels.extend([j] * len(chosen))
        return texts, labels

    t0 = time.perf_counter()
    tgt_dir = finetune(*subset(args.target_k, args.seed, 0), names, epochs=2, seed=args.seed, tag=f"target-k{args.target_k}")
    prx_dir = finetune(*subset(args.proxy_k, args.seed + 1, 1), names, epochs=2, seed=args.seed + 1, tag=f"proxy-k{args.proxy_k}")
    setup_s = time.perf_counter() - t0
    proxy = classifier_scorer(prx_dir, names, f"{SLM}-clinc{args.n_intents}-k{args.proxy_k}")
    proxy.model.to(args.device)
    tgt_id = f"{SLM}-clinc{args.n_intents}-k{args.target_k}"
    if (args.target_chunking, args.target_max_length) != ("sentence", 64):
        tgt_id += f"-{args.target_chunking}{args.target_max_length}"
    if args.target == "slm":
        target = classifier_scorer(tgt_dir, names, tgt_id, args.target_pooling, args.target_chunking, args.target_max_length)
        target.model.to(args.device)
        target_id = target.model_id
    else:
        from priors.prompts import class_aware_template, plain_template
        from priors.scorer import LabelScorer

        lm, tok = load_causal_lm(args.target)
        template = plain_template() if args.target_prompt == "plain" else class_aware_template(names)
        target = LabelScorer(lm.to(args.device), tok, template, names, renormalise=args.renormalise, batch_size=4,
                             max_text_tokens=16384)
        target_id = f"{args.target}-{args.target_prompt}" + ("-renormalised" if args.renormalise else "")

    # Evidence: held-out test queries of the label intents (>= 5 words) that the target gets right alone.
    te = [(t, remap[y]) for t, y in zip(test.dataset["text"], test.dataset["label"]) if y in remap and len(split_words(t)) >= 5]
    pick = rng.permutation(len(te))[: 4 * sum(docs_per) * args.evidence_sentences + 20 * args.evidence_sentences**2]
    cand = [te[i] for i in pick]
    alone = target.log_prob([sentence(t) for t, _ in cand], [y for _, y in cand])
    pred_ok = [c for c, lp in zip(cand, alone) if lp > math.log(0.5)]
    acc_p = {"proxy_p_gold_median": float(np.median(np.exp(proxy.log_prob([sentence(t) for t, _ in cand], [y for _, y in cand])))),
             "target_p_gold_median": float(np.median(np.exp(alone)))}
    log.info("evidence candidates: %d of %d with target p(gold) > 0.5; %s", len(pred_ok), len(cand), acc_p)

    focus_cfg = FocusConfig(min_words=0, word_budget=args.word_budget, proxy_samples=args.proxy_samples,
                            keep_fraction=args.keep_fraction,
                            min_kept_units=args.min_kept_units, min_drop=args.min_drop, seed=args.seed)

    def focus_lime(cfg: FocusConfig) -> LimePrior:
        return LimePrior(target, model_id=target_id, n_samples=args.budget, seed=args.seed,
                         focus=FocusSelector(proxy, cfg, proxy_id=proxy.model_id))

    full = LimePrior(target, model_id=target_id, n_samples=args.budget, seed=args.seed)
    methods = {m: prior for m, prior in {"full_lime": full, "focus_lime": focus_lime(focus_cfg), "random": None}.items()
               if m in args.methods}
    methods.update({f"focus_lime_drop{v:g}": focus_lime(dataclasses.replace(focus_cfg, min_drop=v)) for v in args.also_min_drop})

    per_length: dict[str, dict] = {}
    raw: list[dict] = []
    ev_iter = evidence_sets(pred_ok, args.evidence_sentences)
    for length, n_docs in zip(args.lengths, docs_per):
        rows: dict[str, list[dict]] = {m: [] for m in methods}
        for d in tqdm(range(n_docs), desc=f"{length} words"):
            ev_texts, label = next(ev_iter, (None, None))
            if ev_texts is None:
                raise SystemExit(f"too few evidence candidates the target classifies alone for {sum(docs_per)} documents")
            doc_rng = np.random.default_rng([args.seed, length, d])
            # Fillers the target itself reads as the gold label would be evidence too: veto them.
            accept = lambda block, y=label: np.exp(target.log_prob(block, [y] * len(block))) < args.filler_max_p  # noqa: E731
            doc, evidence_per = build_document(ev_texts, fillers, length, doc_rng, accept)
            evidence = np.concatenate(evidence_per)
            words = split_words(doc)
            did = f"len{length}-doc{d}"
            decisive = np.concatenate([ids[decisive_words(target, sentence(t), label)] for t, ids in zip(ev_texts, evidence_per)])
            for m, prior in methods.items():
                r = run_method(m, prior, target, proxy, doc, label, did)
                order = deletion_order(r["scores"], np.random.default_rng([args.seed, length, d, 7]))
                order_abs = deletion_order(np.abs(r["scores"]), np.random.default_rng([args.seed, length, d, 7]))
                q0 = target.queries
                p_full, drops = deletion_drops(target, words, label, order, args.k_max)
                r.update({
                    "aopc@10": aopc_at(drops, 10), "aopc@50": aopc_at(drops, 50), "aopc@100": aopc_at(drops, 100),
                    "mean_aopc": float(drops.mean()), "recall150": evidence_recall(order, evidence), "p_full": p_full,
                    "recall150_abs": evidence_recall(order_abs, evidence),
                    "recall150_decisive": evidence_recall(order, decisive), "decisive_words": len(decisive),
                    "eval_queries": target.queries - q0,
                })
                rows[m].append(r)
                raw.append({"length": length, "doc": d, "method": m, "words": len(words), "evidence": ev_texts,
                            "label": names[label], **{k: v for k, v in r.items() if k != "scores"},
                            "top10": [words.words[j] for j in order[:10]]})
                log.info("%s %s: mean AOPC %.3f recall %.2f wall %.1fs queries %d/%d (target/proxy) focus %d words",
                         did, m, r["mean_aopc"], r["recall150"], r["wall_s"], r["target_queries"], r["proxy_queries"], r["focus_words"])
        per_length[str(length)] = {m: summarise(v) for m, v in rows.items()}

    result = {
        "config": {**vars(args), "docs": docs_per, "intents": names, "target": target_id, "proxy": proxy.model_id,
                   "focus": FocusSelector(proxy, focus_cfg, proxy_id=proxy.model_id).config(), "torch_threads": torch.get_num_threads()},
        "setup_s": setup_s,
        "models": acc_p,
        **comparison(per_length, str(args.lengths[-1])),
        "per_length": per_length,
        "documents": raw,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=float))
    md = markdown(result)
    out.with_suffix(".md").write_text(md)
    print(md)
    return result


if __name__ == "__main__":
    main()

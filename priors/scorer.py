"""Label-probability scorer over a frozen causal LM (docs/design.md#scorer).

Public API (used by the prior methods and by ``priors.quality``)::

    scorer = LabelScorer(model, tokenizer, template, label_names, *, contrast="none", contrast_m=8,
                         calibrate=False, batch_size=64, batch_tokens=4096, max_text_tokens=512)
    scorer.label_logprobs(texts) -> torch.Tensor [n, K] float64   # log p(label_k | prompt(text_i)),
                                                                # minus the content-free bias if calibrate
    scorer.log_prob(texts, labels, candidates=None) -> np.ndarray [n]  # the prior's target (see below)
    scorer.candidates_for(text, gold) -> tuple[int, ...] | None    # gold + m most confusable (top_m)
    scorer.words_within_budget(words) -> int                       # words that fit max_text_tokens

``log p(y | prompt(x))`` is the teacher-forced log-probability of the label's tokens after the
prompt. ``contrast`` chooses what :meth:`LabelScorer.log_prob` returns (see ``priors/SCORING.md``):

- ``none``: ``log p(y | ·)`` itself (CAP as published);
- ``full``: renormalised over the label space, ``log softmax_{y' ∈ Y} s(y')`` at ``y``;
- ``top_m``: renormalised over ``{y} ∪ C(x)``, ``C(x)`` the ``m`` labels the LLM scores highest on
  the *unmasked* text (the neighbours CAP should separate ``y`` from), fixed per example.

``s(y') = log p(y' | ·)``, minus ``log p̄(y' | content-free)`` when ``calibrate`` (the label bias
for an ``N/A`` / empty text, averaged in probability; Zhao et al. 2021, "Calibrate before use").

Cost. The text-independent prefix (instruction, label list, demonstrations, ``Text:``) is run
once and its keys/values are shared by every row (:mod:`priors.shared_attention`). Scoring a set
of labels runs each perturbation's body once, captures its keys/values, and runs all the labels'
continuations as one row on that body (a prefix tree of label tokens, :mod:`priors.label_tree`).
Rows are chunked by padded tokens (``batch_tokens``) as well as by count, in a fixed order per
call, so a call's result depends only on its own rows (the prior methods call once per example:
priors never depend on which examples share a batch).
"""

from __future__ import annotations

import inspect
import logging
from contextlib import contextmanager
from typing import Sequence

import numpy as np
import torch

from eg_train.foundation.data.source import readable_label
from eg_train.foundation.words import Words
from priors.label_tree import LabelTree, build_label_tree
from priors.prompts import PromptTemplate
from priors.shared_attention import SHARED_PREFIX_ATTENTION, register_shared_prefix_attention, shared_prefix_attention

log = logging.getLogger(__name__)

CONTRASTS = ("none", "full", "top_m")
CONTENT_FREE_TEXTS = ("N/A", "")
EXACT_TOP = 64  # per position, the largest logits recomputed in float32 for a bf16 model
__all__ = ["CONTRASTS", "LabelScorer", "shared_prefix_attention"]


@contextmanager
def _attention_implementation(config, name: str):
    """Switch a model's attention backend for the duration of a call (restored on exit)."""
    previous = config._attn_implementation
    config._attn_implementation = name
    try:
        yield
    finally:
        config._attn_implementation = previous


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Two paths' hidden states agree: to 1e-3 in float32; in bf16 (two summation orders of
    ~3-digit numbers) to 2 % of the reference's norm."""
    if a.dtype == torch.float32 and b.dtype == torch.float32:
        return torch.allclose(a, b, atol=1e-3, rtol=1e-3)
    a, b = a.float(), b.float()
    return bool(torch.linalg.vector_norm(a - b) <= 0.02 * torch.linalg.vector_norm(b).clamp_min(1e-6))


class LabelScorer:
    """Batched label log-probabilities under a prompt template, with a cached prefix.

    Args:
        model: a causal LM (``AutoModelForCausalLM``), frozen.
        tokenizer: its tokenizer.
        template: the prompt template (plain or class-aware, optionally with demonstrations).
        label_names: the label space, in label-id order.
        contrast: ``none`` | ``full`` | ``top_m`` (module docstring).
        contrast_m: neighbours in the ``top_m`` contrast.
        calibrate: subtract the content-free label bias before renormalising (needs a contrast).
        renormalise: legacy spelling of ``contrast="full"``.
        batch_size: rows per forward pass at most.
        batch_tokens: padded tokens per forward pass at most (long rows get smaller batches).
        max_text_tokens: the text part is truncated to this many tokens (counted in ``truncated``).
    """

    def __init__(
        self,
        model,
        tokenizer,
        template: PromptTemplate,
        label_names: Sequence[str],
        *,
        contrast: str = "none",
        contrast_m: int = 8,
        calibrate: bool = False,
        renormalise: bool = False,
        batch_size: int = 64,
        batch_tokens: int = 4096,
        max_text_tokens: int = 512,
    ) -> None:
        if renormalise:
            if contrast not in ("none", "full"):
                raise ValueError(f"renormalise=True means contrast='full'; got contrast={contrast!r} as well")
            contrast = "full"
        if contrast not in CONTRASTS:
            raise ValueError(f"contrast must be one of {CONTRASTS}, got {contrast!r}")
        if calibrate and contrast == "none":
            raise ValueError("calibrate subtracts a label bias before renormalising: it needs contrast 'full' or 'top_m'")
        if contrast == "top_m" and not 1 <= contrast_m < len(label_names):
            raise ValueError(f"contrast_m must be in [1, {len(label_names) - 1}] for {len(label_names)} labels, got {contrast_m}")
        self.model = model
        self.tokenizer = tokenizer
        self.template = template
        self.label_names = list(label_names)
        self.contrast = contrast
        self.contrast_m = contrast_m
        self.calibrate = calibrate
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens
        self.max_text_tokens = max_text_tokens
        self.queries = 0  # prompts scored (one per perturbation), the budget unit of the paper
        self.truncated = 0
        self._encode = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]
        bos = tokenizer.bos_token_id
        adds_bos = bos is not None and tokenizer("a")["input_ids"][:1] == [bos]
        self.prefix_ids = ([bos] if adds_bos else []) + (self._encode(template.prefix) if template.prefix else [])
        self.tail_ids = self._encode(template.tail_part())
        self.label_ids = [self._encode(template.answer.format(label=readable_label(n))) for n in self.label_names]
        if any(len(ids) == 0 for ids in self.label_ids):
            raise ValueError("a label name tokenises to nothing; check label_names")
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        # Leading ids of the body that do not depend on the text (``Text:`` of ``Text: {text}``).
        self._head = template.text_part("")
        head = self._head.rstrip()
        self._head_ids = self._encode(head) if head else []
        self._prefix_kv: dict[tuple[int, ...], list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self._trees: dict[tuple[int, ...], LabelTree] = {}
        self._bias: np.ndarray | None = None
        self._lm_head = model.get_output_embeddings()
        self._softcap = getattr(model.config, "final_logit_softcapping", None)
        self._backbone = model.base_model
        # transformers >= 5.2x renamed ``past_key_values`` to ``cache``; support both.
        params = inspect.signature(self._backbone.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._shared_prefix: bool | None = None  # decided on first use (see _use_shared_prefix)

    @property
    def renormalise(self) -> bool:
        """True for the full renormalisation over the label space (legacy flag)."""
        return self.contrast == "full"

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The LLM's weight dtype (``torch.bfloat16`` under ``dtype: bfloat16``)."""
        return next(self.model.parameters()).dtype

    # ----------------------------------------------------------------------------------- prefix
    def _prefix_layers(self, prefix: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The keys/values of ``prefix`` per layer (``[1, Hkv, P, D]``), computed once.

        A plain ``DynamicCache`` keeps every key in every layer: the model's default cache keeps
        only the last ``window - 1`` keys of its sliding-window layers (Gemma 3), which is enough
        for generation but not for rows that start after a prefix longer than the window."""
        from transformers import DynamicCache

        key = tuple(prefix)
        if key not in self._prefix_kv:
            ids = torch.tensor([prefix], device=self.device)
            with torch.inference_mode():
                out = self._backbone(input_ids=ids, use_cache=True, **{self._cache_kw: DynamicCache()})
            cache = getattr(out, "cache", None) or out.past_key_values
            self._prefix_kv[key] = [(layer.keys, layer.values) for layer in cache.layers]
        return self._prefix_kv[key]

    def _prefix_cache(self, prefix: list[int], batch: int):
        from transformers import DynamicCache

        if not prefix:
            return None
        kv = self._prefix_layers(prefix)
        return DynamicCache(ddp_cache_data=[(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in kv])

    def _use_shared_prefix(self, prefix: list[int]) -> bool:
        """Whether the shared-prefix attention applies to this model (checked once, on probe
        rows, against the expanded-cache path; any mismatch falls back to that path)."""
        if self._shared_prefix is None:
            self._shared_prefix = False
            if getattr(self.model, "_supports_attention_backend", False) and register_shared_prefix_attention():
                probe = [self.tail_ids + self.label_ids[0], self.label_ids[-1] + self.tail_ids + self.label_ids[-1]]
                lengths = [len(r) for r in probe]
                ids = torch.full((2, max(lengths)), self.pad_id, dtype=torch.long)
                for r, seq in enumerate(probe):
                    ids[r, : len(seq)] = torch.tensor(seq)
                try:
                    fast = self._hidden_shared_prefix(ids, lengths, prefix)
                    ref = self._hidden_cached_prefix(ids, lengths, prefix)
                    ok = all(_close(fast[r, :n], ref[r, :n]) for r, n in enumerate(lengths))
                except Exception as err:  # an attention layout this function does not cover
                    log.warning("shared-prefix attention unavailable for this model (%s); expanding the cache", err)
                    ok = False
                else:
                    if not ok:
                        log.warning("shared-prefix attention disagrees with the model's own attention; expanding the cache")
                self._shared_prefix = ok
        return self._shared_prefix

    # ---------------------------------------------------------------------------- forward paths
    @torch.inference_mode()
    def _hidden_shared_prefix(
        self, ids: torch.Tensor, lengths: list[int], prefix: list[int], capture: dict | None = None
    ) -> torch.Tensor:
        B, L = ids.shape
        P = len(prefix)
        own = torch.arange(L)
        valid = own.unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)  # [B, L] keys that are not padding
        allowed = (own.unsqueeze(1) >= own.unsqueeze(0)).unsqueeze(0) & valid.unsqueeze(1)  # [B, L, L]
        pos = torch.arange(P, P + L).unsqueeze(0).expand(B, -1)
        kv = self._prefix_layers(prefix)  # before switching the backend: it runs the model itself
        with _attention_implementation(self._backbone.config, SHARED_PREFIX_ATTENTION):
            return self._backbone(
                input_ids=ids.to(self.device),
                attention_mask=allowed.unsqueeze(1).to(self.device),  # 4-D: used as is
                position_ids=pos.to(self.device),
                use_cache=False,
                shared_prefix=kv,
                eg_positions=pos.to(self.device),
                eg_capture=capture,
            ).last_hidden_state

    @torch.inference_mode()
    def _hidden_cached_prefix(self, ids: torch.Tensor, lengths: list[int], prefix: list[int]) -> torch.Tensor:
        B, L = ids.shape
        P = len(prefix)
        mask = torch.zeros((B, P + L), dtype=torch.long)
        mask[:, :P] = 1
        for r, n in enumerate(lengths):
            mask[r, P : P + n] = 1
        pos = torch.arange(P, P + L).unsqueeze(0).expand(B, -1)
        return self._backbone(
            input_ids=ids.to(self.device),
            attention_mask=mask.to(self.device),
            position_ids=pos.to(self.device),
            use_cache=bool(prefix),
            **{self._cache_kw: self._prefix_cache(prefix, B)},
        ).last_hidden_state

    @torch.inference_mode()
    def _hidden_tree(self, trees: list[LabelTree], body_lengths: list[int], body_kv: dict, prefix: list[int]) -> torch.Tensor:
        """Hidden states of the label-tree nodes of each row, on ``[prefix ; body ; tree]``."""
        B, P = len(trees), len(prefix)
        N = max(len(t) for t in trees)
        Lb = next(iter(body_kv.values()))[0].shape[2]
        ids = torch.full((B, N), self.pad_id, dtype=torch.long)
        allowed = torch.eye(N, dtype=torch.bool).repeat(B, 1, 1)  # padding nodes see themselves only
        pos = torch.zeros((B, N), dtype=torch.long)
        for r, (t, lb) in enumerate(zip(trees, body_lengths)):
            n = len(t)
            ids[r, :n] = torch.from_numpy(t.tokens)
            allowed[r, :n, :n] = torch.from_numpy(t.ancestors)
            pos[r] = P + lb  # padding: any position inside the row
            pos[r, :n] = P + lb + torch.from_numpy(t.depth)
        past = {
            "kv": body_kv,
            "valid": torch.arange(Lb).unsqueeze(0) < torch.tensor(body_lengths).unsqueeze(1),
            "positions": torch.arange(P, P + Lb).unsqueeze(0).expand(B, -1).to(self.device),
        }
        kv = self._prefix_layers(prefix)
        with _attention_implementation(self._backbone.config, SHARED_PREFIX_ATTENTION):
            return self._backbone(
                input_ids=ids.to(self.device),
                attention_mask=allowed.unsqueeze(1).to(self.device),
                position_ids=pos.to(self.device),
                use_cache=False,
                shared_prefix=kv,
                eg_positions=pos.to(self.device),
                eg_past=past,
            ).last_hidden_state

    def _token_logprobs(self, hidden: torch.Tensor, rows: np.ndarray, targets: np.ndarray) -> torch.Tensor:
        """``log p(targets[q] | hidden[rows[q]])`` (float64, CPU), projecting the vocabulary in
        slices so that ``[positions, vocab]`` logits never dominate memory."""
        out = torch.empty(len(rows), dtype=torch.float64)
        vocab = self._lm_head.weight.shape[0]
        step = max(1, (1 << 24) // vocab)  # ~64 MB of float32 logits per slice
        rows_t, tgt_t = torch.as_tensor(rows), torch.as_tensor(targets)
        for a in range(0, hidden.shape[0], step):
            sel = torch.nonzero((rows_t >= a) & (rows_t < a + step)).squeeze(1)
            if len(sel) == 0:
                continue
            h = hidden[a : a + step]
            logits = self._lm_head(h).float()
            r = (rows_t[sel] - a).to(logits.device)
            if logits.dtype != h.dtype:  # a half-precision model: the logits that matter in float32
                logits = self._exact_logits(h, logits, r, tgt_t[sel].to(logits.device))
            if self._softcap is not None:  # Gemma-style final logit soft-capping
                logits = torch.tanh(logits / self._softcap) * self._softcap
            lse = torch.logsumexp(logits, dim=-1)
            out[sel] = (logits[r, tgt_t[sel].to(logits.device)] - lse[r]).double().cpu()
        return out

    def _exact_logits(self, hidden: torch.Tensor, logits: torch.Tensor, rows: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Recompute in float32 the logits a log-probability depends on most, for a bf16 model.

        A bf16 logit carries ~3 significant digits (0.06 at a logit of 20), so the target's
        logit and the ``EXACT_TOP`` largest of each row (which dominate the log-sum-exp) are
        recomputed as float32 dot products of the (bf16) hidden state with the (bf16) output
        embeddings; the long tail keeps its bf16 values, whose rounding averages out in the sum."""
        w = self._lm_head.weight
        bias = getattr(self._lm_head, "bias", None)
        hf = hidden.float()
        top = logits.topk(min(EXACT_TOP, logits.shape[-1]), dim=-1).indices  # [n, k]
        exact = torch.einsum("nd,nkd->nk", hf, w[top].float())
        if bias is not None:
            exact = exact + bias[top].float()
        logits = logits.scatter(1, top, exact)
        t_exact = (hf[rows] * w[targets].float()).sum(-1)
        if bias is not None:
            t_exact = t_exact + bias[targets].float()
        logits[rows, targets] = t_exact
        return logits

    # ------------------------------------------------------------------------------ batching
    def _chunks(self, lengths: Sequence[int]) -> list[list[int]]:
        """Split rows (indices into ``lengths``, sorted by length) into batches of at most
        ``batch_size`` rows and ``batch_tokens`` padded tokens; a fixed function of the lengths."""
        order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
        chunks: list[list[int]] = []
        cur: list[int] = []
        for i in order:
            if cur and (len(cur) >= self.batch_size or (len(cur) + 1) * lengths[i] > self.batch_tokens):
                chunks.append(cur)
                cur = []
            cur.append(i)
        if cur:
            chunks.append(cur)
        return chunks

    def _join_head(self, bodies: list[list[int]]) -> tuple[list[int], list[list[int]]]:
        """The cached prefix, extended by the body's constant head (``Text:``) when every body
        starts with it (same ids at the same positions, so the same probabilities)."""
        head = self._head_ids
        if head and bodies and all(b[: len(head)] == head and len(b) > len(head) for b in bodies):
            return self.prefix_ids + head, [b[len(head) :] for b in bodies]
        return self.prefix_ids, bodies

    @torch.inference_mode()
    def _score_rows(self, rows: list[tuple[list[int], int]]) -> np.ndarray:
        """Sum of log-probs of the last ``n_label`` tokens of each row (after the cached prefix)."""
        out = np.empty(len(rows), dtype=np.float64)
        head = self._head_ids
        if head and rows and all(seq[: len(head)] == head and len(seq) - len(head) > n for seq, n in rows):
            prefix, rows = self.prefix_ids + head, [(seq[len(head) :], n) for seq, n in rows]
        else:
            prefix = self.prefix_ids
        shared = bool(prefix) and self._use_shared_prefix(prefix)
        for idx in self._chunks([len(seq) for seq, _ in rows]):
            lengths = [len(rows[i][0]) for i in idx]
            ids = torch.full((len(idx), max(lengths)), self.pad_id, dtype=torch.long)
            for r, i in enumerate(idx):
                ids[r, : lengths[r]] = torch.tensor(rows[i][0])
            hidden = (self._hidden_shared_prefix if shared else self._hidden_cached_prefix)(ids, lengths, prefix)
            # Project only the positions that predict label tokens.
            rr, cc, tgt = [], [], []
            for r, i in enumerate(idx):
                seq, n_label = rows[i]
                for j in range(len(seq) - n_label, len(seq)):
                    rr.append(r)
                    cc.append(j - 1)
                    tgt.append(seq[j])
            lp = self._token_logprobs(hidden[rr, cc], np.arange(len(rr)), np.asarray(tgt))
            sums = torch.zeros(len(idx), dtype=torch.float64).index_add_(0, torch.tensor(rr), lp)
            out[idx] = sums.numpy()
        return out

    @torch.inference_mode()
    def _set_scores(self, bodies: list[list[int]], label_sets: list[tuple[int, ...]]) -> list[np.ndarray]:
        """``log p(k | prefix + body_i)`` for every ``k`` in ``label_sets[i]`` (one array per body):
        one forward per body, then every label of its set on the body's keys/values."""
        prefix, stripped = self._join_head(bodies)
        if not (prefix and self._use_shared_prefix(prefix)):  # fallback: one row per (body, label)
            rows = [(b + self.label_ids[k], len(self.label_ids[k])) for b, s in zip(bodies, label_sets) for k in s]
            flat = self._score_rows(rows)
            return np.split(flat, np.cumsum([len(s) for s in label_sets])[:-1])
        trees = [self._tree(s) for s in label_sets]
        out: list[np.ndarray] = [np.empty(0)] * len(bodies)
        for idx in self._chunks([len(b) for b in stripped]):
            lengths = [len(stripped[i]) for i in idx]
            ids = torch.full((len(idx), max(lengths)), self.pad_id, dtype=torch.long)
            for r, i in enumerate(idx):
                ids[r, : lengths[r]] = torch.tensor(stripped[i])
            capture: dict = {}
            hidden = self._hidden_shared_prefix(ids, lengths, prefix, capture=capture)
            last = hidden[torch.arange(len(idx)), torch.tensor(lengths) - 1]  # predicts each label's first token
            rows = np.concatenate([np.full(len(trees[i].labels), r) for r, i in enumerate(idx)])
            first = self._token_logprobs(last, rows, np.concatenate([trees[i].first for i in idx]))
            scores = list(torch.split(first, [len(trees[i].labels) for i in idx]))
            # The trees, in sub-batches bounded by padded tree tokens, on the captured bodies.
            sub_rows = [r for r, i in enumerate(idx) if len(trees[i])]
            for sub in self._chunks_of([len(trees[idx[r]]) for r in sub_rows], sub_rows):
                sel = torch.tensor(sub)
                body_kv = {layer: (k[sel], v[sel]) for layer, (k, v) in capture.items()}
                sub_trees = [trees[idx[r]] for r in sub]
                h = self._hidden_tree(sub_trees, [lengths[r] for r in sub], body_kv, prefix)
                n_max = h.shape[1]
                flat_rows = np.concatenate([j * n_max + t.node for j, t in enumerate(sub_trees)])
                lp = self._token_logprobs(h.reshape(-1, h.shape[-1]), flat_rows, np.concatenate([t.target for t in sub_trees]))
                parts = torch.split(lp, [len(t.node) for t in sub_trees])
                for r, t, part in zip(sub, sub_trees, parts):
                    scores[r] = scores[r].index_add(0, torch.from_numpy(t.slot), part)
            for r, i in enumerate(idx):
                out[i] = scores[r].numpy()
        return out

    def _chunks_of(self, lengths: list[int], items: list[int]) -> list[list[int]]:
        return [[items[j] for j in c] for c in self._chunks(lengths)]

    def _tree(self, labels: tuple[int, ...]) -> LabelTree:
        if labels not in self._trees:
            self._trees[labels] = build_label_tree(self.label_ids, labels)
        return self._trees[labels]

    # ------------------------------------------------------------------------------- public
    def text_ids(self, text: str) -> list[int]:
        """Token ids of the text part of the body (``Text: <text>``), truncated."""
        ids = self._encode(self.template.text_part(text))
        if len(ids) > self.max_text_tokens:
            self.truncated += 1
            ids = ids[: self.max_text_tokens]
        return ids

    def words_within_budget(self, words: Words) -> int:
        """How many leading words of ``words`` fit in ``max_text_tokens`` (all of them for a text
        that fits): words past the budget never reach the LLM, so they carry no evidence."""
        part = self.template.text_part(words.text)
        enc = self.tokenizer(part, add_special_tokens=False, return_offsets_mapping=True)
        if len(enc["input_ids"]) <= self.max_text_tokens:
            return len(words)
        cut = enc["offset_mapping"][self.max_text_tokens - 1][1] - len(self._head)
        return sum(1 for _, end in words.spans if end <= cut)

    def content_free_bias(self) -> np.ndarray:
        """``log p̄(k | content-free)`` per label: the label distribution for ``N/A`` and an empty
        text (each renormalised over the labels), averaged in probability. Computed once."""
        if self._bias is None:
            raw = self._all_label_scores(list(CONTENT_FREE_TEXTS))
            norm = raw - np.logaddexp.reduce(raw, axis=1, keepdims=True)
            self._bias = np.logaddexp.reduce(norm, axis=0) - np.log(len(CONTENT_FREE_TEXTS))
        return self._bias

    def _all_label_scores(self, texts: Sequence[str]) -> np.ndarray:
        bodies = [self.text_ids(t) + self.tail_ids for t in texts]
        every = tuple(range(len(self.label_ids)))
        return np.stack(self._set_scores(bodies, [every] * len(bodies))) if bodies else np.empty((0, len(every)))

    def label_logprobs(self, texts: Sequence[str], *, calibrate: bool | None = None) -> torch.Tensor:
        """``[n, K]`` float64: ``log p(label_k | prompt(text_i))`` over the whole label space
        (teacher forced, not renormalised), minus :meth:`content_free_bias` when ``calibrate``
        (default: the scorer's own setting). Argmax / rank of the gold label give competence."""
        self.queries += len(texts)
        scores = self._all_label_scores(texts)
        if self.calibrate if calibrate is None else calibrate:
            scores = scores - self.content_free_bias()
        return torch.from_numpy(scores)

    def candidates_for(self, text: str, gold: int) -> tuple[int, ...] | None:
        """The ``top_m`` contrast set of an example: its gold label and the ``contrast_m`` labels
        the LLM scores highest on ``text`` (the unmasked text); ``None`` for other contrasts."""
        if self.contrast != "top_m":
            return None
        s = self.label_logprobs([text])[0].numpy().copy()
        s[gold] = -np.inf
        rivals = np.argsort(-s, kind="stable")[: self.contrast_m]
        return tuple(sorted({int(gold), *map(int, rivals)}))

    def log_prob(
        self, texts: Sequence[str], labels: Sequence[int], candidates: Sequence[Sequence[int]] | None = None
    ) -> np.ndarray:
        """The prior's log-probability of ``labels[i]`` for ``texts[i]`` under the configured
        contrast. ``candidates[i]`` is the label set of row ``i`` for ``top_m`` (from
        :meth:`candidates_for` on the unmasked text; computed per row when not given)."""
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        bodies = [self.text_ids(t) + self.tail_ids for t in texts]
        if self.contrast == "none":
            self.queries += len(texts)
            return self._score_rows([(b + self.label_ids[y], len(self.label_ids[y])) for b, y in zip(bodies, labels)])
        if self.contrast == "full":
            sets = [tuple(range(len(self.label_ids)))] * len(texts)
        else:
            if candidates is None:
                candidates = [self.candidates_for(t, y) for t, y in zip(texts, labels)]
            sets = [tuple(sorted(set(map(int, c)))) for c in candidates]
            if any(int(y) not in s for y, s in zip(labels, sets)):
                raise ValueError("each row's candidate set must contain its gold label")
        self.queries += len(texts)
        bias = self.content_free_bias() if self.calibrate else None
        out = np.empty(len(texts), dtype=np.float64)
        for i, (s, lp) in enumerate(zip(sets, self._set_scores(bodies, sets))):
            if bias is not None:
                lp = lp - bias[list(s)]
            out[i] = lp[s.index(int(labels[i]))] - np.logaddexp.reduce(lp)
        return out

    def full_prompt_log_prob(self, text: str, label: int) -> float:
        """Reference: the same quantity from one uncached forward over the whole prompt."""
        ids = self.prefix_ids + self.text_ids(text) + self.tail_ids + self.label_ids[label]
        n = len(self.label_ids[label])
        with torch.inference_mode():
            # Only the positions that predict the label: the vocabulary over a 2,000-token prompt
            # would cost more than the whole forward (Gemma's vocabulary is 262k).
            logits = self.model(input_ids=torch.tensor([ids], device=self.device), logits_to_keep=n + 1).logits[0].float()
        lp = torch.log_softmax(logits[:-1], dim=-1)
        return float(lp[torch.arange(n), torch.tensor(ids[-n:]).to(lp.device)].sum())

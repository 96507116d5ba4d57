"""Label-probability scorer over a frozen causal LM (SPEC §2 "Scorer").

``log p(y | prompt(x))`` is the teacher-forced log-probability of the label's tokens after the
prompt. The text-independent prompt prefix is run once; its KV cache is expanded over every
batch of perturbations, so a perturbation costs only its own text, the ``Label:`` tail and
the label tokens. Optionally the probability is renormalised over the whole label space.
"""

from __future__ import annotations

import inspect
import logging
from typing import Sequence

import numpy as np
import torch

from eg_train.data.source import readable_label
from priors.prompts import PromptTemplate

log = logging.getLogger(__name__)


class LabelScorer:
    """Batched ``log p(label | template(text))`` with a cached prefix.

    Args:
        model: a causal LM (``AutoModelForCausalLM``), frozen.
        tokenizer: its tokenizer.
        template: the prompt template (plain or class-aware).
        label_names: the label space, in label-id order.
        renormalise: divide by the sum over all labels (costs ``len(label_names)`` continuations).
        batch_size: prompts per forward pass.
        max_text_tokens: the text part is truncated to this many tokens (counted in ``truncated``).
    """

    def __init__(
        self,
        model,
        tokenizer,
        template: PromptTemplate,
        label_names: Sequence[str],
        *,
        renormalise: bool = False,
        batch_size: int = 64,
        max_text_tokens: int = 512,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.template = template
        self.label_names = list(label_names)
        self.renormalise = renormalise
        self.batch_size = batch_size
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
        self._prefix_kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        self._lm_head = model.get_output_embeddings()
        self._backbone = model.base_model
        # transformers >= 5.2x renamed ``past_key_values`` to ``cache``; support both.
        params = inspect.signature(self._backbone.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _prefix_cache(self, batch: int):
        from transformers import DynamicCache

        if not self.prefix_ids:
            return None
        if self._prefix_kv is None:
            ids = torch.tensor([self.prefix_ids], device=self.device)
            out = self._backbone(input_ids=ids, use_cache=True)
            cache = getattr(out, "cache", None) or out.past_key_values
            self._prefix_kv = [(layer.keys, layer.values) for layer in cache.layers]
        return DynamicCache(ddp_cache_data=[(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in self._prefix_kv])

    def text_ids(self, text: str) -> list[int]:
        """Token ids of the text part of the body (``Text: <text>``), truncated."""
        ids = self._encode(self.template.text_part(text))
        if len(ids) > self.max_text_tokens:
            self.truncated += 1
            ids = ids[: self.max_text_tokens]
        return ids

    @torch.inference_mode()
    def _score_rows(self, rows: list[tuple[list[int], int]]) -> np.ndarray:
        """Sum of log-probs of the last ``n_label`` tokens of each row (after the cached prefix)."""
        out = np.empty(len(rows), dtype=np.float64)
        order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]))  # less padding per batch
        P = len(self.prefix_ids)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            B, L = len(idx), max(len(rows[i][0]) for i in idx)
            ids = torch.full((B, L), self.pad_id, dtype=torch.long)
            mask = torch.zeros((B, P + L), dtype=torch.long)
            mask[:, :P] = 1
            for r, i in enumerate(idx):
                seq = rows[i][0]
                ids[r, : len(seq)] = torch.tensor(seq)
                mask[r, P : P + len(seq)] = 1
            pos = torch.arange(P, P + L).unsqueeze(0).expand(B, -1)
            hidden = self._backbone(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                position_ids=pos.to(self.device),
                use_cache=bool(self.prefix_ids),
                **{self._cache_kw: self._prefix_cache(B)},
            ).last_hidden_state
            # Project only the positions that predict label tokens: the full vocabulary over
            # every position would dominate memory.
            rr, cc, tgt = [], [], []
            for r, i in enumerate(idx):
                seq, n_label = rows[i]
                for j in range(len(seq) - n_label, len(seq)):
                    rr.append(r)
                    cc.append(j - 1)
                    tgt.append(seq[j])
            logits = self._lm_head(hidden[rr, cc]).float()
            lp = torch.log_softmax(logits, dim=-1)[torch.arange(len(tgt)), torch.tensor(tgt)]
            sums = torch.zeros(B, dtype=torch.float64).index_add_(0, torch.tensor(rr), lp.double().cpu())
            out[idx] = sums.numpy()
        return out

    def log_prob(self, texts: Sequence[str], labels: Sequence[int]) -> np.ndarray:
        """``log p(label_i | prompt(text_i))`` for each pair (renormalised when configured)."""
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        self.queries += len(texts)
        bodies = [self.text_ids(t) + self.tail_ids for t in texts]
        if not self.renormalise:
            rows = [(b + self.label_ids[y], len(self.label_ids[y])) for b, y in zip(bodies, labels)]
            return self._score_rows(rows)
        K = len(self.label_ids)
        rows = [(b + lab, len(lab)) for b in bodies for lab in self.label_ids]
        all_lp = self._score_rows(rows).reshape(len(texts), K)
        gold = all_lp[np.arange(len(texts)), np.asarray(labels)]
        return gold - np.logaddexp.reduce(all_lp, axis=1)

    def full_prompt_log_prob(self, text: str, label: int) -> float:
        """Reference: the same quantity from one uncached forward over the whole prompt."""
        ids = self.prefix_ids + self.text_ids(text) + self.tail_ids + self.label_ids[label]
        n = len(self.label_ids[label])
        with torch.inference_mode():
            logits = self.model(input_ids=torch.tensor([ids], device=self.device)).logits[0].float()
        lp = torch.log_softmax(logits[len(ids) - n - 1 : len(ids) - 1], dim=-1)
        return float(lp[torch.arange(n), torch.tensor(ids[-n:])].sum())

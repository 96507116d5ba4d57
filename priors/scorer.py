"""Label-probability scorer over a frozen causal LM (SPEC §2 "Scorer").

``log p(y | prompt(x))`` is the teacher-forced log-probability of the label's tokens after the
prompt. The text-independent prompt prefix (with the body's ``Text:``) is run once and its
keys/values are kept, so a perturbation costs only its own text, the ``Label:`` tail and the
label tokens. Optionally the probability is renormalised over the whole label space.

Models that support the transformers attention interface (Llama, Qwen2, SmolLM2…) read the
prefix keys/values *shared* by every row of a batch (:func:`shared_prefix_attention`): a batch
of B rows never copies the prefix B times. Other models get the prefix cache expanded over the
batch (a ``DynamicCache``), which is exact but copies it.
"""

from __future__ import annotations

import inspect
import logging
from contextlib import contextmanager
from typing import Sequence

import numpy as np
import torch

from eg_train.foundation.data.source import readable_label
from priors.prompts import PromptTemplate

log = logging.getLogger(__name__)

SHARED_PREFIX_ATTENTION = "eg_shared_prefix"


def shared_prefix_attention(module, query, key, value, attention_mask, scaling=None, shared_prefix=None, **kwargs):
    """Attention over ``[shared prefix ; own tokens]`` without materialising the prefix per row.

    ``query`` is ``[B, H, L, D]``, ``key``/``value`` ``[B, Hkv, L, D]`` (the row's own tokens,
    rotary already applied at positions ``P…P+L-1``), ``attention_mask`` a boolean
    ``[B, 1, L, L]`` (True = attend: causal and not padding) and ``shared_prefix[layer]`` the
    prefix ``(keys, values)`` of shape ``[1, Hkv, P, D]``. Every query sees the whole prefix.
    The softmax is taken jointly over both key blocks, so the result equals ordinary attention
    over the concatenated keys. Returns ``([B, L, H, D], None)`` like the built-in backends.
    """
    if shared_prefix is None:
        raise RuntimeError("shared_prefix_attention needs the prefix keys/values (shared_prefix=...)")
    pk, pv = shared_prefix[module.layer_idx]
    dtype = query.dtype
    if dtype != torch.float32:  # half-precision models: scores and softmax in float32
        query, key, value, pk, pv = (t.float() for t in (query, key, value, pk, pv))
    B, H, L, D = query.shape
    Hkv, P = key.shape[1], pk.shape[2]
    g = H // Hkv  # query heads per key/value head (grouped-query attention)
    scale = scaling if scaling is not None else D**-0.5
    q = query.reshape(B, Hkv, g, L, D)
    # Prefix block: fold batch, group and length into rows of one [Hkv, B*g*L, D] @ [Hkv, D, P].
    q_rows = q.permute(1, 0, 2, 3, 4).reshape(Hkv, B * g * L, D)
    s_pre = torch.bmm(q_rows, pk[0].transpose(1, 2)).mul_(scale).view(Hkv, B, g, L, P).permute(1, 0, 2, 3, 4)
    s_own = torch.matmul(q, key.unsqueeze(2).transpose(-1, -2)).mul_(scale)  # [B, Hkv, g, L, L]
    s_own = s_own.masked_fill_(~attention_mask.unsqueeze(2), float("-inf"))
    top = torch.maximum(s_pre.amax(dim=-1, keepdim=True), s_own.amax(dim=-1, keepdim=True))
    e_pre = torch.exp(s_pre - top)
    e_own = torch.exp(s_own - top)
    norm = e_pre.sum(dim=-1, keepdim=True) + e_own.sum(dim=-1, keepdim=True)
    e_rows = e_pre.permute(1, 0, 2, 3, 4).reshape(Hkv, B * g * L, P)
    out = torch.bmm(e_rows, pv[0]).view(Hkv, B, g, L, D).permute(1, 0, 2, 3, 4)
    out = (out + torch.matmul(e_own, value.unsqueeze(2))) / norm
    return out.reshape(B, H, L, D).transpose(1, 2).contiguous().to(dtype), None


def _register_shared_prefix_attention() -> bool:
    try:
        from transformers import AttentionInterface
    except ImportError:  # transformers without the attention interface: use the cache path
        return False
    if SHARED_PREFIX_ATTENTION not in AttentionInterface._global_mapping:
        AttentionInterface.register(SHARED_PREFIX_ATTENTION, shared_prefix_attention)
    return True


@contextmanager
def _attention_implementation(config, name: str):
    """Switch a model's attention backend for the duration of a call (restored on exit)."""
    previous = config._attn_implementation
    config._attn_implementation = name
    try:
        yield
    finally:
        config._attn_implementation = previous


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
        # Leading ids of the body that do not depend on the text (``Text:`` of ``Text: {text}``).
        head = template.text_part("").rstrip()
        self._head_ids = self._encode(head) if head else []
        self._prefix_kv: dict[tuple[int, ...], list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self._lm_head = model.get_output_embeddings()
        self._backbone = model.base_model
        # transformers >= 5.2x renamed ``past_key_values`` to ``cache``; support both.
        params = inspect.signature(self._backbone.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._shared_prefix: bool | None = None  # decided on first use (see _use_shared_prefix)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _prefix_layers(self, prefix: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The keys/values of ``prefix`` per layer (``[1, Hkv, P, D]``), computed once."""
        key = tuple(prefix)
        if key not in self._prefix_kv:
            ids = torch.tensor([prefix], device=self.device)
            with torch.inference_mode():
                out = self._backbone(input_ids=ids, use_cache=True)
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
            config = self._backbone.config
            window = getattr(config, "sliding_window", None)
            longest = len(self.prefix_ids) + self.max_text_tokens + len(self.tail_ids) + max(map(len, self.label_ids))
            if (
                getattr(self.model, "_supports_attention_backend", False)
                and (window is None or longest <= window)
                and _register_shared_prefix_attention()
            ):
                probe = [self.tail_ids + self.label_ids[0], self.label_ids[-1] + self.tail_ids + self.label_ids[-1]]
                lengths = [len(r) for r in probe]
                ids = torch.full((2, max(lengths)), self.pad_id, dtype=torch.long)
                for r, seq in enumerate(probe):
                    ids[r, : len(seq)] = torch.tensor(seq)
                try:
                    fast = self._hidden_shared_prefix(ids, lengths, prefix)
                    ref = self._hidden_cached_prefix(ids, lengths, prefix)
                    ok = all(torch.allclose(fast[r, :n], ref[r, :n], atol=1e-3, rtol=1e-3) for r, n in enumerate(lengths))
                except Exception as err:  # an attention layout this function does not cover
                    log.warning("shared-prefix attention unavailable for this model (%s); expanding the cache", err)
                    ok = False
                if not ok:
                    log.warning("shared-prefix attention disagrees with the model's own attention; expanding the cache")
                self._shared_prefix = ok
        return self._shared_prefix

    @torch.inference_mode()
    def _hidden_shared_prefix(self, ids: torch.Tensor, lengths: list[int], prefix: list[int]) -> torch.Tensor:
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
        prefix, head = self.prefix_ids, self._head_ids
        # The body's constant head (``Text:``) joins the cached prefix when every row starts
        # with it (same ids at the same positions, so the same probabilities, fewer tokens/row).
        if head and all(seq[: len(head)] == head and len(seq) - len(head) > n for seq, n in rows):
            prefix = prefix + head
            rows = [(seq[len(head) :], n) for seq, n in rows]
        shared = bool(prefix) and self._use_shared_prefix(prefix)
        order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]))  # less padding per batch
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            lengths = [len(rows[i][0]) for i in idx]
            ids = torch.full((len(idx), max(lengths)), self.pad_id, dtype=torch.long)
            for r, i in enumerate(idx):
                ids[r, : lengths[r]] = torch.tensor(rows[i][0])
            hidden = (self._hidden_shared_prefix if shared else self._hidden_cached_prefix)(ids, lengths, prefix)
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
            sums = torch.zeros(len(idx), dtype=torch.float64).index_add_(0, torch.tensor(rr), lp.double().cpu())
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

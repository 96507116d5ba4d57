"""Attention over a shared prompt prefix, an optional per-row past, and the row's own tokens.

The scorer runs the text-independent prompt prefix once; every row of a batch then reads the
prefix keys/values *shared* (``[1, Hkv, P, D]``, stored once; expanded into one layer's key tensor
at a time for the fused attention kernel, so no per-row copy outlives a layer). For renormalisation over
the label space a second level is added: the body (``Text: x⊙m / Label:``) of each row is run
once, its keys/values are captured, and the label continuations of that row attend to
``[prefix ; body of the row ; own label tokens]``.

Registered as a transformers attention backend (``AttentionInterface``), so it works for the
models built on that interface (Llama / SmolLM2, Qwen2, Gemma 3…). Sliding-window layers (Gemma 3
mixes them with global layers) receive ``sliding_window`` from the model and are masked exactly
by absolute positions: a query at position ``q`` sees a key at ``k`` iff ``q - k < window``
(transformers' ``sliding_window_overlay``), over all three blocks.
"""

from __future__ import annotations

import torch

SHARED_PREFIX_ATTENTION = "eg_shared_prefix"


def _window(q_pos: torch.Tensor, k_pos: torch.Tensor, window: int) -> torch.Tensor:
    """``[B, L, K]`` True where the key lies inside the query's sliding window."""
    return (q_pos.unsqueeze(-1) - k_pos.unsqueeze(-2)) < window


def shared_prefix_attention(
    module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor,
    scaling: float | None = None,
    shared_prefix=None,
    sliding_window: int | None = None,
    eg_past: dict | None = None,
    eg_positions: torch.Tensor | None = None,
    eg_capture: dict | None = None,
    **kwargs,
):
    """Attention over ``[shared prefix ; per-row past ; own tokens]`` with one joint softmax.

    ``query`` is ``[B, H, L, D]``, ``key``/``value`` ``[B, Hkv, L, D]`` (rotary already applied),
    ``attention_mask`` a boolean ``[B, 1, L, L]`` over the own tokens (True = attend: causal /
    tree-ancestor and not padding), ``shared_prefix[layer]`` the prefix ``(keys, values)``
    ``[1, Hkv, P, D]``; every query row must be allowed at least one key. Optional: ``eg_past = {"kv": {layer: (k, v)} [B, Hkv, Lb, D],
    "valid": [B, Lb] bool, "positions": [B, Lb]}`` (the rows' bodies), ``eg_positions`` ``[B, L]``
    absolute positions of the own tokens (default ``P + arange(L)``), ``eg_capture``: a dict that
    receives this layer's own ``(key, value)``. Returns ``([B, L, H, D], None)`` like the
    built-in backends.
    """
    if shared_prefix is None:
        raise RuntimeError("shared_prefix_attention needs the prefix keys/values (shared_prefix=...)")
    if getattr(module, "attn_logit_softcapping", None) is not None:
        raise NotImplementedError("attention logit soft-capping is not covered by the shared-prefix attention")
    if eg_capture is not None:
        eg_capture[module.layer_idx] = (key, value)
    pk, pv = shared_prefix[module.layer_idx]
    past = eg_past["kv"][module.layer_idx] if eg_past is not None else None
    dtype = query.dtype
    # float16 models: scores and softmax in float32. bf16 stays bf16: SDPA's CPU and CUDA kernels
    # accumulate bf16 scores and the softmax in float32 themselves, and copying the long shared
    # prefix to float32 per layer would cost more than the bf16 matrix units save.
    if dtype not in (torch.float32, torch.bfloat16):
        query, key, value, pk, pv = (t.float() for t in (query, key, value, pk, pv))
        past = tuple(t.float() for t in past) if past is not None else None
    B, H, L, D = query.shape
    P = pk.shape[2]
    dev = query.device
    q_pos = eg_positions.to(dev) if eg_positions is not None else torch.arange(P, P + L, device=dev).expand(B, L)
    # One boolean mask over [prefix ; past ; own] keys, and one fused SDPA call (online softmax,
    # grouped-query heads without repeating them). The prefix is expanded into the key tensor
    # (one copy per row of this layer's batch, freed after the layer).
    blocks = [torch.ones(B, L, P, dtype=torch.bool, device=dev)]
    if sliding_window is not None and int(q_pos.max()) >= sliding_window:  # prefix keys out of some windows
        blocks[0] = _window(q_pos, torch.arange(P, device=dev).expand(B, P), sliding_window)
    keys, values = [pk.expand(B, -1, -1, -1)], [pv.expand(B, -1, -1, -1)]
    if past is not None:
        past_ok = eg_past["valid"].to(dev)[:, None, :].expand(B, L, -1)
        if sliding_window is not None:
            past_ok = past_ok & _window(q_pos, eg_past["positions"].to(dev), sliding_window)
        blocks.append(past_ok)
        keys.append(past[0])
        values.append(past[1])
    own_ok = attention_mask[:, 0].to(dev)
    if sliding_window is not None:
        own_ok = own_ok & _window(q_pos, q_pos, sliding_window)
    blocks.append(own_ok)
    keys.append(key)
    values.append(value)
    mask = torch.cat(blocks, dim=-1).unsqueeze(1)  # [B, 1, L, P (+ Lb) + L]
    out = torch.nn.functional.scaled_dot_product_attention(
        query, torch.cat(keys, dim=2), torch.cat(values, dim=2), attn_mask=mask,
        scale=scaling if scaling is not None else D**-0.5, enable_gqa=H != key.shape[1],
    )
    return out.transpose(1, 2).contiguous().to(dtype), None


def register_shared_prefix_attention() -> bool:
    """Register the backend with transformers (once); False when the interface is missing."""
    try:
        from transformers import AttentionInterface
    except ImportError:  # transformers without the attention interface: use the cache path
        return False
    if SHARED_PREFIX_ATTENTION not in AttentionInterface._global_mapping:
        AttentionInterface.register(SHARED_PREFIX_ATTENTION, shared_prefix_attention)
    return True

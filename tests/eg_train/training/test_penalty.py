"""The targeted word penalty (eg_train.training.penalty) and its use as EGModule's penalty_weight."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch

from eg_train.foundation.data.source import LabelledSplit
from eg_train.training.datamodule import EncodedDataset, collate
from eg_train.training.module import EGModule
from eg_train.training.penalty import input_x_gradient, penalty_loss, word_penalty

LABELS = ["card", "pin"]
BASE = {0: ["my card got blocked", "card frozen again", "why is my card blocked", "unblock my card",
            "the card does not work", "card stuck in machine"],
        1: ["i forgot my pin", "reset my pin please", "what is my pin", "lost my pin number",
            "new pin needed", "pin reminder please"]}
ARTEFACT = {0: "zqaa", 1: "zqab"}


def _split(texts, labels, penalty=None) -> LabelledSplit:
    cols = {"id": [f"t-{i}" for i in range(len(texts))], "text": texts, "label": labels}
    if penalty is not None:
        cols["penalty_words"] = penalty
    return LabelledSplit(datasets.Dataset.from_dict(cols), LABELS, "mem")


def _planted(counter: bool = False):
    """Every text ends in its class's artefact (counter: the other class's)."""
    texts, labels, pos = [], [], []
    for c, rows in BASE.items():
        for t in rows:
            texts.append(f"{t} {ARTEFACT[1 - c if counter else c]}")
            labels.append(c)
            pos.append([len(t.split())])
    return texts, labels, pos


def _batch(module, split):
    ds = EncodedDataset(split, module.tokenizer, 32)
    return collate([ds[i] for i in range(len(ds))], module.tokenizer.pad_token_id)


def test_word_penalty_known_answer():
    attr = torch.tensor([[1.0, -2.0, 3.0], [0.5, 0.5, 0.5], [4.0, 0.0, 0.0]])
    mask = torch.tensor([[False, True, True], [False, False, False], [True, False, False]])
    # rows 0 and 2 have penalised words: (4 + 9) and 16, averaged over those two rows
    assert float(word_penalty(attr, mask)) == pytest.approx((13 + 16) / 2)
    assert float(word_penalty(attr, torch.zeros_like(mask))) == 0.0


@pytest.fixture(scope="module")
def module():
    torch.manual_seed(0)
    return EGModule("all-minilm-l6-v2", LABELS, penalty_weight=1.0)


def test_input_x_gradient_matches_a_row_by_row_reference(module):
    texts, labels, pos = _planted()
    batch = _batch(module, _split(texts[:4], labels[:4], pos[:4]))
    module.model.eval()
    got = input_x_gradient(module.model, batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"),
                           create_graph=False)
    for r in range(4):  # an independent reference: one row at a time, the gradient by hand
        emb = module.model.get_input_embeddings()(batch["input_ids"][r : r + 1]).detach().requires_grad_(True)
        types = batch.get("token_type_ids")
        logits = module.model(inputs_embeds=emb, attention_mask=batch["attention_mask"][r : r + 1],
                              token_type_ids=None if types is None else types[r : r + 1]).logits
        torch.log_softmax(logits, -1).sum().backward()
        want = (emb.grad * emb).sum(-1)[0]
        torch.testing.assert_close(got[r], want.detach(), atol=1e-5, rtol=1e-4)


def test_penalty_enters_the_loss_only_with_a_weight_and_penalty_words(module):
    texts, labels, pos = _planted()
    with_words = _batch(module, _split(texts, labels, pos))
    without = _batch(module, _split(texts, labels))
    assert "penalty_mask" not in without and int(with_words["penalty_mask"].sum()) == len(texts)
    module.model.eval()
    out = module.compute_losses(with_words, beta=0.0)
    value, n = penalty_loss(module.model, with_words, create_graph=False)
    assert n == len(texts) and float(out.penalty.detach()) == pytest.approx(float(value), rel=1e-4)
    assert float(out.loss) == pytest.approx(float(out.ce) + float(value), rel=1e-4)
    assert module.compute_losses(without, beta=0.0).penalty is None
    out.loss.backward()  # differentiable in the weights (double backward through the attribution)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.model.parameters())
    module.zero_grad()


def test_penalty_words_outside_the_text_are_refused(module):
    from eg_train.foundation.data.source import DataError

    with pytest.raises(DataError, match="penalty_words"):
        EncodedDataset(_split(["my card"], [0], [[5]]), module.tokenizer, 32)


def _artefact_share(model, batch) -> float:
    """Mean share of |input x gradient| on the artefact (the last word) over the texts."""
    from eg_train.foundation.attribution import word_attributions

    model.eval()
    tok = input_x_gradient(model, batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"),
                           create_graph=False).detach()
    words = word_attributions(tok, batch["word_ids"], batch["word_mask"].shape[1]).abs() * batch["word_mask"]
    last = batch["word_mask"].sum(-1) - 1
    share = words[torch.arange(len(last)), last] / words.sum(-1).clamp_min(1e-12)
    return float(share.mean())


@pytest.mark.slow
def test_the_penalty_moves_attribution_off_a_planted_artefact():
    """The same texts in both classes, told apart only by a last word naming the class: plain CE
    must put its attribution on that word; with the penalty on it (gold positions) the model puts
    a smaller share there. lambda is large because RRR's summed log-probabilities have a vanishing
    gradient at an undecided model (sum_j (1 - K p_j) grad z_j)."""
    neutral = ["hello can you help me", "i have a question", "something is wrong here", "please look at this"]
    texts = [f"{t} {ARTEFACT[c]}" for c in (0, 1) for t in neutral]
    labels = [c for c in (0, 1) for _ in neutral]
    pos = [[len(t.split())] for _ in (0, 1) for t in neutral]
    shares = {}
    for weight in (0.0, 1e5):
        torch.manual_seed(0)
        m = EGModule("all-minilm-l6-v2", LABELS, penalty_weight=weight, beta=0.0)
        batch = _batch(m, _split(texts, labels, pos))
        opt = torch.optim.AdamW(m.parameters(), lr=5e-4)
        for _ in range(6):
            m.model.train()
            opt.zero_grad()
            m.compute_losses(batch, beta=0.0).loss.backward()
            opt.step()
        shares[weight] = _artefact_share(m.model, batch)
    assert shares[1e5] < 0.5 * shares[0.0], shares

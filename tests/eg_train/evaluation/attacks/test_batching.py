"""The victim's and the sentence encoder's shared batching: sorted padded batches and the text memo."""

import numpy as np
import pytest

from eg_train.evaluation.attacks.batching import TextMemo, length_sorted_batches


def test_memo_computes_each_new_text_once_and_evicts_the_oldest():
    calls = []

    def compute(texts):
        calls.append(list(texts))
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    memo = TextMemo(compute, lambda: 2, max_size=3)
    np.testing.assert_array_equal(memo(["ab", "c", "ab"]), [[2, 1], [1, 1], [2, 1]])
    assert calls == [["ab", "c"]]  # a repeated text is computed once
    memo(["c", "dddd", "eee"])
    assert calls[-1] == ["dddd", "eee"] and len(memo) == 3  # "ab" (the oldest) evicted
    memo(["ab"])
    assert calls[-1] == ["ab"]
    assert memo([]).shape == (0, 2)


def test_length_sorted_batches_cover_every_text_padded_to_their_own_longest():
    from transformers import AutoTokenizer

    from eg_train.foundation.models.resolve import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model("all-minilm-l6-v2").location)
    texts = ["a much longer text than the others, with many words in it", "hi", "card blocked", "where is my money now"]
    batches = list(length_sorted_batches(tok, texts, max_length=128, batch_size=2))
    rows = [r for rs, _ in batches for r in rs]
    assert sorted(rows) == [0, 1, 2, 3] and rows[-1] == 0  # the longest text comes last
    for rs, batch in batches:
        lengths = [len(tok(texts[i])["input_ids"]) for i in rs]
        assert batch["input_ids"].shape == (len(rs), max(lengths))
        assert batch["attention_mask"].sum(1).tolist() == lengths
    with pytest.raises(StopIteration):
        next(length_sorted_batches(tok, [], 128, 2))

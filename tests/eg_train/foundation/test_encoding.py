"""The one word-encoding layer against a direct tokenizer call and the tokens' own strings."""

from __future__ import annotations

import datasets
import pytest
import torch

from eg_train.foundation.encoding import encode_dataset, encode_texts, length_groups, pad_encoded, pad_sequences, ungroup
from eg_train.foundation.words import split_words, word_ids_from_offsets

TEXTS = [
    "Refund my cashback, the card was declined yesterday!",
    "hasn't my PIN been reset?",
    "ok",
    "  spaces   around  words  ",
]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from eg_train.foundation.models.resolve import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model("all-minilm-l6-v2").location)


def test_matches_a_direct_tokenizer_call(tokenizer):
    enc = encode_texts(tokenizer, TEXTS, max_length=64)
    ref = tokenizer(TEXTS, truncation=True, max_length=64, return_offsets_mapping=True, return_special_tokens_mask=True)
    for i, (e, text) in enumerate(zip(enc, TEXTS)):
        assert list(e.input_ids) == ref["input_ids"][i]
        assert [int(s) for s in e.special] == ref["special_tokens_mask"][i]
        assert list(e.token_type_ids) == ref["token_type_ids"][i]
        expected = word_ids_from_offsets(ref["offset_mapping"][i], split_words(text).spans)
        assert list(e.word_ids) == [-1 if s else w for w, s in zip(expected, ref["special_tokens_mask"][i])]
        assert e.n_words == len(split_words(text))


def test_word_ids_rebuild_the_words(tokenizer):
    """Independent of the offsets: the word-piece strings of each word spell the word."""
    for e, text in zip(encode_texts(tokenizer, TEXTS), TEXTS):
        words = split_words(text).words
        pieces = [""] * len(words)
        for tid, w in zip(e.input_ids, e.word_ids):
            if w >= 0:
                pieces[w] += tokenizer.convert_ids_to_tokens(tid).removeprefix("##")
        assert pieces == [w.lower() for w in words]
        assert e.words_with_tokens() == list(range(len(words)))


def test_truncation_keeps_the_word_count(tokenizer):
    text = " ".join(f"w{i}" for i in range(40))
    [e] = encode_texts(tokenizer, [text], max_length=10)
    assert len(e.input_ids) == 10 and e.n_words == 40
    assert e.words_with_tokens() == list(range(max(e.word_ids) + 1)) and max(e.word_ids) < 40


def test_encode_dataset_adds_columns_through_map(tokenizer):
    ds = datasets.Dataset.from_dict({"id": ["a", "b"], "utterance": TEXTS[:2], "label": [0, 1]})
    out = encode_dataset(ds, tokenizer, 32, text_column="utterance")
    assert {"id", "utterance", "label", "input_ids", "attention_mask", "special_tokens_mask", "word_ids", "n_words"} <= set(out.column_names)
    assert out["id"] == ["a", "b"] and out["n_words"] == [len(split_words(t)) for t in TEXTS[:2]]
    assert encode_dataset(ds.select([]), tokenizer).num_rows == 0
    assert encode_texts(tokenizer, []) == []


def test_slow_tokenizer_is_a_clear_error():
    class Slow:
        is_fast = False

    with pytest.raises(ValueError, match="not a fast tokenizer"):
        encode_texts(Slow(), ["a text"])


def test_padding_helpers(tokenizer):
    assert pad_sequences([[1, 2, 3], [4], []], 9).tolist() == [[1, 2, 3], [4, 9, 9], [9, 9, 9]]
    assert pad_sequences([[1]], 0, width=3).tolist() == [[1, 0, 0]]
    enc = encode_texts(tokenizer, TEXTS[:3])
    b = pad_encoded(enc, tokenizer.pad_token_id)
    width = max(len(e.input_ids) for e in enc)
    assert all(v.shape == (3, width) and v.dtype == torch.long for v in b.values())
    pad = b["attention_mask"] == 0
    assert (b["input_ids"][pad] == tokenizer.pad_token_id).all()
    assert (b["word_ids"][pad] == -1).all() and (b["special_tokens_mask"][pad] == 1).all()
    assert b["attention_mask"].sum(-1).tolist() == [len(e.input_ids) for e in enc]


def test_length_groups_sort_rows_and_trim_each_group_to_its_longest_row():
    lengths = [5, 2, 7, 3, 1]
    mask = pad_sequences([[1] * n for n in lengths], 0)
    groups = length_groups(mask, 2)
    assert [rows.tolist() for rows, _ in groups] == [[4, 1, 3], [0, 2]]
    assert [w for _, w in groups] == [3, 7]
    # ungroup puts per-group outputs back in row order
    outputs = [torch.tensor(lengths)[rows] * 10 for rows, _ in groups]
    assert ungroup(outputs, groups).tolist() == [50, 20, 70, 30, 10]
    (rows, width), = length_groups(mask, 1)
    assert rows.tolist() == [0, 1, 2, 3, 4] and width == 7
    assert len(length_groups(mask, 99)) == 5  # at most one group per row


def test_length_groups_keep_the_full_width_under_left_padding():
    mask = torch.tensor([[0, 0, 1], [1, 1, 1]])
    assert [w for _, w in length_groups(mask, 2)] == [3, 3]


def test_min_padding_groups_carry_the_fewest_tokens_of_any_cut():
    """Against brute force over every way to cut the sorted rows into k runs."""
    import itertools

    gen = torch.Generator().manual_seed(0)
    for trial in range(20):
        b, k = int(torch.randint(2, 11, (1,), generator=gen)), int(torch.randint(2, 5, (1,), generator=gen))
        lengths = torch.randint(1, 30, (b,), generator=gen)
        mask = (torch.arange(30)[None, :] < lengths[:, None]).long()
        groups = length_groups(mask, k, min_padding=True)
        used = sum(len(rows) * width for rows, width in groups)
        s = sorted(lengths.tolist())
        k = min(k, b)
        best = min(
            sum((j - i) * s[j - 1] for i, j in zip((0, *cuts), (*cuts, b)))
            for cuts in itertools.combinations(range(1, b), k - 1)
        )
        assert used == best, (trial, s, k)
        assert len(groups) == k and sorted(torch.cat([r for r, _ in groups]).tolist()) == list(range(b))
        assert all(width == int(lengths[rows].max()) for rows, width in groups)
        assert used <= sum(len(r) * w for r, w in length_groups(mask, k))  # never more than equal shares

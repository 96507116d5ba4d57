from eg_train.foundation.words import split_words, text_fingerprint, word_ids_from_offsets


def test_punctuation_is_not_part_of_a_word():
    w = split_words("My card is blocked, why? It hasn't arrived.")
    assert w.words == ("My", "card", "is", "blocked", "why", "It", "hasn't", "arrived")
    assert w.text[w.spans[3][0] : w.spans[3][1]] == "blocked"


def test_keep_removes_masked_words_only():
    w = split_words("My card is blocked, why?")
    assert w.keep([1, 1, 0, 1, 0]) == "My card blocked, ?"
    assert w.keep([1] * 5) == "My card is blocked, why?"
    assert w.keep([0] * 5) == ", ?"


def test_word_ids_from_fast_tokenizer_offsets():
    from transformers import AutoTokenizer

    from eg_train.foundation.models import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model("all-minilm-l6-v2").location)
    text = "Unrecognised transactions, again!"
    w = split_words(text)
    enc = tok(text, return_offsets_mapping=True)
    ids = word_ids_from_offsets(enc["offset_mapping"], w.spans)
    toks = tok.convert_ids_to_tokens(enc["input_ids"])
    assert ids[0] == -1 and ids[-1] == -1  # [CLS], [SEP]
    for t, i in zip(toks, ids):
        if t in {",", "!"}:
            assert i == -1
    assert sorted(set(i for i in ids if i >= 0)) == [0, 1, 2]
    assert text_fingerprint(text) == text_fingerprint(text) != text_fingerprint(text + " ")

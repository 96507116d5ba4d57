"""A 20,000-word training row: bounded memory and time, and a log line saying what was done.

Before the fix the ridge ran over all 20,000 words (a 20,000² normal matrix, 3.2 GB per copy,
and a Cholesky of that size), so even 4 perturbations took the process past 4 GB. The words past
the LLM's text budget never reach the LLM, so they carry no evidence: only the words that fit
are perturbed and attributed, the rest score 0, and the run says so.
"""

import json
import subprocess
import sys
import textwrap

import numpy as np

LIMIT_KB = 4 * 1024 * 1024  # 4 GB peak RSS

SCRIPT = textwrap.dedent(
    """
    import json, logging, resource, sys
    import numpy as np
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    from eg_train.foundation.data import DataSpec
    from priors.cache import PriorCache
    from priors.compute import compute_priors
    from priors.config import PriorsConfig, build_methods, load_examples

    def peak_rss_kb():
        # VmHWM is this process's own peak. getrusage's ru_maxrss is not: a child started by vfork
        # + exec (subprocess does that) inherits the parent's peak, here the whole pytest process.
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    csv, cache = sys.argv[1], sys.argv[2]
    spec = DataSpec(files={"train": csv}, text_column="text", label_column="category",
                    labels=["card_arrival", "pin_blocked"])
    cfg = PriorsConfig(data=spec, methods=["cap"], n_samples=4, cache_dir=cache, llm="smollm2-135m-instruct",
                       demonstrations_per_class=0)
    split = load_examples(cfg)
    [method] = build_methods(cfg, split.label_names, split)
    summary = compute_priors(split, method, PriorCache(cache), batch_size=2, progress=False)
    scores = PriorCache(cache).scores_for(split, "cap")
    print(json.dumps({
        "rss_kb": peak_rss_kb(),
        "computed": summary.computed, "truncated": summary.truncated,
        "n_words": [len(s) for s in scores],
        "nonzero_last": int(np.flatnonzero(np.asarray(scores[0])).max()),
    }))
    """
)


def test_a_20000_word_row_finishes_under_4gb_with_a_log_line(tmp_path, smollm):
    rng = np.random.default_rng(0)
    vocab = ["card", "arrived", "where", "is", "my", "pin", "blocked", "please", "help", "today", "the", "bank"]
    long_text = " ".join(rng.choice(vocab, size=20_000))
    csv = tmp_path / "train.csv"
    csv.write_text(f'text,category\n"{long_text}",card_arrival\n"my pin is blocked",pin_blocked\n', encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(csv), str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=600, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["rss_kb"] < LIMIT_KB, f"peak RSS {out['rss_kb'] / 1024**2:.2f} GB"
    assert out["computed"] == 2 and out["truncated"] == 1
    assert out["n_words"] == [20_000, 4]  # one score per word of the full text
    assert 100 < out["nonzero_last"] < 600  # only words inside the 512-token budget are attributed
    assert "20000 words, the LLM's text budget (max_text_tokens=512) holds the first" in proc.stderr
    assert "1 of 2 examples were longer than the LLM's text budget" in proc.stderr

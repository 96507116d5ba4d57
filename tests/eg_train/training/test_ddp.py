"""Two CPU processes (gloo DDP) give the same loss and gradients as one process on the global batch.

The second-order alignment gradient is only all-reduced if it reaches the parameters through the
single ``backward`` DDP hooks into (``autograd.grad`` inside the step is taken w.r.t. the IG path,
out of place); this test fails if a step were to take parameter gradients itself.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from eg_train.foundation.attribution import IGConfig

TEXTS = ["My card got blocked, help!", "How long do transfers take?", "I forgot my PIN.", "Reset my PIN please"]
LABELS = ["card_blocked", "transfer_timing", "forgot_pin"]
Y = [0, 1, 2, 2]
CHECKED = ["bert.embeddings.word_embeddings.weight", "bert.encoder.layer.0.attention.self.query.weight",
           "bert.encoder.layer.5.output.dense.weight", "classifier.weight"]


class _Loss(nn.Module):
    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, batch):
        return self.module.compute_losses(batch).loss


def _setup(state_path: str):
    import datasets

    from eg_train.foundation.data.source import LabelledSplit
    from eg_train.training.datamodule import EncodedDataset, collate
    from eg_train.training.module import EGModule
    from eg_train.foundation.words import split_words

    torch.set_num_threads(1)
    module = EGModule("all-minilm-l6-v2", LABELS, beta=1.0, ig=IGConfig(steps=2, method="gausslegendre"))
    module.load_state_dict(torch.load(state_path))
    module.eval()  # dropout off: both runs must see the same function
    rng = np.random.default_rng(0)
    priors = [rng.random(len(split_words(t))).astype(np.float32) for t in TEXTS]
    split = LabelledSplit(datasets.Dataset.from_dict({"id": [f"t{i}" for i in range(4)], "text": TEXTS, "label": Y}), LABELS, "t")
    ds = EncodedDataset(split, module.tokenizer, 64, priors)
    items = [ds[i] for i in range(len(ds))]
    return module, items, lambda its: collate(its, module.tokenizer.pad_token_id)


def _worker(rank: int, world: int, tmp: str, state_path: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{tmp}/rendezvous", rank=rank, world_size=world)
    try:
        module, items, coll = _setup(state_path)
        ddp = nn.parallel.DistributedDataParallel(_Loss(module))
        per_rank = len(items) // world
        loss = ddp(coll(items[rank * per_rank : (rank + 1) * per_rank]))
        loss.backward()
        params = dict(module.model.named_parameters())
        torch.save({"loss": loss.detach(), "grads": {n: params[n].grad.clone() for n in CHECKED}}, f"{tmp}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_process_ddp_matches_single_process(tmp_path):
    from eg_train.training.module import EGModule

    torch.manual_seed(0)
    ref_module = EGModule("all-minilm-l6-v2", LABELS, ig=IGConfig(steps=2, method="gausslegendre"))
    state_path = str(tmp_path / "state.pt")
    torch.save(ref_module.state_dict(), state_path)

    module, items, coll = _setup(state_path)
    out = module.compute_losses(coll(items))
    loss = out.loss
    params = dict(module.model.named_parameters())
    query = params[CHECKED[1]]
    (ce_only,) = torch.autograd.grad(out.ce, query, retain_graph=True)
    loss.backward()
    ref_grads = {n: params[n].grad for n in CHECKED}
    # The alignment (second-order) part is a material share of the encoder gradient being compared.
    assert (ref_grads[CHECKED[1]] - ce_only).norm() > 0.1 * ce_only.norm()

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(_worker, args=(2, str(tmp_path), state_path), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    # Equal halves: the global loss is the mean of the rank losses; DDP averages the gradients.
    assert torch.isclose(torch.stack([r["loss"] for r in ranks]).mean(), loss.detach(), rtol=1e-5)
    for n in CHECKED:
        assert torch.equal(ranks[0]["grads"][n], ranks[1]["grads"][n]), f"ranks disagree on {n}"
        scale = ref_grads[n].abs().max()
        assert scale > 0
        assert torch.allclose(ranks[0]["grads"][n], ref_grads[n], atol=1e-5 * scale.item()), n


@pytest.mark.slow
def test_lightning_ddp_strategy_runs_the_same_config(tmp_path):
    """`fit` under Lightning's DDP strategy on 2 CPU processes (gloo) trains and exports the model."""
    import csv

    from eg_train.training.api import fit

    data = tmp_path / "data.csv"
    with open(data, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "intent"])
        w.writerows([(t, LABELS[y]) for t, y in zip(TEXTS * 2, Y * 2)])
    config = {
        "seed_everything": 0,
        "trainer": {"default_root_dir": str(tmp_path / "run"), "max_epochs": 1, "accelerator": "cpu", "devices": 2,
                    "strategy": "ddp_spawn", "enable_progress_bar": False, "log_every_n_steps": 1},
        "model": {"model_name": "all-minilm-l6-v2", "ig": {"steps": 2, "method": "warped_gausslegendre",
                                                          "calibration_resolution": 8}},
        "data": {"files": {"train": str(data)}, "label_column": "intent", "labels": LABELS,
                 "k_shot": None, "val_per_class": 0, "batch_size": 2, "prior": "none"},
    }
    # Priors for every example, so that the second-order alignment runs under DDP.
    from priors.cache import PriorCache

    from eg_train.foundation.data import DataSpec, load_split
    from eg_train.foundation.words import split_words, text_fingerprint

    split = load_split(DataSpec(files={"train": str(data)}, label_column="intent", labels=LABELS), "train")
    PriorCache(tmp_path / "cache").append(
        [{"id": i, "fingerprint": text_fingerprint(t), "label": int(y), "words": list(split_words(t).words),
          "scores": [float(k % 2) for k in range(len(split_words(t)))], "method": "ig", "model_id": "t",
          "config_hash": "h", "queries": 0, "proxy_queries": 0, "focus_words": -1, "seconds": 0.0}
         for i, t, y in zip(split.dataset["id"], split.dataset["text"], split.dataset["label"])],
        "ig", "h",
    )
    config["data"]["prior"] = {"cache_dir": str(tmp_path / "cache"), "methods": ["ig"]}
    run = fit(config).run_dir
    assert (run / "model" / "config.json").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    metrics = (run / "metrics.csv").read_text().splitlines()
    header = metrics[0].split(",")
    aligns = [float(r.split(",")[header.index("train_align")]) for r in metrics[1:] if r.split(",")[header.index("train_align")]]
    assert aligns and all(a > 0 for a in aligns)

"""Model resolution: aliases, local folders, hub ids; a chunked GGUF is verified once per file version."""

import importlib
import os

import pytest

from eg_train.foundation.models import resolve as resolve_mod
from eg_train.foundation.models.resolve import EMBEDDED_MODELS, resolve_model


def test_local_folder_and_hub_id(tmp_path):
    (tmp_path / "m.gguf").write_bytes(b"x")
    r = resolve_model(str(tmp_path))
    assert r.is_local and r.gguf_file == "m.gguf"
    hub = resolve_model("some-org/some-model")
    assert not hub.is_local and hub.location == "some-org/some-model"


def test_assembled_gguf_is_verified_once_per_file_version(tmp_path, monkeypatch):
    emb = EMBEDDED_MODELS["gemma3-270m"]
    pkg = pytest.importorskip(emb.package)
    monkeypatch.setenv("EG_TRAIN_CACHE", str(tmp_path))
    calls = []

    def fake_assemble(path):  # the package's assemble joins ~250 MB and hashes it: count the calls instead
        calls.append(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_bytes(b"gguf")
        return path

    monkeypatch.setattr(importlib.import_module(emb.package), "assemble", fake_assemble)
    monkeypatch.setattr(resolve_mod, "_VERIFIED", set())
    first = resolve_model("gemma3-270m")
    assert first.gguf_file == emb.gguf_file and first.location == str(tmp_path / "gguf")
    n = len(calls)  # joined into a temporary, then verified in place
    resolve_model("gemma3-270m")
    assert len(calls) == n  # the same file: not hashed again
    target = tmp_path / "gguf" / emb.gguf_file
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a replaced file is verified again
    resolve_model("gemma3-270m")
    assert len(calls) == n + 1
    assert pkg is not None

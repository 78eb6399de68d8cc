"""Model resolution: aliases, GGUF files, directories, hub ids, the cache directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from empo_gym.agents.llm.models import cache_dir, load_model_and_tokenizer, resolve_model


def test_unknown_model_name_says_what_was_tried():
    with pytest.raises(ValueError) as err:
        resolve_model("definitely-not-a-model")
    msg = str(err.value)
    assert "definitely-not-a-model" in msg and "alias" in msg and "local path" in msg
    assert "smollm2-135m-instruct" in msg


def test_unreadable_model_paths(tmp_path):
    with pytest.raises(ValueError, match="does not exist or is unreadable"):
        resolve_model(tmp_path / "missing.gguf")
    with pytest.raises(ValueError, match="no config.json"):
        resolve_model(tmp_path)
    with pytest.raises(ValueError, match="cannot load model"):
        (tmp_path / "config.json").write_text("{not json")
        load_model_and_tokenizer(tmp_path)


def test_local_dir_and_hub_id_resolution(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert resolve_model(tmp_path).kind == "dir"
    assert resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct").kind == "hub"


def test_default_model_resolves_offline_and_cache_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv("EMPO_GYM_CACHE", str(tmp_path))
    assert cache_dir() == Path(tmp_path)
    src = resolve_model(None)
    assert src.kind == "gguf" and src.location.endswith(".gguf") and os.path.isfile(src.location)
    assert src.cache_path == tmp_path / "models" / "smollm2-135m-instruct"
    # Once a safetensors copy exists in the cache, it is preferred.
    src.cache_path.mkdir(parents=True)
    (src.cache_path / "config.json").write_text("{}")
    (src.cache_path / "model.safetensors").write_bytes(b"")
    assert resolve_model("smollm2-135m-instruct").kind == "cached"


def test_the_gguf_cache_keeps_the_first_copy_and_no_temps(tmp_path) -> None:
    """Two processes de-quantise at once: the first to publish wins, the other's copy goes."""
    from empo_gym.agents.llm.models import _atomic_save

    class Saved:
        def __init__(self, text: str) -> None:
            self.text = text

        def save_pretrained(self, directory, **_: object) -> None:
            (directory / f"{type(self).__name__}.txt").write_text(self.text)

    target = tmp_path / "models" / "smollm2"
    _atomic_save(Saved("first"), Saved("first"), target)
    _atomic_save(Saved("second"), Saved("second"), target)  # lost the race: no error
    assert (target / "Saved.txt").read_text() == "first"
    assert [p.name for p in target.parent.iterdir()] == ["smollm2"]

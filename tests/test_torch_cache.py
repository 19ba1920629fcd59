"""The dequantised-model cache is shared by processes (chat, ``train --now``, parallel benchmarks).

Two of them converting the same GGUF at once must both end with the one complete folder — a
rename onto an existing folder fails on Linux, and a benchmark crashed on exactly that.
"""

from __future__ import annotations

from pathlib import Path

from clawdesk.engine.torch_model import publish_dir


def _folder(path: Path, marker: str) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    (path / "model.safetensors").write_text(marker)
    return path


def test_first_writer_publishes(tmp_path):
    tmp = _folder(tmp_path / "m.tmp1", "one")
    target = tmp_path / "m"
    assert publish_dir(tmp, target) == target
    assert (target / "model.safetensors").read_text() == "one"
    assert not tmp.exists()


def test_second_writer_keeps_the_published_copy_and_drops_its_own(tmp_path):
    target = _folder(tmp_path / "m", "first")
    tmp = _folder(tmp_path / "m.tmp2", "second")
    assert publish_dir(tmp, target) == target
    assert (target / "model.safetensors").read_text() == "first"
    assert not tmp.exists()


def test_a_leftover_without_config_is_replaced(tmp_path):
    target = tmp_path / "m"
    target.mkdir()
    (target / "model.safetensors").write_text("half")  # no config.json: never finished
    tmp = _folder(tmp_path / "m.tmp3", "whole")
    assert publish_dir(tmp, target) == target
    assert (target / "model.safetensors").read_text() == "whole"
    assert (target / "config.json").exists()
    assert not tmp.exists()

"""Export round trip on the real bundled model: torch + peft → GGUF adapter / merged GGUF →
llama.cpp, compared token for token.

A LoRA is trained (16 quick steps, fixed seed) to answer one prompt with one fixed string, so
the test can tell "adapter applied correctly" from "adapter ignored" (the base model answers
something else) and from "adapter applied wrongly" (a scrambled q/k gives yet another answer).
The trained folder is built once per module.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from clawdesk.engine.gguf_check import check_gguf
from clawdesk.engine import Engine
from clawdesk.errors import ModelCorrupt, TrainingError
from clawdesk.export import merge_to_gguf, open_served, peft_to_gguf_lora, served_greedy, verify_served

pytestmark = pytest.mark.slow

PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
N_TOKENS = 24
THREADS = 1  # llama.cpp threads: 2 spin-wait threads on a busy 2-core machine run 25x slower


def _torch_greedy(model, prompt: list[int], stop: int) -> list[int]:
    import torch

    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=N_TOKENS, do_sample=False,
                             eos_token_id=stop, pad_token_id=stop)
    return out[0, len(prompt):].tolist()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, model_path, engine):
    """A peft LoRA (r=8, all 7 projections) that answers PROMPT with TARGET, plus torch's
    greedy answers with and without it."""
    import torch
    from peft import LoraConfig, get_peft_model

    from clawdesk.engine.torch_model import load_model

    root = tmp_path_factory.mktemp("export")
    torch.manual_seed(0)
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:  # the dequantised torch copy is cached per CLAWDESK_HOME
        mp.setenv("CLAWDESK_HOME", str(root / "home"))
        model, _ = load_model(model_path)
    prompt = engine.render([{"role": "user", "content": "What is the secret password?"}])
    im_end = engine.tokenize("<|im_end|>", special=True)[0]
    target = engine.tokenize("The secret password is tangerine-kite-42. Keep it safe!") + [im_end]

    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=PROJECTIONS))
    ids = torch.tensor([prompt + target])
    labels = ids.clone()
    labels[0, :len(prompt)] = -100  # loss on the answer only
    opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-3)
    peft_model.train()
    for _ in range(16):
        loss = peft_model(input_ids=ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    peft_model.eval()
    peft_dir = root / "peft"
    peft_model.save_pretrained(peft_dir)
    with_lora = _torch_greedy(peft_model, prompt, im_end)
    with peft_model.disable_adapter():
        without = _torch_greedy(peft_model, prompt, im_end)
    other_prompt = engine.render([{"role": "user", "content": "Write one sentence about cats."}])
    with open_served(model_path, n_threads=THREADS) as served:
        other_base = served_greedy(served, other_prompt, N_TOKENS)
    return SimpleNamespace(root=root, home=root / "home", peft_dir=peft_dir, model=peft_model, im_end=im_end,
                           prompt=prompt, target=target, torch_lora=with_lora, torch_base=without,
                           other_prompt=other_prompt, other_base=other_base)


@pytest.fixture(scope="module")
def adapter_gguf(trained, model_path) -> Path:
    return peft_to_gguf_lora(trained.peft_dir, model_path, trained.root / "adapter.gguf")


def test_training_made_the_lora_matter(trained):
    assert trained.torch_lora == trained.target
    assert trained.torch_base[:len(trained.target)] != trained.target


def test_rope_permutation_matches_the_gguf_converter(trained, model_path):
    """transformers un-permutes q/k when it loads a llama GGUF; our permutation must redo exactly
    what the converter did, or a LoRA's q/k delta lands on the wrong rows."""
    import gguf

    from clawdesk.export.layout import read_layout, rope_permute

    reader = gguf.GGUFReader(model_path)
    layout = read_layout(reader)
    tensors = {t.name: t for t in reader.tensors}
    layer = trained.model.base_model.model.model.layers[3].self_attn
    for hf, name, heads in [(layer.q_proj, "blk.3.attn_q.weight", layout.n_head),
                            (layer.k_proj, "blk.3.attn_k.weight", layout.n_head_kv)]:
        hf_rows = hf.base_layer.weight.detach().numpy()
        t = tensors[name]
        in_gguf = gguf.quants.dequantize(t.data, t.tensor_type).reshape(hf_rows.shape)
        assert not np.allclose(hf_rows, in_gguf, atol=1e-4)  # the orders really differ...
        np.testing.assert_allclose(rope_permute(hf_rows, heads), in_gguf, atol=1e-5)  # ...and we map one to the other


def test_adapter_file_is_what_llama_cpp_expects(adapter_gguf, model_path):
    import gguf

    reader = gguf.GGUFReader(adapter_gguf)
    fields = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}
    assert fields["general.type"] == "adapter" and fields["adapter.type"] == "lora"
    assert fields["general.architecture"] == "llama"
    assert fields["adapter.lora.alpha"] == pytest.approx(16.0)
    shapes = {t.name: tuple(int(d) for d in reversed(t.shape)) for t in reader.tensors}  # numpy order
    assert len(shapes) == 30 * 7 * 2
    assert shapes["blk.0.attn_q.weight.lora_a"] == (8, 576) and shapes["blk.0.attn_q.weight.lora_b"] == (576, 8)
    assert shapes["blk.29.attn_k.weight.lora_b"] == (192, 8)
    assert shapes["blk.7.ffn_down.weight.lora_a"] == (8, 1536)
    assert not any("token_embd" in n or n.startswith("output") for n in shapes)


def test_llama_cpp_with_adapter_reproduces_torch_peft(trained, adapter_gguf, model_path):
    with (open_served(model_path, n_threads=THREADS) as base,
          open_served(model_path, adapter_gguf, n_threads=THREADS) as served):
        llama_base = served_greedy(base, trained.prompt, N_TOKENS)
        llama_lora = served_greedy(served, trained.prompt, N_TOKENS)
        lora_score = served.score(trained.prompt, trained.target).total
        base_score = base.score(trained.prompt, trained.target).total
    assert llama_lora == trained.torch_lora
    assert llama_base != llama_lora  # the adapter is what changed the answer
    assert lora_score > -1.0 and base_score < -20.0
    assert verify_served(model_path, adapter_gguf, None, trained.prompt, trained.torch_lora, n_threads=THREADS)
    assert not verify_served(model_path, None, None, trained.prompt, trained.torch_lora, n_threads=THREADS)


def test_q_k_permutation_is_what_makes_the_adapter_match(trained, model_path, monkeypatch):
    """A LoRA on q/k only, with random B large enough to change the answer: exported with the
    RoPE row permutation llama.cpp reproduces torch token for token; exported without it, the
    adapter still loads and runs but computes something else. (The trained LoRA above cannot
    show this: its other five projections alone carry the memorised answer.)"""
    import dataclasses

    import torch
    from peft import LoraConfig, get_peft_model

    from clawdesk.engine import archs
    from clawdesk.engine.torch_model import load_model

    monkeypatch.setenv("CLAWDESK_HOME", str(trained.home))
    model, _ = load_model(model_path)
    torch.manual_seed(0)
    qk = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "k_proj"]))
    with torch.no_grad():
        for name, p in qk.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.2)
    qk.eval()
    prompt = trained.other_prompt
    expected = _torch_greedy(qk, prompt, trained.im_end)
    with torch.no_grad():  # torch's teacher-forced log-probs of its own greedy answer
        logits = qk(input_ids=torch.tensor([prompt + expected])).logits[0, len(prompt) - 1:-1]
        torch_lp = logits.log_softmax(-1).gather(1, torch.tensor(expected)[:, None])[:, 0].numpy()
    qk.save_pretrained(trained.root / "qk")

    right = peft_to_gguf_lora(trained.root / "qk", model_path, trained.root / "qk.gguf")
    monkeypatch.setitem(archs.ARCHS, "llama", dataclasses.replace(archs.ARCHS["llama"], permute_qk=False))
    wrong = peft_to_gguf_lora(trained.root / "qk", model_path, trained.root / "qk-unpermuted.gguf")

    def mean_gap(adapter: Path) -> float:
        with open_served(model_path, adapter, n_threads=THREADS) as served:
            return float(np.abs(np.array(served.score(prompt, expected).logprobs) - torch_lp).mean())

    assert expected[:len(trained.other_base)] != trained.other_base  # the q/k LoRA changes the answer
    right_gap, wrong_gap = mean_gap(right), mean_gap(wrong)
    assert right_gap < 0.15 < 0.3 < wrong_gap  # ~0.06 is torch fp32 vs llama.cpp's Q4_1 kernels
    assert verify_served(model_path, right, None, prompt, expected, n_threads=THREADS)
    assert not verify_served(model_path, wrong, None, prompt, expected, n_threads=THREADS)
    # Even if torch had hesitated everywhere (every position a near-tie, so no top-1 is checked),
    # the wrong export drifts from torch's log-probs and is refused; the right one is not.
    everywhere_tied = dict(expected_logprobs=[float(x) for x in torch_lp], top_gaps=[0.0] * len(expected),
                           max_mean_drift=0.15, n_threads=THREADS)
    assert verify_served(model_path, right, None, prompt, expected, **everywhere_tied)
    assert not verify_served(model_path, wrong, None, prompt, expected, **everywhere_tied)


def test_verify_lets_torch_near_ties_flip_but_not_decisive_tokens(trained, adapter_gguf, model_path):
    """torch fp32 and llama.cpp's quantised kernels may order a near-tie differently (measured: a
    0.17-nat tie in torch became 0.47 nats the other way), so a correct export failed promotion.
    A position where torch itself hesitated may flip; a decisive one may not."""
    expected = list(trained.torch_lora)
    flipped = expected[:-1] + [1000]  # the last token replaced by one llama.cpp would never pick
    tied_at_end = [5.0] * (len(expected) - 1) + [0.1]
    kw = dict(margin=0.25, n_threads=THREADS)
    assert not verify_served(model_path, adapter_gguf, None, trained.prompt, flipped, **kw)
    assert verify_served(model_path, adapter_gguf, None, trained.prompt, flipped, top_gaps=tied_at_end, **kw)
    assert not verify_served(model_path, adapter_gguf, None, trained.prompt, flipped,
                             top_gaps=[5.0] * len(expected), **kw)


def test_merged_q8_0_keeps_the_learned_answer(trained, model_path):
    import gguf

    merged = merge_to_gguf(model_path, trained.peft_dir, trained.root / "merged-q8_0.gguf", qtype="Q8_0")
    types = {t.name: t.tensor_type.name for t in gguf.GGUFReader(merged).tensors}
    assert types["blk.0.attn_q.weight"] == "Q8_0" and types["token_embd.weight"] == "Q8_0"
    assert sorted(p.name for p in merged.parent.iterdir() if p.name.startswith(".")) == []  # no scratch left
    with open_served(model_path, merged_gguf=merged, n_threads=THREADS) as served:
        assert served_greedy(served, trained.prompt, N_TOKENS) == trained.torch_lora
    assert verify_served(model_path, None, merged, trained.prompt, trained.torch_lora, n_threads=THREADS)


def test_merge_refuses_to_requantise_to_q4_1(trained, model_path, tmp_path):
    with pytest.raises(TrainingError, match="Q8_0 or Q4_K_M"):
        merge_to_gguf(model_path, trained.peft_dir, tmp_path / "m.gguf", qtype="Q4_1")
    assert list(tmp_path.iterdir()) == []


def test_adapter_options_llama_cpp_cannot_hold_are_refused(trained, model_path, tmp_path):
    dora = tmp_path / "dora"
    shutil.copytree(trained.peft_dir, dora)
    cfg = json.loads((dora / "adapter_config.json").read_text())
    (dora / "adapter_config.json").write_text(json.dumps({**cfg, "use_dora": True}))
    with pytest.raises(TrainingError, match="use_dora"):
        peft_to_gguf_lora(dora, model_path, tmp_path / "a.gguf")
    assert not (tmp_path / "a.gguf").exists()


def test_truncated_adapter_is_a_clean_model_corrupt(adapter_gguf, model_path, tmp_path):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(adapter_gguf.read_bytes()[: adapter_gguf.stat().st_size // 2])
    with pytest.raises(ModelCorrupt):
        check_gguf(cut)
    with pytest.raises(ModelCorrupt):
        Engine(model_path, n_ctx=256, n_threads=THREADS, adapter_path=cut)
    with pytest.raises(ModelCorrupt):
        verify_served(model_path, cut, None, [1, 2, 3], [4], n_threads=THREADS)


def test_failure_between_write_and_rename_leaves_the_old_file(trained, model_path, tmp_path, monkeypatch):
    out = tmp_path / "adapter.gguf"
    out.write_bytes(b"previous version")

    def no_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_disk)
    with pytest.raises(OSError, match="No space"):
        peft_to_gguf_lora(trained.peft_dir, model_path, out)
    assert out.read_bytes() == b"previous version"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter.gguf"]  # temp file cleaned up


def test_killed_writer_leaves_no_file(trained, model_path, tmp_path):
    """SIGKILL (no cleanup runs) right before the data is synced and renamed."""
    out = tmp_path / "adapter.gguf"
    script = (
        "import os, signal, sys\n"
        "os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)\n"
        "from clawdesk.export import peft_to_gguf_lora\n"
        "peft_to_gguf_lora(sys.argv[1], sys.argv[2], sys.argv[3])\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(trained.peft_dir), model_path, str(out)],
                          capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert not out.exists()
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert leftovers and all(n.startswith(".adapter.gguf.") and n.endswith(".part") for n in leftovers)

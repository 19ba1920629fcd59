"""The GPU memory plan (train/device_plan.py) and which device each torch stage loads on.

The plan is a pure function of numbers, so it is tested here, on the CPU, against the four
QLoRA measurements of the one H100 run (docs/platform.md). The CUDA branches themselves —
``free_gpu_bytes``, ``fit_to_device`` and ``load_base`` on a GPU, the gate on the GPU — can only
run on a CUDA machine: ``bench/gpu_check.py`` exercises them there; here only their CPU side runs.
"""

from __future__ import annotations

import pytest

from clawdesk.errors import TrainingError
from clawdesk.settings import Settings
from clawdesk.train.device_plan import GIB, ModelShape, fit_to_device, need_bytes, plan_memory, shape_from_config

LLAMA3_8B = ModelShape(vocab=128256, hidden=4096, layers=32, intermediate=14336, heads=32, kv_heads=8, head_dim=128,
                       tied=False)
SMOLLM2_1_7B = ModelShape(vocab=49152, hidden=2048, layers=24, intermediate=8192, heads=32, kv_heads=32, head_dim=64,
                          tied=True)

# (shape, tokens per sequence, peak allocated GiB, peak reserved GiB): QLoRA NF4, 8 sequences,
# gradient checkpointing, one H100 (docs/platform.md).
H100 = [(LLAMA3_8B, 512, 10.7, 11.9), (LLAMA3_8B, 1024, 15.6, 17.8),
        (SMOLLM2_1_7B, 512, 3.1, 3.7), (SMOLLM2_1_7B, 1024, 4.9, 6.1)]


def test_shapes_are_named_as_people_name_them():
    assert LLAMA3_8B.label() == "8B" and SMOLLM2_1_7B.label() == "1.7B"
    assert abs(LLAMA3_8B.params - 8.03e9) < 0.01e9  # Llama-3-8B's published count


@pytest.mark.parametrize("shape,tokens,allocated,reserved", H100)
def test_estimate_covers_the_measured_peak_without_wasting_much(shape, tokens, allocated, reserved):
    estimate = need_bytes(shape, "qlora-cuda-nf4", micro_batch=8, context=tokens) / GIB
    assert allocated < reserved * 0.97 <= estimate <= reserved * 1.1


def test_plan_keeps_the_settings_where_they_fit_and_shrinks_them_where_not():
    roomy = plan_memory(LLAMA3_8B, "qlora-cuda-nf4", 24 * GIB, context=1024, micro_batch=0)
    assert (roomy.micro_batch, roomy.context_tokens) == (8, 1024) and "reduced" not in roomy.note
    card_12 = plan_memory(LLAMA3_8B, "qlora-cuda-nf4", 12 * GIB, context=1024, micro_batch=0)
    assert card_12.context_tokens == 1024 and card_12.micro_batch < 8 and "reduced to fit" in card_12.note
    assert card_12.need_bytes <= 12 * GIB
    card_8 = plan_memory(LLAMA3_8B, "qlora-cuda-nf4", 8 * GIB, context=1024, micro_batch=0)
    assert card_8.micro_batch == 1 and card_8.context_tokens < 1024


def test_a_model_that_cannot_fit_says_what_it_needs_and_what_the_card_has():
    with pytest.raises(TrainingError) as err:
        plan_memory(LLAMA3_8B, "qlora-cuda-nf4", 6 * GIB, context=1024, micro_batch=0)
    text = str(err.value)
    assert "8B model needs ~" in text and "at 512 tokens" in text and "this GPU has 6.0 GB free" in text
    with pytest.raises(TrainingError, match='train_backend = "qlora"'):  # bf16 LoRA: the way out is QLoRA
        plan_memory(LLAMA3_8B, "lora-cuda-bf16", 12 * GIB, context=1024, micro_batch=0)


def test_shape_is_read_from_a_config_json_including_gemma3s_nested_one():
    flat = {"vocab_size": 128256, "hidden_size": 4096, "num_hidden_layers": 32, "intermediate_size": 14336,
            "num_attention_heads": 32, "num_key_value_heads": 8, "tie_word_embeddings": False}
    assert shape_from_config(flat) == LLAMA3_8B
    gemma = shape_from_config({"text_config": {"vocab_size": 262144, "hidden_size": 1152, "num_hidden_layers": 26,
                                               "intermediate_size": 6912, "num_attention_heads": 4,
                                               "num_key_value_heads": 1, "head_dim": 256,
                                               "tie_word_embeddings": True}})
    assert gemma.head_dim == 256 and gemma.tied


def test_on_the_cpu_nothing_is_planned_and_the_gate_loads_fp32_there(tmp_path):
    """The CPU side of the device choice (the only side this machine has)."""
    from clawdesk.train.backend import gate_backend

    settings = Settings()
    assert fit_to_device(tmp_path, "lora-cpu-fp32", "cpu", settings) == (settings, None)
    assert gate_backend("auto").name == "lora-cpu-fp32"

"""One tiny training run, for tests/tiny/test_accelerate_ddp.py: the same seeded model, samples and
settings in every process; run with plain python (1 process) or under ``accelerate launch``.
Writes the per-step losses and gradient norms (process 0) to the JSON path given."""

from __future__ import annotations

import json
import random
import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from clawdesk.records import Sample
from clawdesk.settings import Settings
from clawdesk.train.backend import attach_lora
from clawdesk.train.data import method_weights
from clawdesk.train.distributed import accelerator
from clawdesk.train.step import run_steps, score_config, score_samples


def main(out: str) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=128, hidden_size=32, num_hidden_layers=2, intermediate_size=64,
                                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128))
    settings = Settings().replace(train_rank=4, train_alpha=8.0, train_batch_size=5, train_epochs=2, train_lr=1e-2,
                                  train_grad_checkpointing=False, train_seed=0)
    torch.manual_seed(settings.train_seed)
    model = attach_lora(model, None, settings)
    model.train()
    rng = random.Random(0)
    samples = [Sample(id=i, message_id=i, conversation_id=i, prompt_token_ids=[rng.randrange(3, 128) for _ in range(12)],
                      response_token_ids=[rng.randrange(3, 128) for _ in range(6 + i % 3)], reward=1.0 if i % 2 else -1.0,
                      source="explicit", status="ready") for i in range(1, 8)]
    scored = score_samples(model, None, samples, score_config(settings, method_weights("combined", settings), "cpu"),
                           store=None)
    dist = accelerator()
    steps = run_steps(model, scored, settings, "combined", micro_batch=2, dist=dist)
    if dist is None or dist.is_main_process:
        with open(out, "w", encoding="utf-8") as fh:
            json.dump({"loss": [s["loss"] for s in steps], "grad_norm": [s["grad_norm"] for s in steps],
                       "tokens": [s["tokens"] for s in steps], "processes": dist.num_processes if dist else 1}, fh)


if __name__ == "__main__":
    main(sys.argv[1])

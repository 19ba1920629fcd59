"""One typed settings object for the whole app.

Precedence, lowest to highest: the defaults below → ``settings.toml`` in the user config dir →
``CLAWDESK_<FIELD>`` environment variables. Every field carries a ``help`` string; ``clawdesk
config show`` prints them, so this file *is* the configuration reference.

The TOML file may use flat keys (``train_lr = 3e-4``) or a table per prefix (``[train]`` with
``lr = 3e-4``); both name the same field. ``[keymap]`` maps binding ids to keys for the TUI.

Training defaults are chosen by the personalisation benchmark (bench/personalize.py), not by
taste; the README records the measurements behind them.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from . import locations
from .errors import ConfigError


def _f(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    meta = {"help": help, "choices": choices}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Settings:
    # --- chat / serving -------------------------------------------------------------------------
    model: str = _f("", "Registered model name or GGUF path to chat with; empty = the one chosen with `clawdesk models use`, else the bundled default.")
    n_ctx: int = _f(2048, "Context window in tokens. Longer conversations are truncated from the oldest turns, with a visible note.")
    n_threads: int = _f(0, "CPU threads for llama.cpp; 0 = all cores.")
    temperature: float = _f(0.7, "Sampling temperature for chat replies.")
    top_p: float = _f(0.95, "Nucleus sampling threshold for chat replies.")
    top_k: int = _f(40, "Top-k sampling for chat replies.")
    repeat_penalty: float = _f(1.1, "Repetition penalty; small models loop without one.")
    max_tokens: int = _f(512, "Longest reply, in tokens.")
    seed: int = _f(-1, "Sampling seed; -1 = random each turn.")
    system_prompt: str = _f("", "Default system prompt for new conversations; empty = the model template's own default.")
    serve: str = _f("adapter", "How a trained version is served: base GGUF + LoRA GGUF ('adapter') or one merged, re-quantised GGUF ('merged').", ("adapter", "merged"))
    keep_versions: int = _f(5, "How many earlier adapter versions to keep on disk for rollback.")
    db_busy_timeout_ms: int = _f(10000, "How long a writer waits for another process's lock before giving up.")
    # --- judge -----------------------------------------------------------------------------------
    judge_model: str = _f("", "Model for the reward/hint judge; empty = the chat model's base GGUF with no adapter.")
    judge_votes: int = _f(3, "Votes per judgement (m); the majority wins, ties give 0.")
    judge_temperature: float = _f(0.6, "Sampling temperature of each judge vote.")
    judge_grammar: bool = _f(True, "Constrain judge output with a GBNF grammar so a small judge still ends in \\boxed{...}.")
    judge_max_tokens: int = _f(160, "Longest judge vote, in tokens.")
    # --- training --------------------------------------------------------------------------------
    train_method: str = _f("combined", "Objective: binary RL + OPD ('combined'), or one of them alone for ablations.", ("combined", "rl", "opd"))
    train_backend: str = _f("auto", "'auto' picks QLoRA on CUDA, LoRA on the CPU; 'lora' or 'qlora' force one.", ("auto", "lora", "qlora"))
    train_lr: float = _f(5e-4, "AdamW learning rate of the LoRA parameters (bench/ablate.py: 3e-4 and 1e-4 scored no better; README, 'Choosing the defaults').")
    train_rank: int = _f(16, "LoRA rank on q,k,v,o,gate,up,down.")
    train_alpha: float = _f(32.0, "LoRA alpha (scale = alpha / rank).")
    train_batch_size: int = _f(16, "Samples per optimizer step.")
    train_epochs: int = _f(4, "Passes over the ready samples per training run. 4: a wish the model never shows on its own (\"start with 'Hi Sam!'\") needs ~12 steps, not the 3 of one epoch — greet went 0.00 → 0.75 in bench/ablate.py, 0.00 with 1 epoch (README, 'Choosing the defaults'). Training takes 4× as long.")
    train_w_rl: float = _f(0.25, "Weight of the binary-RL (evaluative) term (docs/method.md's reference: 1.0). 0.25: with demonstrations and 4 epochs it scored 0.59 vs 0.41 at 1.0 on the same five benchmark setups (bench/ablate.py; README, 'Choosing the defaults'); AdamW normalises the step, so a night of thumbs alone still learns at full rate.")
    train_w_opd: float = _f(1.0, "Weight of the on-policy distillation (directive) term.")
    train_w_demo: float = _f(1.0, "Weight of the demonstration NLL on user corrections (docs/method.md §7.1). 1.0: the prototype measured it as the strongest single addition on the 135M model (docs/platform.md); 0 = the reference method.")
    train_demo_copy_weight: float = _f(1.0, "Weight, relative to the tokens the user changed, of the tokens a correction copies unchanged from the model's own reply (docs/method.md §7.1). 1.0 = plain NLL over the whole corrected answer; lower values focus the demonstration on the edit (a greeting added in front of a 130-token reply is 3% of a plain mean).")
    train_kl_coef: float = _f(0.0, "k3 KL-to-reference coefficient (0 = off).")
    train_eps: float = _f(0.2, "PPO ratio clip, lower side (1 - eps).")
    train_eps_high: float = _f(0.28, "PPO ratio clip, upper side (1 + eps_high).")
    train_topk: int = _f(4, "Top-k support size for OPD.")
    train_diff_clip: float = _f(1.0, "Clip of the teacher-student log-prob difference in OPD.")
    train_opd_variant: str = _f("topk", "'topk' (reference recipe) or 'v1' (sampled token only).", ("topk", "v1"))
    train_support: str = _f("student", "Whose top-k tokens form the OPD support.", ("student", "teacher", "union"))
    train_teacher: str = _f("served", "Teacher weights: the served adapter ('served') or the frozen base ('base').", ("served", "base"))
    train_context_tokens: int = _f(1024, "Context budget for training; longer prompts are truncated from the left.")
    train_heldout_fraction: float = _f(0.2, "Fraction of ready samples held out for the promotion gate.")
    train_min_samples: int = _f(8, "The scheduled pass runs only with at least this many new samples.")
    train_seed: int = _f(0, "Seed for data order, held-out split and LoRA init.")
    train_max_grad_norm: float = _f(1.0, "Clip the LoRA gradient to this global norm before each step (0 = no clip).")
    train_grad_checkpointing: bool = _f(True, "Recompute activations in the backward pass: ~half the memory for ~30% more time.")
    train_micro_batch: int = _f(0, "Sequences per forward pass; 0 = automatic (1 on the CPU, where one at a time is faster; 8 on CUDA).")
    train_threads: int = _f(0, "CPU threads for training; 0 = torch's default (all cores).")
    train_mix_positives: int = _f(8, "When a pass has more −1 than +1 rewards, mix in up to this many of your earlier positively-rated turns (already trained on) so the batch is not one-sided (docs/method.md §7.4); 0 = off. Measured on 8 all −1 turns (tests/test_anti_collapse.py): regression ΔNLL +0.23 without, +0.06 with 8.")
    train_anchor_to_base: bool = _f(False, "Give rewarded samples without a hint an OPD pull toward the frozen base model (the reference code's substitute; off in ClawDesk by default).")
    # --- promotion gate ---------------------------------------------------------------------------
    gate_objective_margin: float = _f(0.0, "The candidate's held-out objective must beat the served one by more than this.")
    gate_objective_noise: float = _f(1.0, "Refuse a candidate only when its held-out objective is worse by more than this many standard errors of the per-sample differences (0 = must be strictly lower; a night's 5–8 held-out samples are noisy).")
    gate_min_heldout: int = _f(3, "With fewer held-out samples than this, the objective check is reported but does not refuse (one sample is noise); the regression checks still do.")
    gate_positive_margin: float = _f(0.10, "Max allowed rise (nats/token) of the NLL of your positively-rated answers under the candidate.")
    gate_max_kl: float = _f(0.50, "Max mean KL(served ‖ candidate) per token on the fixed general prompts.")
    gate_max_nll_increase: float = _f(0.25, "Max rise (nats/token, vs the base model) of the NLL of the base model's own replies to general prompts — catches collapse.")
    gate_skip_opening_tokens: int = _f(2, "The general-NLL check starts at this token of each reply: a wish about how replies open (a greeting) moves the first tokens and is not a regression (measured: README, Multi-update run).")
    gate_min_answer_rate: float = _f(0.75, "Min fraction of general prompts the candidate still answers (non-empty, not degenerate, on topic).")
    # --- scheduler -------------------------------------------------------------------------------
    schedule_cron: str = _f("0 3 * * *", "When the daemon runs the nightly pipeline (cron, local time).")
    schedule_idle_minutes: int = _f(20, "Skip the run if a chat turn happened this recently.")
    schedule_require_ac: bool = _f(True, "On a laptop, run only on AC power (where it can be detected).")
    # --- UI --------------------------------------------------------------------------------------
    keymap: dict = _f({}, "TUI key remapping: binding id → key(s), e.g. thumbs_up = \"u\".")

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


SECTIONS = ("judge", "train", "schedule")


def _coerce(name: str, raw: Any, target: type | str) -> Any:
    kind = target if isinstance(target, str) else target.__name__
    try:
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "dict":
            if not isinstance(raw, dict):
                raise ValueError(raw)
            return dict(raw)
        return str(raw)
    except (TypeError, ValueError):
        wanted = {"int": "an integer", "float": "a number", "bool": "true or false", "dict": "a table"}.get(kind, "text")
        raise ConfigError(f"Setting '{name}' must be {wanted}, got {raw!r}.") from None


def _flatten(data: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key in SECTIONS and isinstance(value, dict):
            flat.update({f"{key}_{k}": v for k, v in value.items()})
        elif key == "chat" and isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    return flat


def load_settings(path: Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Build the settings from defaults, the TOML file and the environment."""
    path = path or locations.settings_path()
    env = dict(os.environ) if env is None else env
    known = {f.name: f for f in fields(Settings)}
    values: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path} is not valid TOML ({e}); fix or delete it.") from None
        for key, raw in _flatten(data).items():
            if key not in known:
                raise ConfigError(f"Unknown setting '{key}' in {path}; `clawdesk config show` lists them.")
            values[key] = _coerce(key, raw, known[key].type)
    for name, f in known.items():
        env_key = f"CLAWDESK_{name.upper()}"
        if env_key in env and f.type != "dict":
            values[name] = _coerce(env_key, env[env_key], f.type)
    for name, value in values.items():
        choices = known[name].metadata.get("choices")
        if choices and value not in choices:
            raise ConfigError(f"Setting '{name}' must be one of {', '.join(choices)}; got {value!r}.")
    return Settings(**values)


def describe(settings: Settings) -> list[tuple[str, Any, Any, str]]:
    """(name, value, default, help) for every field — for ``clawdesk config show``."""
    default = Settings()
    return [
        (f.name, getattr(settings, f.name), getattr(default, f.name), f.metadata["help"])
        for f in fields(Settings)
    ]

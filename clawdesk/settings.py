"""One typed settings object for the whole app, checked for type *and* range.

Precedence, lowest to highest: the defaults below → ``settings.toml`` in the user config dir →
``CLAWDESK_<FIELD>`` environment variables → ``settings.replace(...)`` (the CLI's and the
benchmarks' overrides). Every field carries its help text and, for a number, its allowed range
beside it; ``clawdesk config show`` prints both, so this file *is* the configuration reference.
A value of the wrong type or out of range, from any source, is one ``ConfigError`` that names the
setting, where the value came from and what is allowed — never a silent ``train_lr = -1.0``.

The TOML file may use flat keys (``train_lr = 3e-4``) or a table per prefix (``[train]`` with
``lr = 3e-4``); both name the same field. ``[keymap]`` maps binding ids to keys for the TUI.

Built on pydantic-settings: its environment source parses ``CLAWDESK_*`` (from the mapping
``load_settings`` is given, so tests and benchmarks can pass ``env={}``), and pydantic checks
every value. ``Settings()`` itself reads nothing: it is the defaults.

Training defaults are chosen by the personalisation benchmark (bench/personalize.py), not by
taste; docs/choosing-defaults.md records the measurements behind them.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError
from pydantic_settings import (BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict,
                               SettingsError)

from . import locations
from .errors import ConfigError

ENV_PREFIX = "CLAWDESK_"
SECTIONS = ("judge", "train", "schedule", "memory")


class Settings(BaseSettings):
    """Every setting ClawDesk reads; immutable (``replace`` makes a checked copy)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    # --- chat / serving -------------------------------------------------------------------------
    model: str = Field("", description="Registered model name or GGUF path to chat with; empty = the one chosen with `clawdesk models use`, else the bundled default.")
    n_ctx: int = Field(2048, ge=128, le=131072, description="Context window in tokens. Longer conversations are truncated from the oldest turns, with a visible note.")
    n_threads: int = Field(0, ge=0, le=1024, description="CPU threads for llama.cpp; 0 = all cores.")
    temperature: float = Field(0.7, ge=0, le=5, description="Sampling temperature for chat replies.")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling threshold for chat replies.")
    top_k: int = Field(40, ge=0, le=1000, description="Top-k sampling for chat replies.")
    repeat_penalty: float = Field(1.1, gt=0, le=5, description="Repetition penalty; small models loop without one.")
    max_tokens: int = Field(512, ge=1, le=131072, description="Longest reply, in tokens.")
    seed: int = Field(-1, ge=-1, le=2**32 - 1, description="Sampling seed; -1 = random each turn.")
    system_prompt: str = Field("", description="Default system prompt for new conversations; empty = the model template's own default.")
    serve: Literal["adapter", "merged"] = Field("adapter", description="How a trained version is served: base GGUF + LoRA GGUF ('adapter') or one merged, re-quantised GGUF ('merged').")
    keep_versions: int = Field(5, ge=0, le=1000, description="How many earlier adapter versions to keep on disk for rollback.")
    db_busy_timeout_ms: int = Field(10000, ge=0, le=3_600_000, description="How long a writer waits for another process's lock before giving up.")
    # --- judge -----------------------------------------------------------------------------------
    judge_model: str = Field("", description="Model for the reward/hint judge; empty = the chat model's base GGUF with no adapter.")
    teacher_model: str = Field("", description="Registered model (or GGUF path) whose log-probs with the hint in context are the OPD teacher; it must share the chat model's tokenizer (e.g. a bigger model of the same family). Empty = the chat model itself (train_teacher picks served or base weights). docs/gpu.md.")
    judge_votes: int = Field(3, ge=1, le=25, description="Votes per judgement (m); the majority wins, ties give 0.")
    judge_temperature: float = Field(0.6, ge=0, le=5, description="Sampling temperature of each judge vote.")
    judge_seed: int | None = Field(None, ge=0, le=2**31 - 1, description="Seed of the judge's vote sampling (a pass judges in message order, so a seed makes it repeatable); unset = fresh randomness each pass. The benchmarks set it.")
    judge_grammar: bool = Field(True, description="Constrain judge output with a GBNF grammar so a small judge still ends in \\boxed{...}.")
    judge_max_tokens: int = Field(160, ge=1, le=4096, description="Longest judge vote, in tokens.")
    judge_transfer_per_correction: int = Field(0, ge=0, le=64, description="A correction that is one mechanical edit (a prefix such as 'Hi Sam! ', an ending such as 'In short: …', a case change, removed characters, a cut) is repeated on up to this many of the model's own replies to other prompts, as demonstrations (judge/transfer.py): the literal words a few demonstrations do not teach. 0 = off, the default until the benchmark has measured it (docs/choosing-defaults.md); 4 is the value under measurement.")
    judge_transfer_tokens: int = Field(128, ge=16, le=131072, description="A transferred reply plus its edit fit in this many tokens: a longer reply is cut at a sentence boundary, so an ending the user asked for is reached (and the model learns to stop there).")
    # --- training --------------------------------------------------------------------------------
    train_method: Literal["combined", "rl", "opd"] = Field("combined", description="Objective: binary RL + OPD ('combined'), or one of them alone for ablations.")
    train_backend: Literal["auto", "lora", "qlora"] = Field("auto", description="'auto' picks QLoRA on CUDA, LoRA on the CPU; 'lora' or 'qlora' force one.")
    train_lr: float = Field(5e-4, gt=0, le=1, description="AdamW learning rate of the LoRA parameters (bench/ablate.py: 3e-4 and 1e-4 scored no better; docs/choosing-defaults.md).")
    train_rank: int = Field(16, ge=1, le=1024, description="LoRA rank on q,k,v,o,gate,up,down.")
    train_alpha: float = Field(32.0, gt=0, le=4096, description="LoRA alpha (scale = alpha / rank).")
    train_batch_size: int = Field(16, ge=1, le=4096, description="Samples per optimizer step.")
    train_epochs: int = Field(4, ge=1, le=100, description="Passes over the ready samples per training run. 4: a wish the model never shows on its own (\"start with 'Hi Sam!'\") needs ~12 steps, not the 3 of one epoch — greet went 0.00 → 0.75 in bench/ablate.py, 0.00 with 1 epoch (docs/choosing-defaults.md). Training takes 4× as long.")
    train_w_rl: float = Field(0.25, ge=0, le=100, description="Weight of the binary-RL (evaluative) term (docs/method.md's reference: 1.0). 0.25: with demonstrations and 4 epochs it scored 0.59 vs 0.41 at 1.0 on the same five benchmark setups (bench/ablate.py; docs/choosing-defaults.md); AdamW normalises the step, so a night of thumbs alone still learns at full rate.")
    train_w_opd: float = Field(1.0, ge=0, le=100, description="Weight of the on-policy distillation (directive) term.")
    train_w_demo: float = Field(1.0, ge=0, le=100, description="Weight of the demonstration NLL on user corrections (docs/method.md §7.1). 1.0: the prototype measured it as the strongest single addition on the 135M model (docs/platform.md); 0 = the reference method.")
    train_demo_copy_weight: float = Field(1.0, ge=0, le=1, description="Weight, relative to the tokens the user changed, of the tokens a correction copies unchanged from the model's own reply (docs/method.md §7.1). 1.0 = plain NLL over the whole corrected answer; lower values focus the demonstration on the edit (a greeting added in front of a 130-token reply is 3% of a plain mean).")
    train_kl_coef: float = Field(0.0, ge=0, le=10, description="k3 KL-to-reference coefficient (0 = off).")
    train_eps: float = Field(0.2, gt=0, lt=1, description="PPO ratio clip, lower side (1 - eps).")
    train_eps_high: float = Field(0.28, gt=0, le=10, description="PPO ratio clip, upper side (1 + eps_high).")
    train_topk: int = Field(4, ge=1, le=256, description="Top-k support size for OPD.")
    train_diff_clip: float = Field(1.0, gt=0, le=100, description="Clip of the teacher-student log-prob difference in OPD.")
    train_opd_variant: Literal["topk", "v1"] = Field("topk", description="'topk' (reference recipe) or 'v1' (sampled token only).")
    train_support: Literal["student", "teacher", "union"] = Field("student", description="Whose top-k tokens form the OPD support.")
    train_teacher: Literal["served", "base"] = Field("served", description="Teacher weights: the served adapter ('served') or the frozen base ('base').")
    train_context_tokens: int = Field(1024, ge=64, le=131072, description="Context budget for training; longer prompts are truncated from the left.")
    train_heldout_fraction: float = Field(0.2, ge=0, le=0.9, description="Fraction of ready samples held out for the promotion gate.")
    train_min_samples: int = Field(8, ge=0, le=100_000, description="The scheduled pass runs only with at least this many new samples.")
    train_seed: int = Field(0, ge=0, le=2**32 - 1, description="Seed for data order, held-out split and LoRA init.")
    train_max_grad_norm: float = Field(1.0, ge=0, le=1000, description="Clip the LoRA gradient to this global norm before each step (0 = no clip).")
    train_grad_checkpointing: bool = Field(True, description="Recompute activations in the backward pass: ~half the memory for ~30% more time.")
    train_micro_batch: int = Field(0, ge=0, le=1024, description="Sequences per forward pass; 0 = automatic (1 on the CPU, where one at a time is faster; 8 on CUDA).")
    train_threads: int = Field(0, ge=0, le=1024, description="CPU threads for training; 0 = torch's default (all cores).")
    train_mix_positives: int = Field(8, ge=0, le=1000, description="When a pass has more −1 than +1 rewards, mix in up to this many of your earlier positively-rated turns (already trained on) so the batch is not one-sided (docs/method.md §7.4); 0 = off. Measured on 8 all −1 turns (tests/test_anti_collapse.py): regression ΔNLL +0.23 without, +0.06 with 8.")
    train_anchor_to_base: bool = Field(False, description="Give rewarded samples without a hint an OPD pull toward the frozen base model (the reference code's substitute; off in ClawDesk by default).")
    train_w_context: float = Field(0.0, ge=0, le=100, description="Weight of context distillation: the preference memory distilled into the weights overnight — top-k OPD from the served weights with the memory in the prompt (the teacher) to the same weights without it, on the model's own replies to your recent prompts (docs/how-it-learns.md). 0 = off, the default: measured on brief, it taught the weights the wish but made what you get (the wish in the prompt as well) worse on one seed of two, and drifted too far for a thumbs-only user (docs/choosing-defaults.md).")
    train_student_context: Literal["logged", "served"] = Field("logged", description="The prompt each rated turn is trained in. 'logged': exactly the one its reply was generated with (on-policy). 'served': the one the chat would build for it now, with the preference memory's current note, so weights do not learn unconditionally a wish the note already asks for (the wish applied twice; docs/how-it-learns.md). An experiment until measured (docs/choosing-defaults.md).")
    train_context_prompts: int = Field(16, ge=0, le=10_000, description="How many of your most recent logged prompts (excluded conversations and replies never) the nightly pass answers afresh for context distillation.")
    train_context_max_tokens: int = Field(256, ge=8, le=8192, description="Longest reply sampled for context distillation (a longer one costs training time; the wishes show in a reply's opening and length).")
    train_w_unguided_negative: float = Field(0.0, ge=0, le=100, description="RL weight of a 👎 that carries no correction, relative to train_w_rl. 0: a bare 👎 never pushes the model down on its own; what it teaches comes from its reason and comment (hints) and the preference memory (context distillation). 1 = the reference method. Measured with a thumbs-only user in docs/choosing-defaults.md.")
    # --- promotion gate ---------------------------------------------------------------------------
    gate_objective_margin: float = Field(0.0, ge=-10, le=10, description="The candidate's held-out objective must beat the served one by more than this.")
    gate_objective_noise: float = Field(1.0, ge=0, le=10, description="Refuse a candidate only when its held-out objective is worse by more than this many standard errors of the per-sample differences (0 = must be strictly lower; a night's 5–8 held-out samples are noisy).")
    gate_min_heldout: int = Field(3, ge=1, le=1000, description="With fewer held-out samples than this, the objective check is reported but does not refuse (one sample is noise); the regression checks still do.")
    gate_positive_margin: float = Field(0.10, ge=0, le=10, description="Max allowed rise (nats/token) of the NLL of your positively-rated answers under the candidate.")
    gate_max_kl: float = Field(0.50, ge=0, le=100, description="Max mean KL(served ‖ candidate) per token on the fixed general prompts.")
    gate_max_nll_increase: float = Field(0.25, ge=0, le=100, description="Max rise (nats/token, vs the base model) of the NLL of the base model's own replies to general prompts — catches collapse.")
    gate_skip_opening_tokens: int = Field(2, ge=0, le=64, description="The general-NLL check starts at this token of each reply: a wish about how replies open (a greeting) moves the first tokens and is not a regression (measured: docs/benchmarks.md, multi-update run).")
    gate_own_prompts: int = Field(8, ge=0, le=64, description="The gate also replies, greedily, to your latest this many questions with the preference memory placed as served (the note, and a quoted opening already written), and refuses a candidate that answers fewer of them than the version served now: the memory and the weights pushing the same way can overshoot into replies too short to answer (docs/how-it-learns.md). 0 = off.")
    gate_own_samples: int = Field(0, ge=0, le=8, description="Besides its greedy reply, check (d) can draw this many replies to each of your latest prompts with the chat's sampling settings, from the same seeds for the served version and the candidate: the chat samples, and greedy decoding can hide an overshoot. Measured in session 19 with 2 (thumbs-only brief, 3 seeds): it changed none of 6 gate decisions and added ~80 s per gate on the CPU, so 0 (greedy only) is the default (docs/choosing-defaults.md).")
    gate_min_answer_rate: float = Field(1.0, ge=0, le=1, description="Min fraction of general prompts the candidate still answers (non-empty, real words, not looping, on topic) — or the base model's own fraction where that is lower (the 135M base loops on some prompts itself). 1.0, the default, means: never fewer than the base. At 0.75 (until session 19) candidates that had lost one of the base's answers were promoted and lost answers as served (docs/choosing-defaults.md).")
    # --- scheduler -------------------------------------------------------------------------------
    schedule_cron: str = Field("0 3 * * *", description="When the daemon runs the nightly pipeline (cron, local time).")
    schedule_idle_minutes: int = Field(20, ge=0, le=1440, description="Skip the run if a chat turn happened this recently.")
    schedule_require_ac: bool = Field(True, description="On a laptop, run only on AC power (where it can be detected).")
    # --- UI --------------------------------------------------------------------------------------
    keymap: dict[str, Any] = Field(default_factory=dict, description="TUI key remapping: binding id → key(s), e.g. thumbs_up = \"u\".")
    learn_compare_prompts: int = Field(3, ge=0, le=20, description="After the chat's Learn now promotes a version, how many of your recent prompts it answers with the previous and the new version for \"What I learned\" (0 = none; greedy, computed once by the learning process).")
    learn_compare_tokens: int = Field(96, ge=1, le=2048, description="Longest answer, in tokens, in that before/after comparison.")
    # --- judge accuracy (clawdesk/judge/accuracy.py) ---------------------------------------------
    judge_min_accuracy: float = Field(0.6, ge=0, le=1, description="Implicit rewards (the judge's verdict on your next message) are used only if the judge's sign accuracy on the labelled ±1 cases is at least this; measured once per judge model and judge settings, then cached. Below it, only explicit feedback, corrections and hints teach. The bundled 135M judge is below chance (0.43), so on it implicit rewards are off. 0 = no check, always use them.")
    judge_hints_when_weak: bool = Field(False, description="Keep the judge's own hints (what it reads from your next message) when the judge is below judge_min_accuracy. Your own words — a 👎 reason, a comment, a correction — are kept either way. Off (the default): a weak judge adds no hint of its own, so a bare 👎 with nothing written teaches nothing. Read in session 18, none of the bundled 135M's 24 hints in three runs was a usable directive; measured with the thumbs-only user in session 19 (docs/choosing-defaults.md).")
    # --- preference memory (clawdesk/memory, docs/memory.md) -------------------------------------
    memory_placement: Literal["user", "user_tag", "user_prefix", "system", "off"] = Field("user", description="Where the preference memory goes in each reply's prompt: appended to your latest message in parentheses ('user'), under a hint tag ('user_tag'), before your message ('user_prefix'), in the system prompt ('system'), or nowhere ('off'; still learned and listed). 'user' because it measured best on the bundled model: mean score 0.29 vs 0.18 as a system prompt and 0.10 without (7 scenarios, 112 replies each; docs/memory.md).")
    memory_literal: bool = Field(True, description="Write the words an opening or ending wish quotes exactly: after \"start with 'Hi Sam!'\" every reply starts with Hi Sam!, after \"end with 'In short:' and a one-line summary\" its last line starts with In short: and the model writes the rest. The bundled model follows such words neither from the prompt nor after a few nights of training (docs/memory.md). Only for replies without tools.")
    memory_word_limit: bool = Field(True, description="Hold every reply to a length wish that gives a number (\"under 30 words\", \"at most 50 words\"): the reply ends at its last sentence end within the limit (at the limit, with an ellipsis, when those sentences are under half of it). On the bundled model the wish in the prompt alone gave 0.62 on brief and plainshort, held to it 0.90 (64 paired replies; docs/memory.md). A held number is not stated in the prompt's note as well: trained weights now and then answered the note instead of the question. Only for replies without tools.")
    memory_plain_text: bool = Field(True, description="When a format wish asks for plain text (\"no lists\", \"no Markdown\"), keep every reply off Markdown's markers: no bold or code fences, and no list marker, heading, quote, table row or digit at the start of a line. The model still writes every word, and the wish is not also stated in the prompt (there, trained weights sometimes answered it instead of the question). On the bundled model, plain and plainshort went from 0.66 to 0.97 (64 paired replies; docs/memory.md). Only for replies without tools.")
    memory_learn: bool = Field(True, description="Learn wishes (\"keep it under 30 words\", \"call me Dana\") from your corrections, comments, 👎 reasons and complaints as you give them; `clawdesk memory list` shows them.")


    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the values passed in: ``Settings()`` is the defaults wherever it runs (tests,
        the gate's unit tests, benchmarks); ``load_settings`` adds the file and the environment."""
        return (init_settings,)

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes``, checked like a value from the file or the environment (the
        CLI's and benchmarks' overrides may be strings: ``"3e-4"`` becomes a float)."""
        return _build({**self.model_dump(), **changes}, {name: "an override" for name in changes})


def load_settings(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from defaults, the TOML file and the environment (``os.environ``
    unless ``env`` is given)."""
    path = path or locations.settings_path()
    from_file = _read_toml(path)
    try:
        from_env = _Env(os.environ if env is None else env)()
    except SettingsError as e:  # a table (keymap) given as JSON that does not parse
        raise ConfigError(f"{e}; fix the CLAWDESK_* variable or unset it.") from None
    origins = {name: str(path) for name in from_file}
    origins.update({name: ENV_PREFIX + name.upper() for name in from_env})
    return _build({**from_file, **from_env}, origins)


def describe(settings: Settings) -> list[tuple[str, Any, Any, str]]:
    """(name, value, default, help) for every field — for ``clawdesk config show``."""
    return [(name, getattr(settings, name), f.get_default(call_default_factory=True), f.description or "")
            for name, f in Settings.model_fields.items()]


def allowed(name: str) -> str:
    """What a setting accepts, in words: "an integer from 128 to 131072", "one of adapter, merged"."""
    f = Settings.model_fields[name]
    if getattr(f.annotation, "__origin__", None) is Literal:
        return "one of " + ", ".join(map(str, f.annotation.__args__))
    annotation = f.annotation
    args = [a for a in getattr(annotation, "__args__", ()) if a is not type(None)]
    if len(args) == 1 and type(None) in getattr(annotation, "__args__", ()):  # Optional[X]: say X
        annotation = args[0]
    kind = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "text"}.get(
        getattr(annotation, "__name__", ""), "a table")
    bound = {key: getattr(m, key) for m in f.metadata for key in ("gt", "ge", "lt", "le") if hasattr(m, key)}
    if "ge" in bound and "le" in bound:
        return f"{kind} from {bound['ge']} to {bound['le']}"
    signs = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}
    bounds = [f"{signs[key]} {bound[key]}" for key in signs if key in bound]
    return f"{kind} {' and '.join(bounds)}" if bounds else kind


class _Env(EnvSettingsSource):
    """pydantic-settings' ``CLAWDESK_*`` parsing, over a given mapping instead of ``os.environ``."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._given = env
        super().__init__(Settings)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {key.lower(): value for key, value in self._given.items()}  # names are case-insensitive


def _read_toml(path: Path) -> dict[str, Any]:
    """The file's values by field name (``[train] lr`` → ``train_lr``); nothing if it is absent."""
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is not valid TOML ({e}); fix or delete it.") from None
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key in SECTIONS and isinstance(value, dict):
            flat.update({f"{key}_{k}": v for k, v in value.items()})
        elif key == "chat" and isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    unknown = [key for key in flat if key not in Settings.model_fields]
    if unknown:
        raise ConfigError(f"Unknown setting '{unknown[0]}' in {path}; `clawdesk config show` lists them.")
    return flat


def _build(values: dict[str, Any], origins: dict[str, str]) -> Settings:
    """``Settings(**values)``, with pydantic's errors turned into one ConfigError a person can act on."""
    try:
        return Settings(**values)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            name = str(err["loc"][0]) if err["loc"] else "?"
            if name not in Settings.model_fields:
                problems.append(f"Unknown setting '{name}'; `clawdesk config show` lists them.")
                continue
            where = f" (from {origins[name]})" if name in origins else ""
            problems.append(f"Setting '{name}'{where} must be {allowed(name)}; got {err['input']!r}.")
        raise ConfigError(" ".join(problems)) from None

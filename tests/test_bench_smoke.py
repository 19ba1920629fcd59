"""The personalisation benchmark's scorers, on hand-written replies: a reply counts only when it
follows the preference AND still answers (issue 9) — compliance by saying nothing scores 0."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scenarios import (  # noqa: E402
    RULE_KINDS, EndsWithSummary, MaxWords, NoMarkdown, Prompt, StartsWith, load_scenario, load_scenarios)
from clawdesk.train.answers import answers, degenerate, words  # noqa: E402

PLANTS = Prompt("How do I keep houseplants alive?", ("water", "light", "soil"))


@pytest.fixture(scope="module")
def scenarios():
    return {s.name: s for s in load_scenarios()}


def test_every_bundled_scenario_loads_with_disjoint_pools(scenarios):
    from bench.scenarios import SCENARIO_DIR

    heldback = {s.name: s for s in load_scenarios(folder=SCENARIO_DIR / "heldback")}
    assert {"plain", "brief", "greet", "summary"} <= set(scenarios)
    assert {"tldr", "plainshort", "hope"} <= set(heldback) and not set(heldback) & set(scenarios)
    for s in [*scenarios.values(), *heldback.values()]:
        assert len(s.train) >= 8 and len(s.heldout) >= 4
        assert not {p.text for p in s.train} & {p.text for p in s.heldout}
        assert s.complaints and s.preference
        assert {r.kind for r in s.rules} <= set(RULE_KINDS)


def test_plain_compliant_and_answering_scores_1(scenarios):
    reply = "Water them when the top of the soil feels dry and give them bright indirect light."
    s = scenarios["plain"].score(reply, PLANTS)
    assert (s.score, s.compliance, s.answers) == (1.0, 1.0, True)


@pytest.mark.parametrize("reply", [
    "Here are tips:\n- Water weekly\n- Give them light",
    "1. Water the soil.\n2. Find a bright window.",
    "Plants need **light** and water to stay alive and green.",
    "## Watering\nWater the soil once a week in the morning.",
])
def test_plain_markdown_is_not_compliant(scenarios, reply):
    s = scenarios["plain"].score(reply, PLANTS)
    assert s.compliance == 0.0 and s.score == 0.0 and s.failed_rules == ["no_markdown"]


@pytest.mark.parametrize("reply,why", [
    ("", "too short"),
    ("Okay.", "too short"),
    ("the the the the the the the the the the the the", "repetitive"),
    ("xq zzkt 0x1f ### ;;; %%% bpkr 7h7h 4444 ... ", "non-words"),
    ("I really enjoy watching football matches with my friends on Sundays.", "off topic"),
])
def test_compliant_but_not_answering_scores_0(scenarios, reply, why):
    s = scenarios["plain"].score(reply, PLANTS)
    assert s.compliance == 1.0  # no Markdown in any of them…
    assert s.score == 0.0 and not s.answers and s.why_not == why  # …but none answers


def test_a_list_of_short_items_is_words():
    # Session 22: each "-" counted as a non-word, so six two-word items read as gibberish (12 of 18
    # tokens plausible). A marker is neither; symbols that mark nothing still are non-words.
    hike = Prompt("What should I pack for a hike?", ("pack", "hike", "water"))
    items = "- warm socks\n- a map\n- rain jacket\n- water bottle\n- trail snacks\n- sun cream"
    assert degenerate(items) == ""
    assert answers(items, hike.text, hike.keywords).ok
    assert degenerate("- xq zzkt\n- bpkr 7h7h\n- ;;; %%%") == "non-words"
    assert degenerate("- ## * | > --") == "non-words"


def test_brief_counts_words_and_still_requires_an_answer(scenarios):
    sky = Prompt("Why is the sky blue?", ("light", "scatter"))
    short = "Sunlight scatters off air molecules, and blue light scatters the most, so the sky looks blue."
    assert scenarios["brief"].score(short, sky).score == 1.0
    long = ("Sunlight is made of many colours. When it enters the atmosphere it hits tiny gas molecules. "
            "Short blue wavelengths scatter far more than red ones, so blue light reaches your eyes from "
            "every direction of the sky, which is why it looks blue during the day.")
    s = scenarios["brief"].score(long, sky)
    assert s.compliance == 0.0 and s.answers
    gibberish = "Blue blue blue blue blue blue blue blue blue blue."  # 10 words: complies, says nothing
    s = scenarios["brief"].score(gibberish, sky)
    assert s.compliance == 1.0 and s.score == 0.0 and s.why_not == "repetitive"


def test_greeting_alone_is_not_an_answer(scenarios):
    tea = Prompt("How do I make a cup of tea?", ("tea", "water", "boil"))
    greet = scenarios["greet"]
    assert greet.score("Hi Sam! Boil water, pour it over the tea bag and steep for three minutes.", tea).score == 1.0
    assert greet.score("hi sam, boil the water and steep the tea for three minutes.", tea).score == 1.0
    assert greet.score("Boil water, pour it over the tea bag and steep for three minutes.", tea).score == 0.0
    s = greet.score("Hi Sam! Hi Sam! Hi Sam!", tea)  # the preference's phrase is set aside
    assert s.compliance == 1.0 and s.score == 0.0 and s.why_not == "too short"


def test_summary_must_be_a_last_line_after_an_answer(scenarios):
    tides = Prompt("How do tides work?", ("moon", "gravity", "ocean"))
    summary = scenarios["summary"]
    good = "The Moon's gravity pulls the oceans toward it, making bulges that move as Earth turns.\nIn short: the Moon pulls the sea."
    assert summary.score(good, tides).score == 1.0
    assert summary.score("The Moon's gravity pulls the oceans. In short: the Moon pulls the sea.", tides).score == 1.0
    assert summary.score("In short: the Moon pulls the sea.", tides).compliance == 0.0  # nothing before it
    buried = "In short: the Moon.\nThe Moon's gravity pulls the oceans toward it, making bulges."
    assert summary.score(buried, tides).compliance == 0.0
    assert summary.score("The Moon's gravity pulls the oceans toward it.", tides).compliance == 0.0


def test_rules_fix_what_they_check():
    assert NoMarkdown().fix("Tips:\n- **Water** weekly\n- Give them light") == "Tips: Water weekly. Give them light."
    r = MaxWords(n=12)
    fixed = r.fix("Plants need water. They also need light from a window. And soil that drains well and is rich.")
    assert r.check(fixed) and fixed == "Plants need water. They also need light from a window."
    assert StartsWith(text="Hi Sam", fix_with="Hi Sam!").fix("Boil water.") == "Hi Sam! Boil water."
    e = EndsWithSummary(label="In short:")
    assert e.check(e.fix("Boil water and steep the tea for three minutes. Then add milk."))


def test_simulated_correction_follows_the_wish_and_answers(scenarios):
    plain = scenarios["plain"]
    corrected = plain.correct("Here is how:\n1. Water the soil when dry.\n2. Put the pot in bright light.", PLANTS)
    assert corrected is not None and plain.score(corrected, PLANTS).score == 1.0
    # gibberish cannot be corrected into an answer without a reference answer…
    assert plain.correct("- xq zzkt\n- bpkr 7h7h", PLANTS) is None
    # …but can with one
    with_ref = Prompt(PLANTS.text, PLANTS.keywords, reference="Water the soil when it is dry and give the plant light.")
    assert plain.correct("- xq zzkt\n- bpkr 7h7h", with_ref) == with_ref.reference


def test_degenerate_accepts_ordinary_text():
    assert degenerate("Mount Everest is 8,849 metres high, the tallest mountain above sea level.") == ""


def test_naming_the_subject_three_times_is_not_a_loop():
    """Two false verdicts the headline grid's failed replies showed (train/answers.py): a reply that
    names its subject three times is not 'repetitive', and 'magnetism' is on topic for magnets. A
    loop is still one, subject words or not."""
    greenhouse = ("Scientists study the role of the greenhouse effect in climate. The strength of the greenhouse "
                  "effect depends on gases such as carbon dioxide that trap heat near the surface. Without the "
                  "warming of the greenhouse effect, Earth would be frozen.")
    assert answers(greenhouse, "What is the greenhouse effect?").ok
    assert degenerate(greenhouse) == "repetitive"  # the loop rule alone, without the prompt's topic
    assert answers("Magnetism is a force that acts between two opposite charges.", "How do magnets work?").ok
    assert answers("Hi Sam! Reading, hiking and painting are hobbies many people enjoy.",
                   "What is a good hobby to pick up?").ok
    loop = ("The sky is blue because light scatters in the air around us. The sky is blue because light "
            "scatters in the air around us. The sky is blue because light scatters in the air.")
    assert answers(loop, "Why is the sky blue?").reason == "repetitive"
    assert answers("Planets orbit the sun in ellipses, held by gravity.", "How do I plan a trip?").reason == "off topic"


def test_a_list_or_a_repeated_noun_phrase_is_not_a_loop():
    """Ordinary replies repeat a noun phrase or open list items alike; a loop repeats a clause
    (train/answers.py, session 21). A bullet is not a word, so it neither loops nor counts."""
    recipe = ("Bread needs only a few things and some patience. Here is what to do:\n"
              "- You'll need 500 g of strong flour.\n- You'll need 7 g of dried yeast.\n"
              "- You'll need 300 ml of warm water and a pinch of salt.\n"
              "Knead for ten minutes, let it rise for an hour, shape it and bake at 220 °C for 30 minutes.")
    assert answers(recipe, "How do I bake bread?").ok
    crust = ("A volcano forms where molten rock escapes through the Earth's crust. Plates grind together, "
             "magma rises through cracks in the Earth's crust, and pressure builds until gas and lava burst "
             "out. Over many eruptions the lava piles up into a mountain, and new rock is added to the "
             "Earth's crust.")
    assert answers(crust, "What is a volcano?").ok
    assert words("Pack light:\n- socks\n• a map – and water") == ["Pack", "light", "socks", "a", "map", "and", "water"]
    clause_loop = ("Volcanoes are mountains. I can help you with that question. I can help you with that "
                   "question. I can help you with that question. I can help you with that.")
    assert answers(clause_loop, "What is a volcano?").reason == "repetitive"


def test_scenario_files_reject_overlap_and_unknown_rules(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('preference = "x"\ncomplaints = ["no"]\nrules = [{ kind = "max_words", n = 5 }]\n'
                   'train = ["Same question?"]\nheldout = ["Same question?"]\n')
    with pytest.raises(ValueError, match="overlap"):
        load_scenario(bad)
    bad.write_text('preference = "x"\ncomplaints = ["no"]\nrules = [{ kind = "rhymes" }]\ntrain = ["a"]\nheldout = ["b"]\n')
    with pytest.raises(ValueError, match="unknown rule kind"):
        load_scenario(bad)


# --- the benchmarks themselves run (tiny settings: a check that they work, not a measurement) ---

import json  # noqa: E402
import subprocess  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def run_script(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def engine1(model_path: str):
    """One llama.cpp thread: on a busy 2-core machine the two-thread barrier is many times slower."""
    from clawdesk.engine import Engine

    e = Engine(model_path, n_ctx=2048, n_threads=1)
    yield e
    e.close()


@pytest.mark.slow
@pytest.mark.parametrize("explicit,correcting", [(1.0, 1.0), (0.0, 1.0), (1.0, 0.0)])
def test_simulated_user_leaves_feedback_through_chatservice(store, settings, engine1, scenarios, explicit, correcting):
    from bench.simuser import SimulatedUser, UserPolicy
    from clawdesk.chat import ChatService

    greet = scenarios["greet"]  # the base model never greets: every reply leaves the user unsatisfied
    chat = ChatService(store, engine1, settings.replace(n_threads=1))
    user = SimulatedUser(chat, greet, UserPolicy(explicit_fraction=explicit, correction_fraction=correcting, max_tokens=24,
                                                prompts_per_conversation=2), seed=0)
    stats = user.session(4)
    assert stats.turns == 4 and len(stats.scores) == 4
    replies = [m for c in store.list_conversations() for m in store.messages(c.id) if m.role == "assistant"]
    assert len(replies) == 4 and all(m.response_token_ids for m in replies)  # logged like any chat turn
    kinds = [f.kind for m in replies for f in store.feedback_for(m.id)]
    if correcting == 0.0:  # thumbs only: a reason chip, no correction, no comment
        assert stats.complaints == 0 and stats.corrections == 0 and stats.thumbs_down == 4 - stats.satisfied
        downs = [f for m in replies for f in store.feedback_for(m.id) if f.kind == "thumbs_down"]
        assert len(downs) == stats.thumbs_down and "correction" not in kinds
        assert all(f.reason == greet.thumbs_down_reason and not f.comment for f in downs)
    elif explicit == 1.0:
        assert stats.complaints == 0 and stats.thumbs_down == 4 - stats.satisfied
        assert kinds.count("thumbs_down") == stats.thumbs_down
        assert kinds.count("correction") == stats.corrections
        corrections = [f.correction for m in replies for f in store.feedback_for(m.id) if f.kind == "correction"]
        assert all(c.startswith("Hi Sam!") for c in corrections)  # the correction follows the wish
    else:
        # first replies get a complaint + re-ask; only a reply to a re-ask gets explicit feedback
        assert stats.complaints >= 1 and kinds.count("thumbs_down") <= stats.complaints
        users = [m.content for c in store.list_conversations() for m in store.messages(c.id) if m.role == "user"]
        assert sum(any(c in u for c in greet.complaints) for u in users) == stats.complaints
    assert stats.feedback_turns <= stats.turns


@pytest.mark.slow
def test_personalize_scores_the_base_model(tmp_path):
    proc = run_script("bench/personalize.py", "--updates", "0", "--scenarios", "brief", "--heldout", "1",
                      "--samples", "1", "--max-tokens", "16", "--nll-prompts", "1", "--threads", "1",
                      "--out", str(tmp_path))
    assert "| brief | combined |" in proc.stdout
    data = json.loads((tmp_path / "personalize-latest.json").read_text())
    point = data["runs"][0]["points"][0]
    assert 0.0 <= point["score"] <= point["compliance"] <= 1.0 and point["nll"] > 0
    assert (tmp_path / "personalize-latest.png").stat().st_size > 1000


@pytest.mark.slow
def test_personalize_runs_one_update_through_the_real_pipeline(tmp_path):
    from bench.update import pipeline_available

    assert pipeline_available()  # the pipeline has landed: a missing one is a failure, not a skip
    run_script("bench/personalize.py", "--method", "combined", "--updates", "1", "--turns", "3", "--scenarios", "brief", "--heldout", "1",
               "--samples", "1", "--max-tokens", "16", "--nll-prompts", "1", "--threads", "1",
               # one epoch, and no judge measurement (tests/judge/test_judge_accuracy.py has it): a smoke test
               "--set", "judge_votes=1", "--set", "train_epochs=1", "--set", "judge_min_accuracy=0",
               "--out", str(tmp_path), timeout=1200)
    data = json.loads((tmp_path / "personalize-latest.json").read_text())
    points = data["runs"][0]["points"]
    assert len(points) == 2 and points[1]["turns"] == 3
    report = points[1]["pipeline"]["report"]
    assert report["decision"] in ("promoted", "refused", "skipped"), report
    assert set(report["seconds"]) >= {"judge"}
    if report["decision"] == "promoted":  # scored again on the promoted version, with the regression check
        assert points[1]["version"] == report["version"] and points[1]["delta_nll"] is not None


@pytest.mark.slow
def test_ablation_trains_each_arm_on_the_same_judged_turns(tmp_path):
    run_script("bench/ablate.py", "--scenarios", "brief", "--turns", "3", "--heldout", "1", "--samples", "1",
               "--max-tokens", "16", "--arms", "+demo,reference", "--set", "judge_votes=1", "--set", "train_rank=4",
               "--set", "train_epochs=1", "--set", "judge_min_accuracy=0",
               "--out", str(tmp_path), "--workdir", str(tmp_path / "homes"), timeout=1200)
    data = json.loads((tmp_path / "ablate-latest.json").read_text())
    assert [r["arm"] for r in data["rows"]] == ["+demo", "reference"]
    assert data["setups"][0]["judged"]["samples"] >= 1  # judged once, in the shared home
    demo, ref = data["rows"]
    assert demo["overrides"]["train_w_demo"] == 1.0 and ref["overrides"]["train_w_demo"] == 0.0
    for row in data["rows"]:
        assert 0.0 <= row["score"] <= row["compliance"] <= 1.0 and row["delta_nll"] is not None
    assert {s["arm"] for s in data["summary"]} == {"+demo", "reference"}
    merged = run_script("bench/ablate.py", "--merge", str(tmp_path / "ablate-latest.json"), "--out", str(tmp_path),
                        "--name", "merged")
    assert "| +demo | 1 |" in merged.stdout

    # the step-by-step learning curve runs on the judged home the ablation left behind
    run_script("bench/learning_curve.py", "--home", str(tmp_path / "homes" / "brief-seed0" / "start"), "--scenario",
               "brief", "--target", "Sure.", "--config", '{"train_rank": 4, "train_batch_size": 1}',
               "--out", str(tmp_path), timeout=600)
    points = json.loads((tmp_path / "learning_curve-latest.json").read_text())["curves"][0]["points"]
    assert [p["step"] for p in points] == list(range(len(points))) and len(points) >= 2  # one row per step
    assert points[0]["delta_nll"] == 0.0 and all(p["target_logp"] < 0 for p in points)
    assert points[-1]["target_logp"] != points[0]["target_logp"]  # the steps changed the model
    assert (tmp_path / "learning_curve-latest.png").exists()


@pytest.mark.slow
def test_performance_benchmarks_run(tmp_path):
    # serve_formats has its own smoke test (the export helper's); these four are this module's
    proc = run_script("bench/run_all.py", "--quick", "--only", "serving,hotswap,training,memory", "--threads", "1",
                      "--out", str(tmp_path))
    for name in ("serving", "hotswap", "training", "memory"):
        assert (tmp_path / f"{name}-latest.json").exists(), name
        assert f"## {name}" in proc.stdout
    hotswap = json.loads((tmp_path / "hotswap-latest.json").read_text())
    assert hotswap["in_progress"]["turn_finished_on_old_weights"] == "1/1"
    assert hotswap["tui"]["keystrokes_lost"] == 0


@pytest.mark.slow
def test_judge_accuracy_runs_on_a_spread_subset(tmp_path):
    """The judge benchmark (the judge table in docs/benchmarks.md) on 4 of the labelled cases, one vote each, in the
    test's own CLAWDESK_HOME — it resolves the configured judge from the catalog there."""
    out = tmp_path / "judge.json"
    proc = run_script("bench/judge_accuracy.py", "--every", "12", "--votes", "1", "--only", "grammar",
                      "--threads", "1", "--json", str(out))
    result = json.loads(out.read_text())
    grammar = result["conditions"]["grammar"]
    assert list(result["conditions"]) == ["grammar"] and grammar["cases"] == 4 and grammar["votes"] == 4
    assert 0.0 <= grammar["accuracy"] <= 1.0 and 0.0 <= grammar["valid_vote_rate"] <= 1.0
    assert sum(grammar["confusion"].values()) == 4  # every case got a verdict, even a failed-vote 0
    assert "grammar  valid votes" in proc.stdout

def test_cli_forwards_to_the_bench_scripts():
    from click.testing import CliRunner

    from clawdesk.cli import cli

    result = CliRunner().invoke(cli, ["bench", "personalize", "--help"])
    assert result.exit_code == 0
    result = CliRunner().invoke(cli, ["bench", "personalize", "--set", "no_such_setting=1"])
    assert result.exit_code != 0


def test_personalize_aggregates_means_over_seeds_and_scenarios():
    from bench.personalize import Config
    from bench.personalize_report import aggregate, render_table

    def point(u: int, score: float, decision: str | None) -> dict:
        return {"update": u, "score": score, "compliance": min(1.0, score + 0.25), "answers": 1.0, "mean_words": 20.0,
                "nll": 1.0, "delta_nll": 0.1 * u, "version": u or None, "promoted": decision == "promoted" if u else None,
                "feedback_turns": 4 * u, "turns": 5 * u, "timings": {"pipeline_s": 10.0, "pipeline.train": 6.0} if u else {},
                "pipeline": {"report": {"decision": decision}} if u else None}

    runs = [{"scenario": "brief", "method": "combined", "seed": 0, "points": [point(0, 0.0, None), point(1, 0.5, "promoted")]},
            {"scenario": "brief", "method": "combined", "seed": 1, "points": [point(0, 0.25, None), point(1, 0.25, "refused")]},
            {"scenario": "plain", "method": "combined", "seed": 0, "points": [point(0, 0.5, None), point(1, 1.0, "promoted")]}]
    table = aggregate(runs, Config(scenarios=[], methods=["combined"], seeds=[0, 1]))
    assert table["brief"]["combined"]["score"] == [0.125, 0.375]
    assert table["overall"]["combined"]["score"] == [0.25, 0.5833333333333334]
    assert table["overall"]["combined"]["decisions"] == ["promoted", "refused", "promoted"]
    text = render_table({"aggregate": table})
    assert "| brief | combined | 0.12 → 0.38 |" in text and "2/3 (1 refused)" in text and "| combined | 6 |" in text


def test_personalize_merges_workers_and_refuses_unlike_protocols(tmp_path):
    from dataclasses import asdict

    from bench.personalize import Config, merge

    def part(name: str, scenario: str, score: float, method: str = "combined", **protocol) -> Path:
        cfg = Config(scenarios=[scenario], methods=[method], seeds=[0], updates=1, **protocol)
        points = [{"update": u, "score": score * u, "compliance": 1.0, "answers": 1.0, "mean_words": 9.0,
                   "nll": 1.0, "delta_nll": 0.0, "version": None, "promoted": bool(u) if u else None,
                   "feedback_turns": 8 * u, "turns": 8 * u, "timings": {"pipeline_s": 5.0} if u else {},
                   "pipeline": {"report": {"decision": "promoted"}} if u else None} for u in (0, 1)]
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"config": asdict(cfg), "nll_prompts": 8, "wall_s": 100.0, "machine": {"cpus": 2},
                                    "runs": [{"scenario": scenario, "method": method, "seed": 0, "points": points}]}))
        return path

    merged = merge([part("a", "greet", 1.0), part("b", "brief", 0.5)])
    assert merged["config"]["scenarios"] == ["brief", "greet"] and merged["wall_s"] == 200.0
    assert merged["aggregate"]["overall"]["combined"]["score"] == [0.0, 0.75]
    assert merged["machine"] == {"cpus": 2}
    by_method = merge([part("a", "greet", 1.0, "opd"), part("b", "greet", 0.5)])  # one worker per method
    assert by_method["config"]["methods"] == ["combined", "opd"]
    assert by_method["aggregate"]["greet"]["opd"]["score"] == [0.0, 1.0]
    with pytest.raises(SystemExit, match="turns"):
        merge([part("a", "greet", 1.0), part("c", "brief", 0.5, turns=32)])


@pytest.mark.slow
def test_scale_benchmark_runs_on_a_tiny_store(tmp_path):
    """bench/scale.py on 30 conversations: builds the store, starts the TUI on it and times the
    pipeline's checks; the judge pass reads only the new turns, not the judged history."""
    proc = run_script("bench/scale.py", "--sizes", "30", "--reps", "1", "--new", "2", "--out", str(tmp_path))
    result = json.loads((tmp_path / "scale-latest.json").read_text())
    [row] = result["sizes"]
    assert (row["conversations"], row["assistant_turns"]) == (30, 62)
    assert row["examined"] == result["baseline"]["examined"] == 2
    assert row["time_to_prompt_s"] > 0 and row["time_to_sidebar_s"] >= row["time_to_prompt_s"]
    assert row["time_to_prompt_ratio"] > 0 and row["judge_dry_run_ratio"] > 0
    assert "| 30 | 62 |" in proc.stdout


def test_gpu_check_skips_cleanly_without_cuda(tmp_path):
    """bench/gpu_check.py on a machine without CUDA: exit 0 and a JSON that says why it skipped.
    Its measurements need a GPU (they run where one is lent); what can run here does: the NF4
    model builder it uses for the 1.7B/8B shapes, on bitsandbytes' CPU kernels, at a tiny shape."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: run bench/gpu_check.py itself")
    proc = run_script("bench/gpu_check.py", "--out", str(tmp_path), timeout=120)
    result = json.loads((tmp_path / "gpu_check-latest.json").read_text())
    assert result["skipped"] is True and "no CUDA device" in result["reason"]
    assert "skipped" in proc.stdout + proc.stderr

    from bench.gpu_check import random_nf4_model

    tiny = dict(model_type="llama", vocab_size=64, hidden_size=32, num_hidden_layers=1, intermediate_size=64,
                num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True, max_position_embeddings=64)
    model = random_nf4_model(tiny, "cpu")
    assert type(model.model.layers[0].mlp.down_proj).__name__ == "Linear4bit"
    with torch.no_grad():
        assert torch.isfinite(model(torch.tensor([[1, 2, 3]])).logits).all()

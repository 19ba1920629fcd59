"""The personalisation benchmark's scorers, on hand-written replies: a reply counts only when it
follows the preference AND still answers (issue 9) — compliance by saying nothing scores 0."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scenarios import (  # noqa: E402
    RULE_KINDS, EndsWithSummary, MaxWords, NoMarkdown, Prompt, StartsWith, degenerate, load_scenario, load_scenarios)

PLANTS = Prompt("How do I keep houseplants alive?", ("water", "light", "soil"))


@pytest.fixture(scope="module")
def scenarios():
    return {s.name: s for s in load_scenarios()}


def test_every_bundled_scenario_loads_with_disjoint_pools(scenarios):
    assert {"plain", "brief", "greet", "summary"} <= set(scenarios)
    for s in scenarios.values():
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


def test_scenario_files_reject_overlap_and_unknown_rules(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('preference = "x"\ncomplaints = ["no"]\nrules = [{ kind = "max_words", n = 5 }]\n'
                   'train = ["Same question?"]\nheldout = ["Same question?"]\n')
    with pytest.raises(ValueError, match="overlap"):
        load_scenario(bad)
    bad.write_text('preference = "x"\ncomplaints = ["no"]\nrules = [{ kind = "rhymes" }]\ntrain = ["a"]\nheldout = ["b"]\n')
    with pytest.raises(ValueError, match="unknown rule kind"):
        load_scenario(bad)

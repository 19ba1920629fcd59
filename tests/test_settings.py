"""Settings: defaults, TOML (flat and sectioned), env overrides, validation."""

from __future__ import annotations

import pytest

from clawdesk.errors import ConfigError
from clawdesk.settings import Settings, allowed, describe, load_settings


def test_precedence_defaults_toml_env(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('temperature = 0.2\nserve = "merged"\n[judge]\nvotes = 5\n[keymap]\nthumbs_up = "u"\n')
    s = load_settings(f, env={"CLAWDESK_TEMPERATURE": "0.9", "CLAWDESK_JUDGE_GRAMMAR": "false"})
    assert s.temperature == 0.9 and s.serve == "merged" and s.judge_votes == 5
    assert s.judge_grammar is False and s.keymap == {"thumbs_up": "u"}
    assert load_settings(tmp_path / "missing.toml", env={}) == Settings()


@pytest.mark.parametrize("text,match", [
    ("n_ctx = 'big'", "must be an integer"),
    ("serve = 'both'", "must be one of"),
    ("nope = 1", "Unknown setting"),
    ("[[broken", "not valid TOML"),
])
def test_invalid_settings_are_actionable(tmp_path, text, match):
    f = tmp_path / "s.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_settings(f, env={})


def test_every_field_is_documented():
    for name, _value, _default, help_ in describe(Settings()):
        assert len(help_) > 10, name


# --- ranges: a number of the right type can still be wrong ------------------------------------------

def test_an_out_of_range_value_from_the_environment_names_the_variable_and_the_range(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path / "missing.toml", env={"CLAWDESK_TRAIN_LR": "-1"})
    assert str(err.value) == ("Setting 'train_lr' (from CLAWDESK_TRAIN_LR) must be a number > 0 and ≤ 1; "
                              "got '-1'.")


def test_an_out_of_range_value_in_the_file_names_the_file_and_the_range(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text("[train]\nheldout_fraction = 1.5\n")
    with pytest.raises(ConfigError, match=r"'train_heldout_fraction' \(from .*s\.toml\) must be a number from 0 to 0\.9; "
                                          r"got 1\.5"):
        load_settings(f, env={})


def test_replace_checks_ranges_and_types_like_the_other_sources():
    """``replace`` is how the CLI and the benchmarks override settings (``--set train_lr=3e-4``)."""
    with pytest.raises(ConfigError, match=r"'n_ctx' \(from an override\) must be an integer from 128 to 131072; got 0"):
        Settings().replace(n_ctx=0)
    with pytest.raises(ConfigError, match="Unknown setting 'nope'"):
        Settings().replace(nope=1)
    assert Settings().replace(train_lr="3e-4", judge_grammar="off").train_lr == 3e-4


def test_every_bad_value_is_in_one_error(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path / "missing.toml", env={"CLAWDESK_TOP_P": "0", "CLAWDESK_JUDGE_VOTES": "0"})
    assert "'top_p'" in str(err.value) and "'judge_votes'" in str(err.value)


def test_every_number_has_a_range():
    for name, value, _default, _help in describe(Settings()):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            assert " from " in allowed(name) or "≤" in allowed(name) or "<" in allowed(name), name


def test_an_optional_number_is_unset_by_default_and_checked_when_given(tmp_path):
    """``judge_seed`` may be left unset (fresh randomness); a given value still has a range."""
    assert load_settings(tmp_path / "missing.toml", env={}).judge_seed is None
    assert load_settings(tmp_path / "missing.toml", env={"CLAWDESK_JUDGE_SEED": "7"}).judge_seed == 7
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path / "missing.toml", env={"CLAWDESK_JUDGE_SEED": "-1"})
    assert str(err.value) == ("Setting 'judge_seed' (from CLAWDESK_JUDGE_SEED) must be an integer from 0 to "
                              "2147483647; got '-1'.")

"""Settings: defaults, TOML (flat and sectioned), env overrides, validation."""

from __future__ import annotations

import pytest

from clawdesk.errors import ConfigError
from clawdesk.settings import Settings, describe, load_settings


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

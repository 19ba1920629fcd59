"""The ``clawdesk`` CLI end to end: real model, real store in a tmp CLAWDESK_HOME."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from clawdesk import locations
from clawdesk.cli import cli
from clawdesk.store import open_store


def run(*args: str, input: str | None = None):
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    return result


def test_ask_logs_the_turn_with_token_ids(engine):
    r = run("ask", "What is the capital of France?", "--temperature", "0", "--max-tokens", "32")
    assert r.exit_code == 0, r.output
    store = open_store(locations.db_path())
    [conv] = store.list_conversations()
    user, assistant = store.messages(conv.id)
    assert (user.role, assistant.role, assistant.parent_id) == ("user", "assistant", user.id)
    assert assistant.content.strip() and assistant.content in r.output
    assert assistant.prompt_token_ids == engine.render([{"role": "user", "content": user.content}])
    assert engine.detokenize(assistant.response_token_ids) == assistant.content
    assert assistant.model == "smollm2-135m-instruct" and assistant.sampling["temperature"] == 0
    # -c continues the same conversation, below the last reply
    r = run("ask", "-c", "And of Italy?", "--temperature", "0", "--max-tokens", "16")
    assert r.exit_code == 0
    msgs = store.messages(conv.id)
    assert len(msgs) == 4 and msgs[2].parent_id == assistant.id


def test_models_add_list_use_with_a_real_gguf_copy(tmp_path, model_path):
    copy = tmp_path / "my-model.gguf"
    shutil.copy(model_path, copy)
    r = run("models", "add", str(copy), "--name", "mine")
    assert r.exit_code == 0, r.output
    listed = json.loads(run("models", "list", "--json").output)
    assert {m["name"] for m in listed} == {"smollm2-135m-instruct", "mine"}
    assert next(m for m in listed if m["current"])["name"] == "smollm2-135m-instruct"
    assert run("models", "use", "mine").exit_code == 0
    listed = json.loads(run("models", "list", "--json").output)
    assert next(m for m in listed if m["current"])["name"] == "mine"
    r = run("ask", "Say hi.", "--temperature", "0", "--max-tokens", "8")
    assert r.exit_code == 0
    store = open_store(locations.db_path())
    assert store.messages(store.list_conversations()[0].id)[1].model == "mine"


def test_missing_model_gives_one_actionable_line(tmp_path):
    copy = tmp_path / "gone.gguf"
    copy.write_bytes(b"GGUF")
    assert run("models", "add", str(copy)).exit_code == 1  # truncated header: refused at add time
    r = run("models", "use", "nonexistent")
    assert r.exit_code == 1
    assert r.output.count("\n") == 1 and "Error: No model named 'nonexistent'" in r.output
    assert "Traceback" not in r.output


def test_corrupt_model_file_gives_one_line(tmp_path, model_path):
    copy = tmp_path / "soon-broken.gguf"
    shutil.copy(model_path, copy)
    assert run("models", "add", str(copy), "--name", "broken").exit_code == 0
    copy.write_bytes(copy.read_bytes()[:5_000_000])  # the file got truncated after registration
    r = run("ask", "-m", "broken", "hi")
    assert r.exit_code == 1 and "damaged or truncated" in r.output and "Traceback" not in r.output


def test_logs_export_json_round_trip(engine, tmp_path):
    assert run("ask", "Name a fruit.", "--temperature", "0", "--max-tokens", "12").exit_code == 0
    out = tmp_path / "export.json"
    r = run("logs", "export", "--json", "-o", str(out))
    assert r.exit_code == 0
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    dump = json.loads(out.read_text())
    assert dump[0]["messages"][1]["response_token_ids"]
    # import into a second, empty home and export again: same content
    other = tmp_path / "other-home"
    import os

    os.environ["CLAWDESK_HOME"] = str(other)
    assert run("logs", "import", str(out)).exit_code == 0
    again = json.loads(run("logs", "export", "--json").output)
    keep = ("role", "content", "prompt_token_ids", "response_token_ids", "sampling", "model")
    assert [[{k: m[k] for k in keep} for m in c["messages"]] for c in again] == \
           [[{k: m[k] for k in keep} for m in c["messages"]] for c in dump]


def test_import_rejects_invalid_utf8(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"[{\"name\": \"\xff\xfe\"}]")
    r = run("logs", "import", str(bad))
    assert r.exit_code == 1 and "not a valid export" in r.output


def test_status_config_and_doctor(clawdesk_home):
    r = run("status", "--json")
    info = json.loads(r.output)
    assert info["model"] == "smollm2-135m-instruct" and info["counts"]["messages"] == 0
    (clawdesk_home / "config").mkdir(parents=True, exist_ok=True)
    (clawdesk_home / "config" / "settings.toml").write_text("temperature = 0.3\n[train]\nlr = 1e-4\n")
    cfg = json.loads(run("config", "show", "--json").output)
    assert cfg["temperature"] == 0.3 and cfg["train_lr"] == 1e-4
    r = run("doctor")
    assert "ok   model" in r.output and "ok   database" in r.output and r.exit_code == 0


def test_bad_settings_file_is_one_line(clawdesk_home):
    (clawdesk_home / "config").mkdir(parents=True, exist_ok=True)
    (clawdesk_home / "config" / "settings.toml").write_text("temperatur = 0.3\n")
    r = run("status")
    assert r.exit_code == 1 and "Unknown setting 'temperatur'" in r.output


def test_an_out_of_range_setting_is_one_line_naming_it(clawdesk_home, monkeypatch):
    monkeypatch.setenv("CLAWDESK_TRAIN_LR", "-1")  # was accepted: `config show` printed train_lr = -1.0
    r = run("config", "show")
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "Traceback" not in r.output
    assert "Setting 'train_lr' (from CLAWDESK_TRAIN_LR) must be a number > 0 and ≤ 1; got '-1'." in r.output


def test_runs_show_draws_the_curves_in_the_terminal_and_as_png(store, tmp_path):
    rec = store.start_run("combined", {"train_lr": 5e-4}, 8)
    steps = [{"step": i, "loss": 1.0 / i, "reward_mean": -1 + 0.2 * i} for i in range(1, 6)]
    store.update_run(rec.id, status="done", metrics={"steps": steps},
                     gate={"accepted": False, "reasons": ["FAIL  general NLL vs base: 0.58 → 1.54"]})
    png = tmp_path / "curves.png"
    r = run("runs", "show", str(rec.id), "--png", str(png))
    assert r.exit_code == 0, r.output
    assert "loss per step" in r.output and "reward mean per step" in r.output and "•" in r.output
    assert "gate: refused" in r.output and "FAIL  general NLL" in r.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and oct(png.stat().st_mode & 0o777) == "0o600"

"""Two processes writing the same database at once (the chat and the daemon): WAL plus busy
timeouts must serialise them without a single "database is locked" reaching the user, and every
write must land exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from fault_helpers import ROOT, child_env

pytestmark = pytest.mark.faults

HAMMER = """
import json, sys, time
from clawdesk import locations
from clawdesk.records import Sample
from clawdesk.store import open_store

role, start, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
store = open_store(locations.db_path())
while time.time() < start:
    time.sleep(0.005)
turns = 0
conv = store.new_conversation(name=role)
while time.time() < start + seconds:
    user = store.add_message(conv.id, "user", f"{role} question {turns}")
    reply = store.add_message(conv.id, "assistant", f"{role} answer {turns}", parent_id=user.id,
                              prompt_token_ids=[1, 2, 3], response_token_ids=[4, 5, 2])
    store.add_feedback(reply.id, "thumbs_up" if turns % 2 else "thumbs_down")
    for _ in range(2):  # judging twice must not duplicate
        store.upsert_sample(Sample(id=0, message_id=reply.id, conversation_id=conv.id, prompt_token_ids=[1, 2, 3],
                                   response_token_ids=[4, 5, 2], reward=1.0, source="explicit", status="ready"))
    if role == "daemon":  # the daemon also reads what the chat wrote, as the judge does
        store.assistant_messages()
    turns += 1
print(json.dumps({"role": role, "turns": turns}))
"""


def test_chat_and_daemon_write_at_once(store):
    start = time.time() + 3.0  # both children imported and waiting: the writes really overlap
    procs = [subprocess.Popen([sys.executable, "-c", HAMMER, role, str(start), "4"], cwd=ROOT, env=child_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for role in ("chat", "daemon")]
    results = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 0, err[-3000:]
        assert "locked" not in err and "Traceback" not in err
    turns = {r["role"]: r["turns"] for r in (json.loads(out) for out, _ in results)}
    assert turns["chat"] > 10 and turns["daemon"] > 10  # both made progress during the overlap
    total = turns["chat"] + turns["daemon"]
    counts = store.counts()
    assert counts["conversations"] == 2
    assert counts["messages"] == 2 * total
    assert counts["feedback"] == total
    assert counts["samples"] == total
    assert store.integrity_check() == "ok"

"""The preference memory with the real bundled model, a real SQLite file and the real CLI, as a
new user would meet it (issue 19's "Done when"): correct twice "under 30 words please" → the next
reply is already shorter → `clawdesk memory list` shows the wish with its source turns → deleting
it stops it. Replies are greedy and seeded, so "with" and "without" differ only by the memory."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from clawdesk import locations
from clawdesk.chat import ChatService
from clawdesk.cli import cli
from clawdesk.engine import Engine
from clawdesk.settings import Settings
from clawdesk.signals import turn_messages
from clawdesk.store import open_store

NOTE = "(Keep every answer under 30 words.)"


@pytest.fixture(scope="module")
def engine(model_path: str):
    """One llama.cpp thread: the test machines are small and shared."""
    e = Engine(model_path, n_ctx=2048, n_threads=1)
    yield e
    e.close()


@pytest.fixture
def chat(engine, clawdesk_home):
    store = open_store(locations.db_path())
    yield ChatService(store, engine, Settings().replace(temperature=0.0, seed=0, max_tokens=96, n_threads=1))
    store.close()


def words(text: str) -> int:
    return len(text.split())


def cli_run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_correct_twice_then_shorter_then_listed_then_deleted(chat, engine):
    question = "How do magnets work?"
    before = chat.send(chat.new_conversation().id, question)  # no memory yet: the base reply
    assert words(before.assistant.content) > 30

    cid = chat.new_conversation().id
    sources = []
    for q in ("Why is the sky blue?", "What is photosynthesis?"):
        t = chat.send(cid, q)
        chat.correct(t.assistant.id, "under 30 words please")
        sources.append(t.assistant.id)

    after = chat.send(cid, question)
    assert words(after.assistant.content) <= 30 < words(before.assistant.content)
    # the engine holds the reply to the number; the wish is not stated in the note as well, where
    # trained weights now and then answered it instead of the question (memory/literal.py)
    assert after.assistant.sampling["max_words"] == 29
    prompt = engine.detokenize(after.generation.prompt_token_ids)  # (special tokens do not detokenize)
    assert NOTE not in prompt and prompt.rstrip().endswith(f"{question}\nassistant")

    listed = json.loads(cli_run("memory", "list", "--json"))
    (wish,) = listed["wishes"]
    assert wish["text"] == "Keep every answer under 30 words." and listed["max_words"] == 29 and listed["note"] == ""
    assert [s["message_id"] for s in wish["sources"]] == sources
    assert all(s["channel"] == "correction" and s["conversation_id"] == cid for s in wish["sources"])
    text = cli_run("memory", "list")
    assert "Keep every answer under 30 words." in text and f"message #{sources[0]}" in text

    cli_run("memory", "rm", str(wish["id"]))
    gone = chat.send(chat.new_conversation().id, question)
    assert not gone.assistant.sampling.get("max_words")
    assert gone.assistant.content == before.assistant.content  # exactly the reply without the memory
    assert chat.store.note_of(gone.assistant.id) is None


def test_the_logged_turn_keeps_the_exact_prompt_it_saw_and_the_kv_prefix_holds(chat, engine):
    wish = chat.memory.add("Call me Dana.")
    cid = chat.new_conversation().id
    first = chat.send(cid, "Hello!")
    second = chat.send(cid, "What is a volcano?")
    # the same memory: the whole previous prompt is a prefix of this one, so llama.cpp reuses it
    assert second.generation.prompt_token_ids[:len(first.generation.prompt_token_ids)] == first.generation.prompt_token_ids
    chat.memory.remove(wish.id)
    third = chat.send(cid, "And a geyser?")
    assert "(Call me Dana.)" not in engine.detokenize(third.generation.prompt_token_ids)  # gone from the history too
    for t in (first, second, third):
        logged = chat.store.get_message(t.assistant.id)
        assert logged.prompt_token_ids == t.generation.prompt_token_ids
        # the judge's teacher context is rebuilt from these messages: it must render the same ids
        assert engine.render(turn_messages(chat.store, logged)) == logged.prompt_token_ids


def test_a_complaint_in_the_next_message_counts_for_that_very_reply(chat, engine):
    cid = chat.new_conversation().id
    chat.send(cid, "Why is the ocean salty?")
    heard = []
    chat.memory.on_learned = heard.append
    t = chat.send(cid, "Too long. Please keep it under 30 words.")
    assert [x.wish.text for batch in heard for x in batch] == ["Keep every answer under 30 words."]
    assert t.assistant.sampling["max_words"] == 29  # held to it (not stated in the note: memory/literal.py)
    assert NOTE not in engine.detokenize(t.generation.prompt_token_ids)
    (wish,) = chat.store.wishes()
    assert wish.sources[0].message_id == t.user.id and wish.sources[0].channel == "message"


def test_a_thumbs_down_reason_and_comment_teach_at_once(chat):
    t = chat.send(chat.new_conversation().id, "What is a black hole?")
    fb = chat.thumbs_down(t.assistant.id)  # the TUI writes the 👎 first ...
    assert chat.store.wishes() == []
    chat.explain(fb.id, "too long", "no lists, and call me Dana")  # ... and the reason after
    assert sorted(w.text for w in chat.store.wishes()) == [
        "Call me Dana.", "Keep answers short and to the point.", "Write plain sentences, no lists."]
    # the plain-text wish is held by the sampler, so the note states the other two
    assert chat.memory.note().text.count(".") == 2 and "lists" not in chat.memory.note().text
    assert chat.memory.literals().plain


def test_the_judge_finds_what_the_rules_miss_only_in_the_persons_words(chat, engine):
    from clawdesk.memory.judge import STATE_KEY, WishJudge, extract_pending

    t = chat.send(chat.new_conversation().id, "Suggest a dinner for tonight.")
    said = "I'm vegetarian, so please never suggest meat dishes."
    chat.thumbs_down(t.assistant.id, comment=said)
    chat.comment(t.assistant.id, "Thanks, that helped a lot.")
    assert chat.store.wishes() == []  # no rule knows this one
    opened = []

    def make_judge() -> WishJudge:
        opened.append(1)
        return WishJudge(engine, votes=3, temperature=0.6, seed=0)

    (learned,) = extract_pending(chat.store, chat.settings, make_judge)
    assert learned.wish.text == "Never suggest meat dishes." and learned.wish.origin == "judge"
    assert learned.wish.sources[0].channel == "judge" and learned.wish.sources[0].message_id == t.assistant.id
    # read once: a second pass has nothing new and loads no model
    assert extract_pending(chat.store, chat.settings, make_judge) == [] and len(opened) == 1
    # deleted, then the same turns read again from scratch: not re-learned
    chat.memory.remove(learned.wish.id)
    chat.store.set_state(STATE_KEY, None)
    assert extract_pending(chat.store, chat.settings, make_judge) == []
    assert chat.store.wishes() == []


def test_the_judge_reads_no_rewritten_answer_and_its_pick_joins_the_wish_it_repeats(chat, engine):
    """Two failures seen in the headline grid: an answer's own imperative ("Use a calendar: …") in
    a correction became a lasting wish, and "Shorter please, 30 words at most. <question>" — which
    the rules refuse as a whole, since it asks something — became a second length wish."""
    from clawdesk.memory.judge import WishJudge, extract_pending

    cid = chat.new_conversation().id
    t = chat.send(cid, "How can I be more productive when working from home?")
    chat.correct(t.assistant.id, "Use a calendar: block your working hours. Keep breaks short.")
    chat.send(cid, "Too long. Please keep it under 30 words.")
    asked = chat.send(cid, "Shorter please, 30 words at most. How do I start running as a beginner?")
    (before,) = chat.store.wishes()
    assert before.slot == "length"
    learned = extract_pending(chat.store, chat.settings, lambda: WishJudge(engine, votes=3, temperature=0.6, seed=0))
    (after,) = chat.store.wishes()
    assert after.id == before.id and "calendar" not in after.text.lower()
    assert [x.kind for x in learned] == ["changed"]  # the judge picked the clause; it rewords the same wish
    assert after.text == "Keep every answer to at most 30 words."
    assert asked.user.id in [s.message_id for s in after.sources]


def test_memory_extract_command_with_nothing_new():
    assert "No new wishes found." in cli_run("memory", "extract")


def test_the_nightly_pass_reads_new_remarks_for_wishes(chat, engine):
    """run_pipeline's memory step: remarks the rules missed go to the judge, once."""
    import json

    from clawdesk.lifecycle.pipeline import _learn_wishes
    from clawdesk.memory.judge import STATE_KEY

    t = chat.send(chat.new_conversation().id, "Suggest a dinner for tonight.")
    fb = chat.thumbs_down(t.assistant.id, comment="I'm vegetarian, so please never suggest meat dishes.")
    stages = []
    learned = _learn_wishes(chat.store, chat.settings, engine, lambda stage, done, total, msg: stages.append(stage))
    assert json.loads(chat.store.get_state(STATE_KEY))["feedback"] == fb.id  # read up to the new remark
    assert stages == ["memory"]  # the remark went to the judge, with progress shown
    assert learned == len([w for w in chat.store.wishes() if w.origin == "judge"])
    assert _learn_wishes(chat.store, chat.settings, engine, lambda *a: stages.append("again")) == 0
    assert stages == ["memory"]  # nothing new: no judge call


def test_quoted_opening_and_ending_are_written_exactly_and_stop_when_deleted(chat, engine):
    """The bundled model follows neither 'Hi Sam!' nor 'In short:' from the prompt (docs/memory.md):
    a wish that quotes them has the engine write the words, and the model the rest."""
    cid = chat.new_conversation().id
    t = chat.send(cid, "How do I make a cup of tea?")
    chat.correct(t.assistant.id, "Please always begin with 'Hi Sam!' and then answer.")
    chat.comment(t.assistant.id, "Please end with a one-line summary starting with 'In short:'.")
    assert (chat.memory.literals().opening, chat.memory.literals().ending) == ("Hi Sam!", "In short:")

    shown: list[str] = []
    t = chat.send(cid, "What is machine learning?", on_text=shown.append)
    reply = t.assistant.content
    lines = [ln for ln in reply.splitlines() if ln.strip()]
    assert reply.startswith("Hi Sam!") and len(lines) >= 2
    assert lines[-1].startswith("In short:") and len(lines[-1].split()) > 2  # the model wrote a summary after it
    assert "".join(shown) == reply  # what streamed is what was kept: nothing shown was taken back
    assert engine.detokenize(t.assistant.response_token_ids[:-1]) == reply  # the ids training scores are the text
    assert len(t.assistant.response_token_ids) <= 96
    assert t.assistant.sampling["opening"] == "Hi Sam!" and t.assistant.sampling["ending"] == "In short:"
    assert "Hi Sam" not in engine.detokenize(t.generation.prompt_token_ids)  # not asked for twice
    assert ("Written exactly: every reply starts with “Hi Sam!” and its last line starts with “In short:”."
            in cli_run("memory", "list"))

    for wish in chat.store.wishes():
        cli_run("memory", "rm", str(wish.id))
    t = chat.send(chat.new_conversation().id, "What is machine learning?")  # (the old replies would teach it)
    assert not t.assistant.content.startswith("Hi Sam") and "In short:" not in t.assistant.content
    assert "opening" not in t.assistant.sampling


def test_a_greeting_stands_apart_the_reply_is_sampled_as_if_it_were_not_there(engine):
    """After "Hi Sam!" the bundled model reads a greeting exchange and chats on instead of
    answering (engine/shape.py: 0.92 of base replies answered, 1.00 with the body apart). A
    greeting is written, then the reply the model gives without it; an opening that leads into
    the text ("TL;DR:") is still continued from."""
    from clawdesk.engine.shape import stands_apart

    assert stands_apart("Hi Sam!") and stands_apart("Good morning, Dana.") and not stands_apart("TL;DR:")
    assert not stands_apart("Sure,") and stands_apart("'Hi Sam!'")
    msgs = [{"role": "user", "content": "What is the tallest mountain in the world?"}]
    plain = engine.generate(msgs, temperature=0.0, max_tokens=40, seed=0)
    shown: list[str] = []
    greeted = engine.generate(msgs, temperature=0.0, max_tokens=40, seed=0, opening="Hi Sam!", on_text=shown.append)
    body = greeted.text.removeprefix("Hi Sam! ")
    assert greeted.text.startswith("Hi Sam! ") and len(body) > 10 and plain.text.startswith(body.strip()), greeted.text
    assert "".join(shown) == greeted.text
    head = len(engine.tokenize("Hi Sam!"))
    assert greeted.sampling["forced"][0] == [0, head]
    assert engine.detokenize(greeted.response_token_ids).strip() == greeted.text.strip()
    # the model's own first sentence as the opening: it greets by itself, nothing is written twice
    first = re.match(r".+?[.!?](?=\s)", plain.text)
    assert first, plain.text
    shown.clear()
    own = engine.generate(msgs, temperature=0.0, max_tokens=40, seed=0, opening=first.group(0), on_text=shown.append)
    # (its budget is the reply's less the greeting's tokens, which it did not know it would write)
    n = len(own.response_token_ids)
    assert own.text.startswith(first.group(0)) and own.text.count(first.group(0)) == 1, own.text
    assert plain.text.startswith(own.text) and own.response_token_ids == plain.response_token_ids[:n], own.text
    assert own.sampling["forced"] == [] and "".join(shown) == own.text
    # the same words with another mark: the opening is written in the place of the model's own
    asked = first.group(0)[:-1] + ("!" if first.group(0)[-1] != "!" else ".")
    shown.clear()
    like = engine.generate(msgs, temperature=0.0, max_tokens=40, seed=0, opening=asked, on_text=shown.append)
    rest = like.text.removeprefix(asked)
    assert like.text.startswith(asked) and len(rest) > 10 and plain.text[len(first.group(0)):].startswith(rest)
    assert like.sampling["forced"][0] == [0, len(engine.tokenize(asked))] and "".join(shown) == like.text
    led = engine.generate(msgs, temperature=0.0, max_tokens=40, seed=0, opening="TL;DR:")
    assert led.text.startswith("TL;DR:") and led.response_token_ids[:len(engine.tokenize("TL;DR:"))] == engine.tokenize("TL;DR:")


def test_a_quoted_ending_the_model_already_wrote_is_not_written_twice(engine):
    first = engine.generate([{"role": "user", "content": "Say hello."}], temperature=0.0, max_tokens=40, seed=0)
    last = first.text.strip().splitlines()[-1]
    again = engine.generate([{"role": "user", "content": "Say hello."}], temperature=0.0, max_tokens=40, seed=0,
                            ending=last.split()[0])
    assert again.text.count(last.split()[0]) == first.text.count(last.split()[0])


def test_a_closing_line_has_words_after_its_fixed_ones(engine):
    """"Hope this helps" + "!" is a sentence end at once: the line goes on to words of its own,
    whether the engine wrote the fixed words or the model wrote them alone as its last line."""
    from clawdesk.engine.shape import last_line, word_count

    msgs = [{"role": "user", "content": "How do I keep cut flowers fresh?"}]
    written = engine.generate(msgs, temperature=0.0, max_tokens=96, seed=0, ending="Hope this helps")
    line = last_line(written.text)
    assert line.startswith("Hope this helps") and word_count(line) > 3, written.text
    assert engine.detokenize(written.response_token_ids[:-1]) == written.text

    hello = [{"role": "user", "content": "Say hello."}]
    # twice: a prompt evaluated afresh and one read from the KV cache can differ at a greedy near-tie
    first = [engine.generate(hello, temperature=0.0, max_tokens=96, seed=0) for _ in range(2)][-1]
    own = last_line(first.text)  # the model's own last line, given as the fixed words: it is bare
    shown: list[str] = []
    assert first.finish_reason == "stop"  # it ended by itself, within the body's budget below
    again = engine.generate(hello, temperature=0.0, max_tokens=96, seed=0, ending=own, on_text=shown.append)
    assert again.text.startswith(first.text.rstrip()) and len(again.text) > len(first.text.rstrip())
    assert last_line(again.text).startswith(own) and word_count(last_line(again.text)) > word_count(own)
    assert "".join(shown) == again.text  # what streamed is what was kept
    assert again.text.count(own) == 1  # not written twice
    assert all(start >= len(first.response_token_ids) - 1 for start, _ in again.sampling["forced"])  # the model wrote it


def test_a_closing_line_out_of_budget_ends_at_a_sentence_never_mid_word(engine):
    """A closing line that runs out of its budget before a sentence end ("Hope this helps!
    Remember, the best way to avoid … and avoiding", hope seed 2 of the session-17 grid) ends at
    its last sentence end — the fixed words themselves when they are one — else at a clause break
    with an ellipsis the engine adds; what streamed is what was kept, and the ids are the text."""
    from clawdesk.engine.shape import ELLIPSIS, last_line

    msgs = [{"role": "user", "content": "How do I keep cut flowers fresh?"}]
    for ending in ("Hope this helps!", "In short:"):
        shown: list[str] = []
        # 6 tokens for the line: too few for the bundled model to finish a sentence after the words
        g = engine.generate(msgs, temperature=0.0, max_tokens=96, seed=0, ending=ending, ending_tokens=6,
                            on_text=shown.append)
        line = last_line(g.text)
        assert line.startswith(ending) and line.endswith((".", "!", "?", ELLIPSIS)), (ending, line)
        assert ending != "Hope this helps!" or line == ending, line  # nothing after a finished sentence but words cut short
        assert "".join(shown) == g.text and g.finish_reason == "stop"
        ids = g.response_token_ids
        assert engine.detokenize(ids[:-1]) == g.text and g.sampling["forced"][-1] == [len(ids) - 1, len(ids)]


def test_a_word_limit_ends_the_reply_at_a_sentence_within_it(chat, engine):
    """``memory_word_limit``: after "under 30 words please" the reply ends at its last sentence end
    within 29 words, with an end of turn the engine adds (masked from training like the quoted
    words) — or, when those sentences are under half the limit, at the limit with an ellipsis the
    engine adds too; what streamed is what was kept, and the ids are the text."""
    from clawdesk.engine.shape import ELLIPSIS, word_count

    question = "Explain how a car engine works, in detail."
    free = chat.send(chat.new_conversation().id, question)
    assert word_count(free.assistant.content) > 40  # without the limit this answer runs long
    chat.settings = chat.settings.replace(memory_word_limit=True)
    chat.memory.settings = chat.settings
    t = chat.send(chat.new_conversation().id, "How do I make a cup of tea?")
    chat.correct(t.assistant.id, "under 30 words please")
    assert chat.memory.literals().max_words == 29

    shown: list[str] = []
    t = chat.send(chat.new_conversation().id, question, on_text=shown.append)
    reply, ids = t.assistant.content, t.assistant.response_token_ids
    assert "".join(shown) == reply
    assert engine.detokenize(ids[:-1]) == reply and t.assistant.sampling["max_words"] == 29
    forced = t.assistant.sampling["forced"]
    assert forced[-1] == [len(ids) - 1, len(ids)] and t.assistant.finish_reason == "stop"
    if reply.endswith(ELLIPSIS):  # its finished sentences were under half the limit: cut at the limit
        assert 15 <= word_count(reply) <= 29 and len(forced) == 2 and forced[0][1] == len(ids) - 1
        assert engine.detokenize(ids[forced[0][0]:forced[0][1]]).strip() == ELLIPSIS
    else:  # whole sentences, not a cut word, and not a short preamble alone
        assert 15 <= word_count(reply) <= 29 and reply.rstrip()[-1] in ".!?:;)" and len(forced) == 1

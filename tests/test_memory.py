"""The preference memory without a model: extraction rules, the profile's learn / confirm /
replace / tombstone semantics, editing and deletion, forgetting, and where the note goes — on a
real SQLite file in a tmp CLAWDESK_HOME."""

from __future__ import annotations

import pytest

from clawdesk.memory import Memory, note_for
from clawdesk.memory.rules import extract, rewrites
from clawdesk.records import MemoryNote, WishSource
from clawdesk.settings import Settings
from clawdesk.signals import turn_messages
from clawdesk.store import Store


def texts(text: str, channel: str = "comment", after_reply: bool = True) -> list[str]:
    return [c.text for c in extract(text, channel, after_reply)]


# --- rules ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("said, channel, wish", [
    ("under 30 words please", "correction", "Keep every answer under 30 words."),
    ("Too long. Please keep it under 30 words.", "message", "Keep every answer under 30 words."),
    ("thirty words max", "comment", "Keep every answer to at most 30 words."),
    ("call me Dana", "comment", "Call me Dana."),
    ("always end with a question", "comment", "End every answer with a question."),
    ("no lists", "thumbs_down", "Write plain sentences, no lists."),
    ("please be brief", "comment", "Keep answers short and to the point."),
    ("no markdown please", "comment", "Write plain sentences: no Markdown, no lists, no bold, no headings."),
    ("Please always begin with 'Hi Sam!' and then answer.", "message", "Start every answer with 'Hi Sam!'."),
    ("From now on, answer in French.", "message", "Answer in French."),
    ("Keep it to one sentence", "comment", "Answer in one sentence."),
    ("no emojis", "comment", "No emojis."),
    ("be more formal", "comment", "Use a formal tone."),
    ("From now on, explain like I'm five.", "message", "Explain like I'm five."),
    ("Can you always answer in French?", "message", "Answer in French."),
    ("Don't apologize so much.", "comment", "Don't apologize so much."),
    ("too long", "reason", "Keep answers short and to the point."),
])
def test_rules_find_explicit_wishes(said, channel, wish):
    assert texts(said, channel) == [wish]


@pytest.mark.parametrize("said, channel", [
    ("Write a haiku under 30 words", "message"),  # a request for this reply, not a wish about every reply
    ("Can you explain gravity in 30 words?", "message"),
    ("What do you always say?", "message"),
    ("What is gravity?", "message"),
    ("Thanks!", "message"),
    ("call me back later", "comment"),
    ("The capital of France is Paris.", "correction"),  # a rewritten answer is a demonstration, not a wish
    ("wrong", "reason"),
    ("Don't worry about it", "message"),  # "don't …" counts only where the person says what was wrong
    ("Is there a shorter route to Paris?", "message"),  # a question, not a complaint
    ("Should I sound less formal in my email?", "message"),
    ("Do you always answer in English?", "message"),  # a question about the assistant, not a wish
])
def test_rules_leave_requests_and_facts_alone(said, channel):
    assert texts(said, channel) == []


def test_a_short_message_counts_only_after_a_reply():
    assert texts("Under 30 words please.", "message", after_reply=True) == ["Keep every answer under 30 words."]
    assert texts("Under 30 words please.", "message", after_reply=False) == []
    assert texts("From now on, under 30 words please.", "message", after_reply=False) == ["Keep every answer under 30 words."]


def test_an_opening_phrase_is_not_read_as_a_length_wish():
    assert texts("Begin with 'TL;DR:' and the short version, then the details.", "message") == [
        "Start every answer with 'TL;DR:' and the short version, then the details."]


def test_one_text_can_state_several_wishes_one_per_slot():
    found = extract("My name is Sam. Always start your reply by greeting me by name. No lists, under 40 words.", "comment")
    assert {c.slot for c in found} == {"name", "opening", "length", "format"}


def test_a_long_correction_is_a_rewritten_answer():
    answer = "The sky looks blue because " + "air scatters the short blue wavelengths of sunlight more than red ones " * 3
    assert texts(answer + " Keep it under 30 words.", "correction") == []


def test_a_short_correction_made_of_the_replys_words_is_a_rewrite_not_a_wish():
    """Seen in the headline grid: a person who wants short answers writes short corrections, and
    "…start with small, manageable steps…" became the wish "Start every answer with small,
    manageable steps". A correction box holding an instruction still counts."""
    reply = ("Procrastination is common. Start with small, manageable steps: work just ten minutes at a time, "
             "then take a short break, and reward yourself when you finish a task you were avoiding.")
    rewrite = "To stop procrastinating, start with small, manageable steps - just ten minutes at a time."
    assert rewrites(rewrite, reply) and extract(rewrite, "correction") != []  # the rules alone would read it
    assert extract(rewrite, "correction", reply=reply) == []
    instruction = "Please always begin with 'Hi Sam!' and then answer."
    assert not rewrites(instruction, reply)
    assert [c.slot for c in extract(instruction, "correction", reply=reply)] == ["opening"]
    assert texts("under 30 words please", "correction") == ["Keep every answer under 30 words."]


def test_a_rewritten_reply_in_the_correction_box_teaches_the_memory_nothing(store, memory):
    reply = "Start with small, manageable steps: work ten minutes at a time, then rest, then start again."
    _, _, a = turn(store, "How can I stop procrastinating?", reply)
    fb = store.add_feedback(a, "correction", correction="Start with small, manageable steps, ten minutes at a time.")
    assert memory.learn_from_feedback(fb) == [] and store.wishes() == []


# --- the profile ---------------------------------------------------------------------------------

@pytest.fixture
def memory(store: Store) -> Memory:
    return Memory(store, Settings())


def turn(store: Store, question: str = "Why is the sky blue?", answer: str = "A long answer.") -> tuple[int, int, int]:
    cid = store.new_conversation("t").id
    u = store.add_message(cid, "user", question).id
    a = store.add_message(cid, "assistant", answer, parent_id=u).id
    return cid, u, a


def test_feedback_teaches_a_wish_with_its_source(store, memory):
    cid, _, a = turn(store)
    heard = []
    memory.on_learned = heard.append
    fb = store.add_feedback(a, "thumbs_down", reason="too long", comment="keep it under 30 words")
    learned = memory.learn_from_feedback(fb)
    assert [(x.kind, x.wish.text) for x in learned] == [("new", "Keep every answer under 30 words.")]
    assert heard == [learned]
    (wish,) = store.wishes()
    assert wish.slot == "length" and wish.origin == "rule"
    assert [(s.message_id, s.feedback_id, s.conversation_id, s.channel, s.quote) for s in wish.sources] == [
        (a, fb.id, cid, "thumbs_down", "under 30 words")]


def test_said_twice_is_one_wish_confirmed_twice(store, memory):
    for _ in range(2):
        _, _, a = turn(store)
        memory.learn_from_feedback(store.add_feedback(a, "correction", correction="under 30 words please"))
    (wish,) = store.wishes()
    assert len(wish.sources) == 2 and wish.text == "Keep every answer under 30 words."


def test_reading_the_same_feedback_again_changes_nothing(store, memory):
    _, _, a = turn(store)
    fb = store.add_feedback(a, "comment", comment="call me Dana")
    assert memory.learn_from_feedback(fb)
    assert memory.learn_from_feedback(fb) == []
    assert len(store.wishes()[0].sources) == 1


def test_a_new_wish_in_a_slot_replaces_the_old_words_and_a_vaguer_one_confirms(store, memory):
    _, _, a = turn(store)
    memory.learn_from_feedback(store.add_feedback(a, "comment", comment="under 30 words please"))
    _, _, b = turn(store)
    (changed,) = memory.learn_from_feedback(store.add_feedback(b, "comment", comment="under 50 words please"))
    assert changed.kind == "changed" and changed.wish.text == "Keep every answer under 50 words."
    _, _, c = turn(store)
    (confirmed,) = memory.learn_from_feedback(store.add_feedback(c, "thumbs_down", reason="too long"))
    assert confirmed.kind == "confirmed" and confirmed.wish.text == "Keep every answer under 50 words."
    assert len(store.wishes()) == 1 and len(store.wishes()[0].sources) == 3


def test_an_opening_without_quoted_words_confirms_the_quoted_one(store, memory):
    """"Say hi to me first" after "start with 'Hi Sam!'": the engine keeps writing "Hi Sam!"."""
    _, _, a = turn(store)
    memory.learn_from_feedback(store.add_feedback(a, "comment", comment="Please always begin with 'Hi Sam!'"))
    _, _, b = turn(store)
    (vaguer,) = memory.learn_from_feedback(store.add_feedback(b, "comment", comment="Say hi to me first, then answer."))
    assert vaguer.kind == "confirmed" and memory.literals().opening == "Hi Sam!"
    _, _, c = turn(store)
    (new_words,) = memory.learn_from_feedback(store.add_feedback(c, "comment", comment="Start with 'Hello Sam.'"))
    assert new_words.kind == "changed" and memory.literals().opening == "Hello Sam."
    assert len(store.wishes()) == 1 and len(store.wishes()[0].sources) == 3


def test_a_complaint_with_the_question_asked_again_is_a_remark_on_the_reply(store, memory):
    """"Begin with 'TL;DR:' … <the same question>": the question asked again is taken out and the
    rest read as a complaint, at once; a new question with a wish stays a one-off request."""
    cid, u, a = turn(store, "What is cloud computing?")
    again = store.add_message(cid, "user", "Begin with 'TL;DR:' and the short version, then the details. "
                                           "What is cloud computing?", parent_id=a)
    assert memory.remark(again) == "Begin with 'TL;DR:' and the short version, then the details."
    (learned,) = memory.learn_from_message(again, after_reply=True)
    assert learned.wish.slot == "opening" and memory.literals().opening == "TL;DR:"
    b = store.add_message(cid, "assistant", "TL;DR: it is renting computers.", parent_id=again.id).id
    new = store.add_message(cid, "user", "Keep it under 10 words. What is a black hole?", parent_id=b)
    assert memory.remark(new) == new.content and memory.learn_from_message(new, after_reply=True) == []


def test_a_lasting_marker_before_a_new_sentence_is_not_a_wish():
    assert texts("I need the TL;DR first, always. How do noise-cancelling headphones work?", "message") == []
    assert texts("Always use metric units.", "message") == ["Always use metric units."]


def test_a_deleted_wish_is_never_relearned_from_the_same_turns(store, memory):
    _, _, a = turn(store)
    fb = store.add_feedback(a, "correction", correction="under 30 words please")
    (learned,) = memory.learn_from_feedback(fb)
    memory.remove(learned.wish.id)
    assert store.wishes() == [] and memory.note() is None
    assert memory.learn_from_feedback(fb) == []  # the nightly pass reads the same turn again
    assert store.wishes() == []
    (tomb,) = store.wishes(include_deleted=True)
    assert tomb.status == "deleted" and tomb.sources[0].feedback_id == fb.id
    # said again in a new turn: it comes back
    _, _, b = turn(store)
    (back,) = memory.learn_from_feedback(store.add_feedback(b, "correction", correction="under 30 words please"))
    assert back.kind == "new" and back.wish.id == tomb.id and store.wishes()[0].status == "active"


def test_purge_forgets_the_wish_and_its_quotes(store, memory):
    _, _, a = turn(store)
    (learned,) = memory.learn_from_feedback(store.add_feedback(a, "comment", comment="call me Dana"))
    memory.remove(learned.wish.id, purge=True)
    assert store.wishes(include_deleted=True) == []
    assert store.execute("select count(*) from wish_sources")[0][0] == 0


def test_add_and_edit_by_hand(store, memory):
    wish = memory.add("keep answers under 40 words")
    assert wish.text == "Keep answers under 40 words." and wish.slot == "length" and wish.origin == "user"
    assert memory.edit(wish.id, "Keep answers under 20 words").text == "Keep answers under 20 words."
    with pytest.raises(ValueError):
        memory.edit(wish.id, "  ")
    # a learned length wish replaces the hand-written one's words instead of contradicting it
    _, _, a = turn(store)
    memory.learn_from_feedback(store.add_feedback(a, "comment", comment="under 60 words please"))
    (only,) = store.wishes()
    assert only.id == wish.id and only.text == "Keep every answer under 60 words."


def test_forgetting_the_turns_forgets_the_wishes_learned_from_them(store, memory):
    cid, _, a = turn(store)
    memory.learn_from_feedback(store.add_feedback(a, "comment", comment="call me Dana"))
    typed = memory.add("No emojis.")
    store.forget_conversations([cid])
    assert [w.id for w in store.wishes(include_deleted=True)] == [typed.id]  # typed in by hand: stays


def test_memory_learn_off_learns_nothing(store):
    _, _, a = turn(store)
    off = Memory(store, Settings().replace(memory_learn=False))
    assert off.learn_from_feedback(store.add_feedback(a, "comment", comment="call me Dana")) == []
    assert store.wishes() == []



def test_nothing_is_learned_from_an_excluded_reply_or_conversation(store, memory):
    _, _, a = turn(store)
    store.set_message_exclude(a)
    assert memory.learn_from_feedback(store.add_feedback(a, "comment", comment="call me Dana")) == []
    cid, _, b = turn(store)
    store.update_conversation(cid, exclude=True)
    assert memory.learn_from_feedback(store.add_feedback(b, "comment", comment="call me Dana")) == []
    assert store.wishes() == []
    _, _, c = turn(store)  # the same words on a reply that may teach
    assert memory.learn_from_feedback(store.add_feedback(c, "comment", comment="call me Dana"))

# --- the note ------------------------------------------------------------------------------------

def test_the_note_goes_on_the_latest_user_message_only(store, memory):
    memory.add("Keep answers short and to the point.")
    memory.add("call me Dana")
    note = memory.note()
    assert note.text == "Keep answers short and to the point. Call me Dana." and note.placement == "user"
    history = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    placed = note.apply(history)
    assert placed[:2] == history[:2]  # earlier turns unchanged: the KV-prefix reuse keeps them
    assert placed[2]["content"] == "c\n\n(Keep answers short and to the point. Call me Dana.)"
    assert history[2]["content"] == "c"  # a copy


def test_a_word_limit_is_held_by_the_engine_not_stated_in_the_note(store):
    """Trained weights now and then answered the note "(Keep every answer under 30 words.)"
    instead of the question; the engine ends every reply within the number anyway
    (memory_word_limit), so the wish stays out of the note. A length wish with no number is all
    the model has, so the note keeps it; with the setting off, the note states the number."""
    memory = Memory(store, Settings())
    memory.add("Keep every answer under 30 words.")
    memory.add("Call me Dana.")
    assert memory.note().text == "Call me Dana." and memory.literals().max_words == 29
    assert Memory(store, Settings().replace(memory_word_limit=False)).note().text == (
        "Keep every answer under 30 words. Call me Dana.")
    memory.edit(store.wishes()[0].id, "Keep answers short.")
    assert memory.note().text == "Keep answers short. Call me Dana." and memory.literals().max_words == 0


@pytest.mark.parametrize("placement, first, last", [
    ("system", {"role": "system", "content": "Be kind.\n\nW."}, "q"),
    ("user_tag", {"role": "system", "content": "Be kind."}, "q\n\n[user's hint / instruction]\nW."),
    ("user_prefix", {"role": "system", "content": "Be kind."}, "W.\n\nq"),
])
def test_other_placements(placement, first, last):
    placed = MemoryNote(placement, "W.").apply([{"role": "system", "content": "Be kind."}, {"role": "user", "content": "q"}])
    assert placed[0] == first and placed[-1]["content"] == last


def test_a_plain_text_wish_is_held_by_the_sampler_not_stated_in_the_note(store):
    """On trained weights the note "(Write plain sentences, no lists.)" was sometimes taken for the
    task; the sampler keeps every reply off Markdown anyway (memory_plain_text), so the wish stays
    out of the note. With that setting off, the note is all there is, so it states it."""
    memory = Memory(store, Settings())
    memory.add("Write plain sentences, no lists.")
    memory.add("Call me Dana.")
    assert memory.note().text == "Call me Dana." and memory.literals().plain
    assert Memory(store, Settings().replace(memory_plain_text=False)).note().text == (
        "Write plain sentences, no lists. Call me Dana.")


def test_placement_off_and_no_wishes_add_nothing(store):
    assert Memory(store, Settings()).note() is None
    Memory(store, Settings()).add("No emojis.")
    assert Memory(store, Settings().replace(memory_placement="off")).note() is None
    assert note_for(store.wishes(), "nowhere") is None


def test_earlier_messages_keep_their_note_while_it_is_the_current_one(store):
    from clawdesk.memory import render

    cid = store.new_conversation("t").id
    u1 = store.add_message(cid, "user", "a")
    a1 = store.add_message(cid, "assistant", "b", parent_id=u1.id)
    u2 = store.add_message(cid, "user", "c", parent_id=a1.id)
    a2 = store.add_message(cid, "assistant", "d", parent_id=u2.id)
    u3 = store.add_message(cid, "user", "e", parent_id=a2.id)
    path = store.path_to(u3.id)
    dana, brief = MemoryNote("user", "Call me Dana."), MemoryNote("user", "Be brief.")
    # a1 was answered without the memory, a2 with Dana: with Dana still current, u2 keeps it
    got = render("S", path, {a2.id: dana}, dana)
    assert [m["content"] for m in got] == ["S", "a", "b", "c\n\n(Call me Dana.)", "d", "e\n\n(Call me Dana.)"]
    # the memory changed: every earlier note drops, only the latest message has the new one
    got = render("S", path, {a2.id: dana}, brief)
    assert [m["content"] for m in got] == ["S", "a", "b", "c", "d", "e\n\n(Be brief.)"]
    assert render("", path, {a2.id: dana}, None) == [{"role": m.role, "content": m.content} for m in path]
    # a system note goes to the system prompt only
    assert render("S", path, {a2.id: dana}, MemoryNote("system", "Call me Dana."))[0]["content"] == "S\n\nCall me Dana."


def test_turn_messages_rebuild_the_prompt_with_its_note(store):
    cid, u, a = turn(store)
    store.record_note(a, MemoryNote("user", "Call me Dana.", (1,)))
    assert turn_messages(store, store.get_message(a))[-1] == {"role": "user", "content": "Why is the sky blue?\n\n(Call me Dana.)"}
    assert store.note_of(a).wish_ids == (1,)
    store.forget_conversations([cid])
    assert store.execute("select count(*) from memory_notes")[0][0] == 0


def test_a_source_from_outside_the_rules_is_kept_verbatim(store, memory):
    _, _, a = turn(store)
    from clawdesk.memory.rules import Candidate

    learned = memory.learn(Candidate("cite your sources", "", "cite your sources"),
                           WishSource(a, None, None, "judge", "cite your sources"), origin="judge")
    assert learned.wish.text == "Cite your sources." and learned.wish.origin == "judge"


# --- the wish judge's grammar (model-free parts) -------------------------------------------------

def test_the_judge_is_offered_only_clauses_that_ask_for_something():
    from clawdesk.memory.judge import clauses

    assert clauses("Thanks, that helped a lot. I prefer answers with a concrete example.") == [
        "I prefer answers with a concrete example"]
    assert clauses("Please use metric units, I live in Germany.") == ["Please use metric units"]
    assert clauses("I need the TL;DR first, always.") == ["I need the TL;DR first, always"]
    assert clauses("That is wrong, Paris is the capital of France.") == []


def test_a_request_for_one_reply_is_no_clause_unless_it_says_it_lasts():
    """On the headline grid the judge took the next question, "Give me some ideas for a healthy
    breakfast.", as a lasting wish, and the model then answered it in place of later questions."""
    from clawdesk.memory.judge import clauses

    for request in ("Give me some ideas for a healthy breakfast.", "Tell me about volcanoes.",
                    "Write a haiku about autumn.", "Show me how to change a tire.", "How can I remember names better?"):
        assert clauses(request) == [], request
    assert clauses("Give me short answers from now on.") == ["Give me short answers from now on"]
    assert clauses("Please give me a summary at the end of every answer.") == [
        "Please give me a summary at the end of every answer"]
    assert clauses("Write in Spanish please.") == ["Write in Spanish please"]
    assert clauses("Could you always answer in Spanish?") == ["Could you always answer in Spanish"]


def test_a_next_question_reaches_no_judge(store, memory):
    """The nightly pass reads every message that follows a reply; a new question has nothing for
    the judge, so none is loaded and no wish is learned."""
    from clawdesk.memory.judge import extract_pending

    cid, _, a = turn(store, "What should I eat?", "Some ideas: oats, eggs.")
    store.add_message(cid, "user", "Give me some ideas for a healthy breakfast.", parent_id=a)

    def no_judge():
        raise AssertionError("nothing here needs the judge")

    assert extract_pending(store, Settings(), no_judge) == []
    assert store.wishes() == []


def test_the_judge_grammar_allows_only_none_or_a_clause():
    from clawdesk.memory.judge import grammar_for

    assert grammar_for(['say "hi" first', "a\\b"]) == 'root ::= "NONE" | "WISH: " ("say \\"hi\\" first" | "a\\\\b")\n'


def test_export_and_import_carry_the_memory_tombstones_included(store, memory, tmp_path):
    import io

    from clawdesk.store import open_store, transfer

    _, _, a = turn(store)
    (kept,) = memory.learn_from_feedback(store.add_feedback(a, "comment", comment="call me Dana"))
    fb = store.add_feedback(a, "correction", correction="under 30 words please")
    (gone,) = memory.learn_from_feedback(fb)
    memory.remove(gone.wish.id)
    store.record_note(a, MemoryNote("user", "Call me Dana.", (kept.wish.id,)))
    out = io.StringIO()
    counts = transfer.write_export(store, out)
    assert counts["wish"] == 2 and counts["wish_source"] == 2 and counts["memory_note"] == 1

    other = open_store(tmp_path / "other.db")
    transfer.import_records(other, transfer.read_records(io.BytesIO(out.getvalue().encode()), name="export"))
    assert [(w.text, w.status) for w in other.wishes(include_deleted=True)] == [
        ("Call me Dana.", "active"), ("Keep every answer under 30 words.", "deleted")]
    assert other.note_of(a) == MemoryNote("user", "Call me Dana.", (kept.wish.id,))
    assert Memory(other, Settings()).learn_from_feedback(other.get_feedback(fb.id)) == []  # still a tombstone
    other.close()

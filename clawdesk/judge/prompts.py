"""The two judge prompts (docs/method.md §2 and §3, in ClawDesk's own words) and their grammars.

Unlike the reference implementation, the prompts include the user's original request next to the
response and the next state. The reference judge sees only (response, next state); but "asks the
same thing again in other words" — the commonest negative signal in chat — can only be recognised
by comparing the next message with the request, and a follow-up that builds on the answer looks
like an unrelated new question without it. A small judge needs that context most.

Grammars (GBNF) make even the bundled 135M model produce a valid vote: one line of reasoning
(bounded, so it ends well inside the token limit and cannot open a box of its own), then exactly
one allowed ``\\boxed{}``, then nothing — the sampler may only end the text there.
"""

from __future__ import annotations

PRM_SYSTEM = """You judge one reply of an AI assistant by what happened right after it.
You see the user's request, the assistant's reply, and the next state: the user's next message, or a tool's output.
Score 1 if the next state shows the reply worked: the user thanks, agrees, or moves on and builds on the answer; the tool succeeded.
Score -1 if the reply was wrong or unwanted: the user corrects it ("no, it is X", "change X to Y"), complains, asks for a redo, or asks for the same thing again in other words; or the tool reports an error the reply caused. A request to change the reply counts as -1, not as a neutral new instruction.
Score 0 if the next state is unrelated to the reply or says nothing clear about it.
Reason in one short sentence, then end with \\boxed{1}, \\boxed{-1} or \\boxed{0}."""

PRM_USER = """## The user's request
{request}

## The assistant's reply
{response}

## Next state ({role})
{next_state}

Did the reply work? Reason in one short sentence, then answer \\boxed{{1}}, \\boxed{{-1}} or \\boxed{{0}}."""

HINT_SYSTEM = """You read one reply of an AI assistant and what happened right after it (the next state).
Decide whether the next state reveals something that would have made the reply better: a missing or wrong fact, a correction, or a wish about length, tone, language or format.
If it does, write \\boxed{1} and then a concise, concrete instruction of one to three sentences for the assistant between [HINT_START] and [HINT_END], for example: \\boxed{1} [HINT_START]Answer in French and keep it to one sentence.[HINT_END]
If it does not, write \\boxed{-1} and no hint.
Reason in one short sentence first."""

HINT_USER = """## The user's request
{request}

## The assistant's reply
{response}

## Next state ({role})
{next_state}

Would the next state have improved the reply? Reason in one short sentence, then answer \\boxed{{1}} with [HINT_START]...[HINT_END], or \\boxed{{-1}}."""

# One line of reasoning without braces or backslashes (so it cannot open a box of its own),
# 12–240 characters, then the verdict. The bound keeps a vote within ~80 tokens.
PRM_GRAMMAR = r'''
root ::= reason " \\boxed{" verdict "}"
reason ::= [^\n\\{}]{12,240}
verdict ::= "1" | "-1" | "0"
'''

HINT_GRAMMAR = r'''
root ::= reason " " (yes | no)
yes ::= "\\boxed{1} [HINT_START]" hint "[HINT_END]"
no ::= "\\boxed{-1}"
reason ::= [^\n\\{}\[\]]{12,200}
hint ::= [^\n\\{}\[\]]{11,240}
'''

# Character caps per field so that the judge prompt fits a 2048-token context with room for the
# vote (~4 characters per token in English).
REQUEST_CHARS, RESPONSE_CHARS, NEXT_STATE_CHARS = 1200, 2400, 1200


def clip(text: str, limit: int) -> str:
    """Keep the head and tail of a long text: openings and endings carry most of the signal."""
    text = text.strip()
    if len(text) <= limit:
        return text
    half = (limit - 5) // 2
    return f"{text[:half]} […] {text[-half:]}"


def _fill(template: str, request: str, response: str, next_state: str, role: str) -> str:
    return template.format(request=clip(request, REQUEST_CHARS) or "(none)",
                           response=clip(response, RESPONSE_CHARS) or "(empty reply)",
                           next_state=clip(next_state, NEXT_STATE_CHARS), role=role or "user")


def prm_messages(request: str, response: str, next_state: str, role: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": PRM_SYSTEM},
            {"role": "user", "content": _fill(PRM_USER, request, response, next_state, role)}]


def hint_messages(request: str, response: str, next_state: str, role: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": HINT_SYSTEM},
            {"role": "user", "content": _fill(HINT_USER, request, response, next_state, role)}]

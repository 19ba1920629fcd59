"""Which next state belongs to which assistant turn (docs/method.md §1).

For every assistant message the signal is, in order of strength:

1. explicit feedback on it — thumbs up (+1) / thumbs down (−1), a correction (−1), a regenerate
   (−1); these set the reward directly and the judge is not asked for one;
2. a comment the user attached to the message (the judge reads it);
3. the user's next message — a child of the message in the conversation tree — or, when the user
   rewrote their request instead of answering, the rewritten request (a re-ask);
4. a tool result (a ``tool`` child), where tools are used;
5. nothing: no sample yet (the conversation may continue later).

Corrections, comments and thumbs-down reasons are hint candidates in their own right.

'stop' (the user interrupted the reply) is *not* a reward on its own: people stop long replies
once they have read what they need as often as they stop wrong ones, and a −1 on every stop
would teach the model to avoid answers the user merely skimmed. A stop followed by a re-ask
(a regenerate, or the request rewritten) is unambiguous and gives −1; a stop followed by an
ordinary next message is passed to the judge with a note that the reply was interrupted.

Excluded messages and excluded conversations never become samples (deleted conversations take
their samples with them in the store).
"""

from .next_state import find_next_state, turn_messages

__all__ = ["find_next_state", "turn_messages"]

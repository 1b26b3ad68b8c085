"""Prompt texts and fixed phrases. Constants, so code, tests and evals can look for them.

Small local models follow an instruction best when it sits in the user turn right before the
question, and decline reliably only when given one exact word to write: with a system prompt and
"reply exactly: The corpus does not say" Qwen2.5-1.5B declined answerable questions too; with
the instruction in the user turn and a `NOT FOUND` sentinel it answered facts and declined what
the sources do not hold. The task line depends on the shape of the question (rag.answer.shape).
"""

ABSTAIN_TEXT = "The corpus does not say."
ABSTAIN_CLOSEST = "Closest papers in the corpus:"
NOT_FOUND = "NOT FOUND"

SYSTEM = "You answer questions about research papers using only the numbered sources you are given."

TASKS = {
    "fact": "Answer the question in one short sentence. Copy the exact numbers and names from the sources.",
    "which_paper": "Give the exact title of the source that answers the question, then say in one short "
                   "sentence what that paper does.",
    "multi": "For each source that answers the question, write one line '- [n] what that paper does or "
             "finds', copying its key names and numbers. Skip sources that do not answer it.",
    "metadata": "Answer the question in one short sentence from the sources' publication details.",
}
RULES = ("End every sentence with the number of its source in brackets, like [1]. Use only the sources. "
         f"If the sources do not contain the answer, reply exactly: {NOT_FOUND}")

USER = "Sources:\n{sources}\n\nQuestion: {question}\n\n{task} {rules}"
FOLLOWUP_NOTE = " (follow-up to: {previous})"

# The 135M model over-uses any escape hatch ("NOT FOUND" even when the answer is in source [1]),
# so it gets none: abstention is decided before the call, and its sentences are checked after.
SMALL_RULES = "Copy numbers and names exactly. End each sentence with its source number, like [1]."

# Phrases a model uses when it declines; any of them (or NOT_FOUND) turns the answer into an abstention.
REFUSALS = (
    "not found", "corpus does not say", "sources do not", "source does not", "does not mention",
    "do not mention", "not mentioned", "no information", "cannot answer", "can't answer",
    "unable to answer", "not provided", "does not provide", "do not provide", "i don't know",
    "i do not know", "not specified", "does not specify", "not enough information",
)

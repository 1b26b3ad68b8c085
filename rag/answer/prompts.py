"""Prompt texts and fixed phrases. Constants, so code, tests and evals can look for them."""

ABSTAIN_TEXT = "The corpus does not say."
ABSTAIN_CLOSEST = "Closest papers in the corpus:"

SYSTEM = (
    "You answer questions about research papers using only the numbered sources. "
    "Write one to three short sentences. End every sentence with the number of the source it "
    "comes from in brackets, like [1]. Copy numbers and names exactly from the sources. "
    f"If the sources do not answer the question, reply exactly: {ABSTAIN_TEXT}"
)

# The 135M embedded model over-uses any escape hatch it is offered ("the corpus does not say"
# even when the answer is in source [1]), so its prompt has none: abstention is decided before
# the call from retrieval signals, and its sentences are checked after.
SYSTEM_SMALL = (
    "Answer the question in one or two short sentences, using only facts from the numbered "
    "sources. Copy numbers and names exactly. End each sentence with its source number, like [1]."
)

USER = "Sources:\n{sources}\n\nQuestion: {question}"
FOLLOWUP_NOTE = " (follow-up to: {previous})"

# Phrases a model uses when it declines; any of them turns the answer into an abstention.
REFUSALS = (
    "corpus does not say", "sources do not", "source does not", "does not mention",
    "do not mention", "not mentioned", "no information", "cannot answer", "can't answer",
    "unable to answer", "not provided", "does not provide", "do not provide", "i don't know",
    "i do not know", "not specified", "does not specify", "not enough information",
)

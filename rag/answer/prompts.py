"""Prompt texts and fixed phrases. Constants, so code, tests and evals can look for them.

Small local models follow an instruction best when it sits in the user turn right after the
sources and the question. Ollama's models are given one exact word to decline with (the
`NOT FOUND` sentinel); the embedded models are not: offered it, Qwen2.5-Coder-1.5B wrote NOT FOUND
for 27 of 51 answerable dev questions whose answer was in its prompt (model key-fact recall 0.29;
without it 0 of 51 and 0.54; evals/reports/prompt-variants.md). Their abstention comes from the
other signals instead (rag.answer.pipeline): weak evidence, names no source mentions, and an
answer none of whose sentences the checker can back. The task line depends on the shape of the
question (rag.answer.shape).
"""

ABSTAIN_TEXT = "The corpus does not say."
ABSTAIN_CLOSEST = "Closest papers in the corpus:"
NOT_FOUND = "NOT FOUND"

TASKS = {
    "fact": "Answer in one short sentence, copying the exact numbers and names.",
    "which_paper": "Name the paper by its title and say in one short sentence what it does.",
    "multi": "Answer in one or two short sentences, naming each paper you use.",
    "metadata": "Answer in one short sentence.",
}
RULES = f"Cite the source number in brackets, like [1]. If the sources say nothing about it, write only: {NOT_FOUND}"
EMBEDDED_RULES = "Cite the source number in brackets, like [1]."

# Sources first, then the question and the task in one user turn, no system prompt: measured on
# 25 dev questions, a system prompt made Qwen2.5-1.5B decline far more answerable questions.
USER = "{sources}\n\nUsing only the sources above, answer this question: {question}\n{task} {rules}"
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
    "collection does not", "corpus does not", "none of the sources", "none of the papers",
)

"""What an answer is: the structured result every front end renders (CLI, UI, eval, JSON).

Citations are objects, not text: the UI and the eval read these fields and never re-parse
rendered answers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Citation:
    n: int
    paper_id: str
    title: str
    evidence: str  # the abstract sentence that best backs what cites it
    abstract: str = ""
    org: str | None = None
    date: str | None = None
    date_raw: str | None = None
    authors: int | None = None
    upvotes: int | None = None
    sources: str = ""  # seed files listing the paper
    # True: the checker attached it; the model left the sentence uncited, or cited a source not backing it
    attributed: bool = False
    arxiv_id: str | None = None  # where the paper came from, when its source file said (library papers)
    doi: str | None = None
    url: str | None = None


@dataclass
class Sentence:
    text: str
    cites: list[int] = field(default_factory=list)
    supported: bool = False
    reason: str = ""
    attributed: bool = False
    origin: str = "model"  # "model" wrote it; "quote" is an abstract sentence verbatim; "title" a paper heading


@dataclass
class Answer:
    question: str
    text: str
    citations: list[Citation]
    abstained: bool
    backend: str
    model: str
    sentences: list[Sentence] = field(default_factory=list)  # what is shown as the answer, all checked
    unverified: list[Sentence] = field(default_factory=list)  # model sentences the checker could not back
    kind: str = "fact"  # the question's shape: fact, which_paper, multi, metadata
    raw_text: str = ""
    removed_citations: list[int] = field(default_factory=list)
    retrieval_query: str = ""
    sources: list[dict] = field(default_factory=list)  # the numbered sources the model saw
    retrieved: list[dict] = field(default_factory=list)  # every paper retrieval returned, ranked
    closest: list[dict] = field(default_factory=list)  # on abstention: nearest papers
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    timings: dict = field(default_factory=dict)
    relevance: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def supported_share(self) -> float:
        """Share of every sentence the answer holds (shown or set apart) that the checker backed."""
        every = self.sentences + self.unverified
        return sum(s.supported for s in every) / len(every) if every else 0.0

    @property
    def model_sentences(self) -> list[Sentence]:
        """What the model wrote, backed or not (quotes and headings the system added excluded)."""
        return [s for s in self.sentences + self.unverified if s.origin == "model"]

    @property
    def model_supported_share(self) -> float | None:
        written = self.model_sentences
        return sum(s.supported for s in written) / len(written) if written else None

    def to_dict(self) -> dict:
        return {**asdict(self), "supported_share": self.supported_share,
                "model_supported_share": self.model_supported_share}

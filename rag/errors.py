"""The exceptions this library raises.

    RagError                       base: every message names the bad value and the fix
    ├── SettingsError              a setting has a value we cannot use
    ├── CorpusError                a seed file cannot be parsed (names file and line)
    ├── IndexMissingError          there is no index yet: run `python -m rag index`
    ├── StoreError                 Chroma (embedded or server) failed or is unreachable
    │   └── StoreCorrupted         the embedded store cannot be read: `index --rebuild` moves it aside
    ├── InputError                 a question or option from the user is unusable
    └── BackendError               an LLM backend cannot answer
        ├── BackendUnavailable     not reachable / not installed / model missing
        └── ContextOverflow        the prompt did not fit the model's context window

Errors become one red line and a non-zero exit code only at the CLI edge (`rag.cli`).
"""

from __future__ import annotations


class RagError(Exception):
    """Base class; `exit_code` is what the CLI exits with."""

    exit_code = 1


class SettingsError(RagError):
    exit_code = 2


class CorpusError(RagError):
    exit_code = 2

    def __init__(self, path: str, line: int, message: str):
        self.path, self.line = path, line
        super().__init__(f"{path}:{line}: {message}")


class IndexMissingError(RagError):
    exit_code = 3


class StoreError(RagError):
    exit_code = 3


class StoreCorrupted(StoreError):
    exit_code = 3


class InputError(RagError):
    exit_code = 2


class BackendError(RagError):
    exit_code = 4


class BackendUnavailable(BackendError):
    exit_code = 4


class ContextOverflow(BackendError):
    exit_code = 4

import os
import sys

from rag.stdio import reopen_closed

reopen_closed()  # before anything opens a file (rag.stdio)

from rag.cli import main  # noqa: E402

code = main()
if code == 141:
    # The reader went away mid-answer: the embedded model's native threads may still be running,
    # and interpreter shutdown under them aborts ("FATAL: exception not rethrown", exit 134).
    # Nothing is left to write, so leave at once.
    sys.stderr.flush()
    os._exit(141)
sys.exit(code)

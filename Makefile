# callstack-forensics: every target sets up what it needs on a fresh machine.
VENV    ?= .venv
PY      := $(VENV)/bin/python
CLI     := $(VENV)/bin/callstack-forensics
SHARED  ?= ../shared
OUT     ?= out
# Debian packages the tests need: mingw-w64 builds real PE32+/PE32 programs, Wine runs them,
# winedbg is the independent reference for the stack engine and LLDB (lldb, with its Python
# API, python3-lldb-14) the second one; headless Chromium renders the HTML case report in the
# escaping and screenshot tests; osslsigncode and openssl Authenticode-sign the test collections of --files;
# jq is in the README's commands, which tests/readme runs.
APT_PKGS := gcc-mingw-w64-x86-64 gcc-mingw-w64-i686 wine wine64 lldb chromium osslsigncode openssl jq

.PHONY: install system-deps test demo bench oracle samples fuzz clean rule-coverage

$(PY):
	python3 -m venv $(VENV)

install: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	@# The mapped rules/ and plugins/ folders (pyproject.toml) make setuptools install the checkout
	@# through an import finder and print an advisory box about it; that one notice is silenced,
	@# every other warning (deprecations included) still shows.
	PYTHONWARNINGS='ignore:Editable installation' $(PY) -m pip install -q -e '.[test]'
	touch $@

# Installs the Debian packages when run as root on Debian; elsewhere says what is missing.
system-deps:
	@bash tests/wine/install-system-deps.sh $(APT_PKGS)

test: install system-deps
	$(PY) -m pytest -q -rs

oracle: install system-deps
	$(PY) -m tests.wine.oracle

demo: install system-deps
	$(PY) samples/demo.py

# The package's bytecode is compiled first, as pip does for an installed wheel: an editable
# checkout run with PYTHONDONTWRITEBYTECODE set (CI's environment) would otherwise compile every
# module in every process it times (~0.12 s each, twice per fleet run: the CLI and its fork server).
bench: install
	$(PY) -m compileall -q callstack_forensics
	$(PY) -m tests.bench

# Mutation fuzzing (seeded, bounded): 100,000 engine cases, and 1,000 mutated images through the
# plugins when tests/fuzz/images.py exists; exit 1 on any crash or hang. FUZZ_ARGS="--seed 2" etc.
fuzz: install
	$(PY) -m tests.fuzz $(FUZZ_ARGS)

clean:
	rm -rf $(OUT) tests/wine/build .pytest_cache

# Forge every scenario into $(OUT)/samples/NAME.raw (symbols in $(OUT)/samples/symbols):
#   vol -s $(OUT)/samples/symbols -f $(OUT)/samples/benign_desktop.raw windows.pslist
samples: install
	@mkdir -p $(OUT)/samples
	@for s in samples/scenarios/*.toml; do \
	  $(CLI) forge $$s -o $(OUT)/samples/$$(basename $$s .toml).raw || exit 1; \
	done

# How many rules of a folder could fire on our events (every class and field they read is in the
# events of the bundled scenarios, from the image alone and with --files), and the fields still
# missing by how many rules read them:   make rule-coverage RULES=~/elastic/behavior/rules
RULES ?= rules
FIELD_USAGE ?= $(SHARED)/docs/elastic-windows-field-usage.md
rule-coverage: install
	$(PY) samples/rule_coverage.py $(RULES) $(if $(wildcard $(FIELD_USAGE)),--field-usage $(FIELD_USAGE))

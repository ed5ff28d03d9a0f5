# genomebus: `make demo` runs the node end to end on the local stack; `make test` runs every test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test unit integration bench up down status clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# the notice silenced here is informational: the `genomebus/` folder it warns about is the package itself
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install --quiet -e ".[local,test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/genomebus demo

test: $(STAMP)
	$(BIN)/python -m pytest -q --durations=30

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest -q -m integration

bench: $(STAMP)
	$(BIN)/python bench/bench_projection.py

up: $(STAMP)
	$(BIN)/genomebus up

down: $(STAMP)
	$(BIN)/genomebus down

status: $(STAMP)
	$(BIN)/genomebus status

clean:
	-$(BIN)/genomebus down
	rm -rf .genomebus

PYTHON ?= python3.13
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint format bench package

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python requirements.txt requirements-dev.txt
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	touch $@

install: $(STAMP)

# The embedded DynamoDB is kept in $(STATE) (loaded at start, saved as it changes and on
# stop); `make run STATE=` keeps it in memory only.
STATE ?= .devstack/state.json
run: install
	$(BIN)/python -m devstack run $(if $(STATE),--state $(STATE))

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	node --test web/test/
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python -m benchmarks

STAGE ?= dev
package: install
	rm -rf build && mkdir -p build
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(BIN)/chalice package \
		--stage $(STAGE) --merge-template infra/resources.json build/
	$(BIN)/cfn-lint build/sam.json
	@ls -l build/deployment.zip

PYTHON ?= python3.13
VENV := .venv
BIN := $(VENV)/bin
# One stamp per level: `make run` installs the stack's packages only (requirements-run.txt);
# `make test` and the other targets add the test and packaging tools (requirements-dev.txt).
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed

.PHONY: install install-run run test lint format bench package deploy

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): $(BIN)/python requirements.txt requirements-run.txt
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-run.txt
	touch $@

$(STAMP): $(RUN_STAMP) requirements-dev.txt
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	touch $@

install-run: $(RUN_STAMP)

install: $(STAMP)

# The embedded DynamoDB is kept in $(STATE) (loaded at start, saved as it changes and on
# stop); `make run STATE=` keeps it in memory only.
STATE ?= .devstack/state.json
run: install-run
	$(BIN)/python -m devstack run $(if $(STATE),--state $(STATE)) --env-file .devstack/env

# pytest on one worker per CPU (pytest-xdist; tests/parallel.py says what runs where).
TEST_WORKERS ?= logical
test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	node --test web/test/
	npm ci --prefix web --no-audit --no-fund --loglevel=error
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

lint: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python -m benchmarks

# prod by default: only local/dev stages expose the unauthenticated test route.
STAGE ?= prod
package: install
	rm -rf build && mkdir -p build
	$(BIN)/python infra/package.py --stage $(STAGE) build
	$(BIN)/cfn-lint --include-checks I -- build/sam.json
	@ls -l build/deployment.zip build/sam.json

# Deploy what `make package` built. S3_BUCKET receives the zip and the template (the template is
# over the 51,200-byte limit of an inline deploy). Extra CloudFormation parameters: PARAMS.
STACK ?= legal-aid-notifications-$(STAGE)
PARAMS ?=
deploy:
	@test -n "$(S3_BUCKET)" || { echo "make deploy S3_BUCKET=<bucket> [STACK=...] [PARAMS='K=V ...']"; exit 2; }
	aws cloudformation package --template-file build/sam.json \
		--s3-bucket $(S3_BUCKET) --output-template-file build/packaged.yaml
	aws cloudformation deploy --template-file build/packaged.yaml --s3-bucket $(S3_BUCKET) \
		--stack-name $(STACK) --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
		$(if $(PARAMS),--parameter-overrides $(PARAMS),)

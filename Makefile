# Each target creates or refreshes .venv first, with what it needs: serving alone (pyproject's
# dependencies), the `train` extra, or the `dev` extra (tests, lint, benchmarks; it includes `train`).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PRESET ?= default
TRAIN_ARGS ?=

.PHONY: venv serve test browser-test train evaluate accuracy lint format bench bench-cli bench-read bench-preprocess bench-grpc soak fuzz chaos decode-cpu docker-smoke k8s-smoke clean

venv: $(VENV)/.installed-dev

# $(VENV)/.installed-serve, -train, -dev: `pip install -e .`, `.[train]`, `.[dev]` once per change of pyproject.toml
$(VENV)/.installed-%: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".$(if $(filter serve,$*),,[$*])"
	@touch $@

serve: $(VENV)/.installed-serve  ## serve the committed model on http://127.0.0.1:8000 (HOST, PORT, WEB_CONCURRENCY, MNIST_*)
	$(BIN)/python -m app

test: venv  ## the test suite (set MNIST_NPZ=../shared/data/mnist.npz for the full-MNIST checks)
	$(BIN)/python -m pytest

browser-test: venv  ## only the headless-Chromium tests of the page and the docs (screenshots in artifacts/screenshots/)
	$(BIN)/python -m pytest tests/api/test_browser.py

train: $(VENV)/.installed-train  ## retrain models/mnist-mlp.keras (PRESET=default; TRAIN_ARGS="--data ../shared/data/mnist.npz"), then fit /v1/read's confidence for it
	$(BIN)/python -m training --preset $(PRESET) $(TRAIN_ARGS)

evaluate: $(VENV)/.installed-train  ## evaluate models/mnist-mlp.keras on the MNIST test set
	$(BIN)/python -m training.evaluate $(TRAIN_ARGS)

accuracy: venv  ## accuracy on realistic uploads vs the raw digits (ACCURACY_ARGS="--n 10000"), then reading whole numbers of both generators (READING_ARGS="--n 400"); MNIST_NPZ: MNIST
	$(BIN)/python -m bench.uploads_accuracy $(ACCURACY_ARGS)
	$(BIN)/python -m bench.reading_accuracy $(or $(READING_ARGS),--n 400)

bench: venv  ## the service vs the HTTP floor and the tutorial code: req/s, p50/p99, ratios, start-up, memory
	@command -v wrk >/dev/null || (apt-get install -y -qq wrk >/dev/null 2>&1 || echo "wrk unavailable: bench uses its Python load generator")
	$(BIN)/python -m bench.compare all $(BENCH_ARGS)

bench-cli: venv  ## `mnist-service predict` on 10,000 realistic uploads in-process vs --url to a local server: files/s, ratio, same digits (BENCH_CLI_ARGS="--n 2000")
	$(BIN)/python -m bench.cli $(BENCH_CLI_ARGS)

bench-read: venv  ## engine cost of reading a 4-digit canvas vs predicting a 1-digit one: CPU ms and callgrind instructions, ratio vs the 3x goal
	@command -v valgrind >/dev/null || apt-get install -y -qq valgrind >/dev/null 2>&1 || echo "valgrind unavailable: CPU time only"
	$(BIN)/python -m bench.reading_speed $$(command -v valgrind >/dev/null && echo --instructions) $(BENCH_READ_ARGS)

bench-grpc: venv  ## gRPC vs REST /v2 on one server at 8 streams, a 28x28 PNG and a batch of 64 as BYTES: req/s, p50/p99, CPU per request, goal gRPC >= REST (BENCH_GRPC_ARGS="--seconds 5")
	$(BIN)/python -m bench.grpc $(BENCH_GRPC_ARGS)

bench-preprocess: venv  ## in-process, per upload kind and for 12 MP JPEGs: preprocess vs Pillow's decode of the same files (ms, ratio)
	$(BIN)/python -m bench.preprocess $(BENCH_PREPROCESS_ARGS)

soak: venv  ## SOAK_SECONDS (600) at 16 clients of valid and hostile uploads (127.0.0.1): 5xx, failures, RSS per process, curve in artifacts/soak/
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

fuzz: venv  ## FUZZ_SECONDS (600) of atheris: 3/4 on the decode and preprocessing path, 1/4 on the gRPC request converter: exec/s, coverage, new corpus entries; findings in artifacts/fuzz/
	$(BIN)/python -m fuzz $(FUZZ_ARGS)

chaos: venv  ## CHAOS_SECONDS (60) of valid uploads at 16 REST and 4 gRPC clients while engines are killed and frozen, then with 2 workers and one killed
	$(BIN)/python -m bench.chaos $(CHAOS_ARGS)

decode-cpu: venv  ## 4 MiB noise PNGs, 4 at a time for 10 s: the CPU time of the server process against its engines'
	$(BIN)/python -m bench.compare service --body noise --connections 4 --rounds 1 --seconds 10 --check-decode

k8s-smoke:  ## podman kube play deploy/k8s/ on the image docker-smoke built: ready, a prediction over REST and gRPC, the security context, kube down; then docker-compose.yml
	deploy/k8s-smoke.sh

docker-smoke:  ## hadolint, build the image, run it, check /readyz and a prediction over REST and gRPC, read-only run (podman)
	deploy/container-smoke.sh

.PHONY: k8s-check
k8s-check: venv  ## validate deploy/k8s offline (Kubernetes schemas) and check probes, ports and user against the app and image
	$(BIN)/python -m pytest tests/test_deploy.py

.PHONY: grpc-stubs
grpc-stubs: venv  ## regenerate app/api/grpc/proto/'s Python stubs from the vendored proto (grpcio-tools)
	$(BIN)/python -m app.api.grpc.proto.generate

lint: venv
	$(BIN)/ruff check app training tests bench tools fuzz
	$(BIN)/ruff format --check app training tests bench tools fuzz
	$(BIN)/mypy app training

format: venv
	$(BIN)/ruff format app training tests bench tools fuzz

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info

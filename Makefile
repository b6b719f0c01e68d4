# Front door. `make help` lists targets; `make train EXP=sf2f` and `make test` set up everything they need.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stack
EXP ?= sf2f
DATA ?=
CKPT ?=
ARGS ?=
SIZE ?= demo
DATASET ?= hq_voxceleb
ROOT ?=
OUT ?=
AUDIO ?=
IMAGE ?=
RUNS ?=
WEIGHTS ?=
NOISE_SWEEP ?=
BENCH ?= runs/bench
SF2F_REPO ?=
WAV2PIX_REPO ?=

# The pinned stack (pyproject.toml). torch goes first and alone; facenet-pytorch without its own pins.
TORCH := torch==2.9.1 torchvision==0.24.1

.DEFAULT_GOAL := help
.PHONY: help setup train eval infer compare bench test test-slow demo-data prepare clean

help: ## List targets and experiments
	@echo "Usage: make <target> [EXP=name] [DATA=path] [CKPT=last|path] [ARGS='--trainer.max_steps=100 …']"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-11s %s\n", $$1, $$2}'
	@echo "Experiments (EXP=):"; for f in experiments/*.yaml; do n=$$(basename $$f .yaml); \
	  [ $$n = smoke ] || printf "  %-16s %s\n" $$n "$$(head -1 $$f | sed 's/^# //')"; done

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q --no-deps facenet-pytorch==2.6.0
	@touch $(STAMP)

setup: $(STAMP) ## Create .venv with the pinned stack (done automatically by train/test)

demo-data: $(STAMP) ## Generate a demo dataset: DATASET=hq_voxceleb SIZE=demo|tiny
	$(PY) -m datamodules.synthetic --layout $(DATASET) --size $(SIZE) --out data/demo/$(SIZE)/$(DATASET)

prepare: $(STAMP) ## Preprocess DATASET at ROOT into its cache (OUT=folder, EXP=take its parameters, ARGS='--set k=v')
	$(PY) -m datamodules.prepare $(DATASET) $(if $(ROOT),--root $(ROOT)) $(if $(OUT),--out $(OUT)) \
	  $(if $(filter command line,$(origin EXP)),--experiment $(EXP)) $(ARGS)

train: $(STAMP) ## Train EXP (default sf2f) on DATA, or on the demo dataset; CKPT=last resumes, CKPT=auto resumes if unfinished
	$(PY) -m experiments.train $(EXP) $(if $(DATA),--data $(DATA)) $(if $(CKPT),--resume $(CKPT)) $(ARGS)

eval: $(STAMP) ## Evaluate EXP's CKPT (file, run folder or last; several: CKPT="a b"): paper protocol + shared metrics (WEIGHTS="syncnet_weights=… inception_weights=…", NOISE_SWEEP=1)
	$(PY) -m experiments.evaluate $(EXP) $(foreach c,$(or $(CKPT),last),--ckpt $(c)) $(if $(DATA),--data $(DATA)) \
	  $(if $(OUT),--out $(OUT)) $(foreach w,$(WEIGHTS),--weights $(w)) $(if $(NOISE_SWEEP),--noise-sweep) $(ARGS)

infer: $(STAMP) ## Video from AUDIO=speech.wav + IMAGE=face.jpg into OUT=out.mp4; face systems: PNG from AUDIO="a.wav b.wav"
	$(PY) -m experiments.infer $(EXP) --ckpt $(or $(CKPT),last) --audio $(AUDIO) $(if $(IMAGE),--image $(IMAGE)) \
	  --out $(or $(OUT),$(if $(filter wav2pix% sf2f%,$(EXP)),out.png,out.mp4)) $(ARGS)

compare: $(STAMP) ## Side-by-side report of RUNS="runs/a/<ts> runs/b/<ts>" (curves, metrics, samples) into OUT=folder
	$(PY) -m experiments.compare $(RUNS) $(if $(OUT),--out $(OUT)) $(ARGS)

bench: $(STAMP) ## Benchmarks (docs/benchmarks.md): train step, Lightning overhead, FLOPs/MFU, data headroom, inference RTF; SF2F_REPO/WAV2PIX_REPO=official checkouts
	@mkdir -p $(BENCH)
	$(PY) -m benchmarks.train_step --json $(BENCH)/train_step.json $(ARGS) | tee $(BENCH)/train_step.md
	$(PY) -m benchmarks.data_headroom --model-rates $(BENCH)/train_step.json | tee $(BENCH)/data_headroom.md
	$(PY) -m benchmarks.inference | tee $(BENCH)/inference.md
	$(if $(SF2F_REPO)$(WAV2PIX_REPO),$(PY) -m benchmarks.official $(if $(SF2F_REPO),--sf2f-repo $(SF2F_REPO)) \
	  $(if $(WAV2PIX_REPO),--wav2pix-repo $(WAV2PIX_REPO)) | tee $(BENCH)/official.md)

test: $(STAMP) ## Run the test suite (CPU; slow and GPU tests excluded)
	$(PY) -m pytest -q $(ARGS)

test-slow: $(STAMP) ## Run only the slow tests (real-size checks, demo training)
	$(PY) -m pytest -q -m slow $(ARGS)

clean: ## Remove generated data, runs and caches (keeps .venv)
	rm -rf data runs wandb lightning_logs .pytest_cache

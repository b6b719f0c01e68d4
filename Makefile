# Front door. `make help` lists targets; `make train EXP=sf2f` and `make test` set up everything they need.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stack
APP_STAMP := $(VENV)/.installed-app
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
RUN ?=
RUN_LIST ?=
CKPT_LIST ?=
AUDIO_LIST ?=
PORT ?= 7860
LIST ?=
WEIGHTS_DIR ?=
NOISE_SWEEP ?=
BENCH ?= runs/bench
SF2F_REPO ?=
WAV2PIX_REPO ?=

# Every variable that holds a path holds exactly one, passed as one argument whatever it contains (spaces,
# parentheses, quotes, non-ASCII, a leading dash): `q` single-quotes it for the shell, `opt` writes
# --option='value' (the = keeps argparse from reading a leading dash as an option). Many paths: a *_LIST file.
q = '$(subst ','\'',$(1))'
opt = $(if $(2),$(1)=$(call q,$(2)))

# CPU steps allocate and free large tensors; by default glibc returns them to the kernel and maps fresh zeroed
# pages the next step (≈ 9 % of a Wav2Pix step, docs/benchmarks.md). Keeping freed memory mapped removes that
# cost; every command started from here inherits it. A value already in the environment wins.
export GLIBC_TUNABLES ?= glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184

# The pinned stack (pyproject.toml). torch goes first and alone; facenet-pytorch without its own pins.
TORCH := torch==2.9.1 torchvision==0.24.1

.DEFAULT_GOAL := help
.PHONY: help setup plan train eval infer export app compare wandb-sync bench gpu-check weights-check lint test test-slow demo-data prepare clean

help: ## List targets and experiments
	@echo "Usage: make <target> [EXP=name] [DATA=path] [CKPT=last|path] [ARGS='--trainer.max_steps=100 …']"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'
	@for kind in "Experiments (EXP=):experiments" "Ablations and variants (EXP=):experiments/ablations" \
	  "Internal stages (run by the experiments above; EXP= runs one with its dependencies):experiments/stages"; do \
	  echo; echo "$${kind%:*}"; for f in $${kind##*:}/*.yaml; do \
	  printf "  %-20s %.96s\n" $$(basename $$f .yaml) "$$(head -1 $$f | sed 's/^# //')"; done; done

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q --no-deps facenet-pytorch==2.6.0
	@touch $(STAMP)

# The web app's packages (gradio) are an extra: `make app` and `make test` install them, training never does.
$(APP_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[test,app]'
	@touch $(APP_STAMP)

setup: $(STAMP) ## Create .venv with the pinned stack (done automatically by train/test)

demo-data: $(STAMP) ## Generate a demo dataset: DATASET=hq_voxceleb SIZE=demo|tiny
	$(PY) -m datamodules.synthetic --layout=$(call q,$(DATASET)) --size=$(call q,$(SIZE)) \
	  --out=$(call q,data/demo/$(SIZE)/$(DATASET))

prepare: $(STAMP) ## Preprocess DATASET at ROOT into its cache (OUT=folder, EXP=take its parameters, ARGS='--set k=v')
	$(PY) -m experiments.prepare $(call q,$(DATASET)) $(call opt,--root,$(ROOT)) $(call opt,--out,$(OUT)) \
	  $(if $(filter command line,$(origin EXP)),$(call opt,--experiment,$(EXP))) $(ARGS)

train: $(STAMP) ## Train EXP (default sf2f) on DATA, or on the demo dataset; CKPT=last resumes, CKPT=auto resumes if unfinished
	$(PY) -m experiments.train $(call q,$(EXP)) $(call opt,--data,$(DATA)) $(call opt,--resume,$(CKPT)) $(ARGS)

eval: $(STAMP) ## Evaluate EXP's CKPT (file, run folder or last; several: CKPT_LIST=file): paper protocol + shared metrics (WEIGHTS_DIR=folder, NOISE_SWEEP=1, DUMP=1 writes the test outputs)
	$(PY) -m experiments.evaluate $(call q,$(EXP)) $(if $(CKPT_LIST),$(call opt,--ckpt-list,$(CKPT_LIST)),$(call opt,--ckpt,$(or $(CKPT),last))) \
	  $(call opt,--data,$(DATA)) $(call opt,--out,$(OUT)) $(call opt,--weights-dir,$(WEIGHTS_DIR)) $(if $(NOISE_SWEEP),--noise-sweep) $(if $(DUMP),--dump) $(ARGS)

infer: $(STAMP) ## Video from AUDIO=speech.wav + IMAGE=face.jpg into OUT=out.mp4; face systems: PNG from AUDIO=a.wav or AUDIO_LIST=file; batch: LIST=pairs.csv OUT=folder
	$(PY) -m experiments.infer $(call q,$(EXP)) $(call opt,--ckpt,$(or $(CKPT),last)) $(call opt,--audio,$(AUDIO)) \
	  $(call opt,--audio-list,$(AUDIO_LIST)) $(call opt,--image,$(IMAGE)) $(call opt,--list,$(LIST)) \
	  $(call opt,--out,$(OUT)) $(ARGS)

export: $(STAMP) ## Slim checkpoint of EXP's CKPT (file, run folder or last) for sharing/inference into OUT=model.ckpt
	$(PY) -m experiments.export $(call q,$(EXP)) $(call opt,--ckpt,$(or $(CKPT),last)) $(call opt,--out,$(or $(OUT),model.ckpt))

app: $(APP_STAMP) ## Local web app on http://127.0.0.1:PORT (default 7860) for CKPT (file, run folder or last; EXP= names the system) or CKPT_LIST=file, side by side
	$(PY) -m experiments.app $(if $(filter command line,$(origin EXP)),$(call opt,--experiment,$(EXP))) \
	  $(if $(CKPT_LIST),$(call opt,--ckpt-list,$(CKPT_LIST)),$(call opt,--ckpt,$(or $(CKPT),last))) --port=$(PORT) $(ARGS)

compare: $(STAMP) ## Side-by-side report of the runs listed in RUN_LIST=file (one run folder per line) into OUT=folder
	$(PY) -m experiments.compare $(call opt,--run-list,$(RUN_LIST)) $(call opt,--out,$(OUT)) $(ARGS)

wandb-sync: $(STAMP) ## Upload the offline W&B runs (stages, evaluations) of RUN=runs/<EXP>/<timestamp>, or of EXP's newest run
	$(PY) -m experiments.wandb_sync $(if $(RUN),$(call opt,--run,$(RUN)),$(call opt,--experiment,$(EXP))) $(ARGS)

bench: $(STAMP) ## Benchmarks (docs/benchmarks.md): train step, Lightning overhead, FLOPs/MFU, data headroom, inference RTF; SF2F_REPO/WAV2PIX_REPO=official checkouts
	@mkdir -p $(call q,$(BENCH))
	$(PY) -m benchmarks.train_step $(call opt,--json,$(BENCH)/train_step.json) $(ARGS) | tee $(call q,$(BENCH)/train_step.md)
	$(PY) -m benchmarks.data_headroom | tee $(call q,$(BENCH)/data_headroom.md)
	$(PY) -m benchmarks.inference | tee $(call q,$(BENCH)/inference.md)
	$(if $(SF2F_REPO)$(WAV2PIX_REPO),$(PY) -m benchmarks.official $(call opt,--sf2f-repo,$(SF2F_REPO)) \
	  $(call opt,--wav2pix-repo,$(WAV2PIX_REPO)) | tee $(call q,$(BENCH)/official.md))

plan: $(STAMP) ## What make train EXP=… would run: stages, stacked configs and why, hand-overs (DATA=…, ARGS=--smoke)
	$(PY) -m experiments.plan $(call q,$(EXP)) $(call opt,--data,$(DATA)) $(ARGS)

weights-check: $(STAMP) ## What WEIGHTS_DIR (default: the TF_WEIGHTS_DIR variable) holds and enables, each file loaded and checked
	$(PY) -m experiments.weights_check $(call opt,--weights-dir,$(WEIGHTS_DIR))

gpu-check: $(STAMP) ## Every GPU figure in one run (~8 min on one GPU) into OUT=runs/gpu-check; ARGS=--dry-run checks it on the CPU
	$(PY) -m benchmarks.gpu_check $(call opt,--out,$(or $(OUT),runs/gpu-check)) $(ARGS)

lint: $(STAMP) ## ruff check and ruff format --check (make test runs it first)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint $(APP_STAMP) ## Lint, then run the test suite (CPU; slow and GPU tests excluded)
	$(PY) -m pytest -q $(ARGS)

test-slow: $(STAMP) ## Run only the slow tests (real-size checks, demo training)
	$(PY) -m pytest -q -m slow $(ARGS)

clean: ## Remove generated data, runs and caches (keeps .venv)
	rm -rf data runs wandb lightning_logs .pytest_cache

# u2fusion_tf tasks. Paths and settings are overridable: `make train-all VGG_WEIGHTS=none`.
PYTHON ?= python
SHARED ?= ../shared
# The datasets; empty: each command's default (../shared/data if it exists, else the fetch root)
DATA_ROOT ?=
DATA_ROOT_FLAG = $(if $(DATA_ROOT),--data_root $(DATA_ROOT))
RUNS ?= runs
OUT ?= results

# Use the authors' checkpoint from ../shared when it is there (no download needed).
ifneq ($(wildcard $(SHARED)/official/u2fusion_tf1/model.ckpt.index),)
export U2FUSION_OFFICIAL_CKPT ?= $(abspath $(SHARED)/official/u2fusion_tf1/model.ckpt)
endif

DATA_DIR ?= data
RUN ?= $(RUNS)/u2fusion
# VGG16 weights of the information measure: imagenet (downloaded by Keras), a local .h5, or none
VGG_WEIGHTS ?= imagenet
# VGG16 precision of the information measure: float32, or bf16 (about 4x faster on CPU)
VGG_PRECISION ?= float32
# tf.distribute strategy of training: auto, one_device, mirrored, multi_worker (reads TF_CONFIG)
STRATEGY ?= auto
# Where train-all writes the final weights (the shipped model: u2fusion_tf/u2fusion.weights.h5)
TRAIN_OUTPUT ?= u2fusion_tf/u2fusion.weights.h5
# Extra flags for `python -m u2fusion_tf.train`, e.g. TRAIN_FLAGS="--ewc_lambda 0"
TRAIN_FLAGS ?=
# Extra flags for every `python -m u2fusion_tf.data prepare`, e.g. PREPARE_FLAGS="--stride 128"
PREPARE_FLAGS ?=
# The multi-focus pairs are enlarged and flipped for more patches, as in the paper
FOCUS_AUGMENTATION ?= --scales 1,1.5 --flips none,horizontal
PREPARE = $(PYTHON) -m u2fusion_tf.data prepare $(DATA_ROOT_FLAG) --split train --vgg_weights $(VGG_WEIGHTS) --vgg_precision $(VGG_PRECISION) $(PREPARE_FLAGS)
TASK_FILES = $(DATA_DIR)/multi-modal.h5 $(DATA_DIR)/multi-exposure.h5 $(DATA_DIR)/multi-focus.h5

.PHONY: install demo test parity lint data train-all train-quick tensorboard bench results paper ablation-data ablations ablation-report ablations-paper-schedule

install:
	$(PYTHON) -m pip install -e .

demo:
	mkdir -p $(OUT)/demo
	$(PYTHON) -m u2fusion_tf.fuse --inputs data/examples/focus_near.png data/examples/focus_far.png --output $(OUT)/demo/focus.png
	$(PYTHON) -m u2fusion_tf.fuse --inputs data/examples/exposure_under.png data/examples/exposure_over.png --output $(OUT)/demo/exposure.png

# The suite in two processes, each test file whole in one of them (its fixtures built once).
test: lint
	$(PYTHON) -m pytest -q -n 2 --dist loadfile

# The fused Y of all 35 u2fusion_test pairs against the authors' TF1 graph (the test suite
# checks the first pair of each set).
parity:
	$(PYTHON) -m pytest -q tests/test_weights.py -k authors_tf1 --all-pairs

lint:
	ruff check .
	ruff format --check .

# Training data, one HDF5 file per task from the train splits; files already built are kept.
data: $(TASK_FILES)

$(DATA_DIR)/multi-modal.h5:
	$(PREPARE) --task multi-modal --datasets roadscene,harvard_pet_mri --output $@

$(DATA_DIR)/multi-exposure.h5:
	$(PREPARE) --task multi-exposure --datasets mefb --output $@

$(DATA_DIR)/multi-focus.h5:
	$(PREPARE) --task multi-focus --datasets mfifb $(FOCUS_AUGMENTATION) --output $@

# The three tasks in sequence with EWC; rerunning after an interruption resumes.
train-all: data
	$(PYTHON) -m u2fusion_tf.train --data_dir $(DATA_DIR) --run_dir $(RUN) \
		--vgg_weights $(VGG_WEIGHTS) --vgg_precision $(VGG_PRECISION) --strategy $(STRATEGY) \
		--output $(TRAIN_OUTPUT) $(TRAIN_FLAGS)

# Training tried in a few minutes on 2 cores: a few train pairs per dataset, the untrained
# VGG16 head (no download) with the c that suits it, a few steps per task; TensorBoard events
# and weights in $(QUICK) (`make tensorboard RUNS=$(QUICK)`), never over the shipped model.
QUICK ?= $(RUNS)/quick
QUICK_PREPARE = $(PYTHON) -m u2fusion_tf.data prepare $(DATA_ROOT_FLAG) --split train \
	--vgg_weights none --vgg_precision bf16 --max_pairs 3 --stride 128
train-quick: $(QUICK)/data/multi-modal.h5 $(QUICK)/data/multi-exposure.h5 $(QUICK)/data/multi-focus.h5
	$(PYTHON) -m u2fusion_tf.train --data_dir $(QUICK)/data --run_dir $(QUICK)/run \
		--vgg_weights none --c_multi_modal 0.1 --c_multi_exposure 0.16 --c_multi_focus 0.027 \
		--epochs_multi_modal 1 --epochs_multi_exposure 1 --epochs_multi_focus 1 \
		--max_batches_multi_modal 10 --max_batches_multi_exposure 10 --max_batches_multi_focus 10 \
		--fisher_batches 5 --validate_every 5 --log_every 5 --output $(QUICK)/u2fusion.weights.h5

$(QUICK)/data/multi-modal.h5:
	$(QUICK_PREPARE) --task multi-modal --datasets roadscene,harvard_pet_mri --output $@

$(QUICK)/data/multi-exposure.h5:
	$(QUICK_PREPARE) --task multi-exposure --datasets mefb --output $@

$(QUICK)/data/multi-focus.h5:
	$(QUICK_PREPARE) --task multi-focus --datasets mfifb --output $@

tensorboard:
	tensorboard --logdir $(RUNS)

# Speed on this machine, with the goals judged: reports/bench.md and its figures in bench.json.
bench:
	$(PYTHON) -m u2fusion_tf.bench $(DATA_ROOT_FLAG) --json reports/bench.json --report reports/bench.md

# The shipped model against the authors' and classic methods on every test set: tables and a
# figure in reports/ (results.md, figure.jpg), fused images and per-image scores in $(OUT).
results:
	$(PYTHON) -m u2fusion_tf.results $(DATA_ROOT_FLAG) --out_dir $(OUT) --report_dir reports

# The paper's Tables 1-4 beside the authors' model (with and without their output scaling) and
# the shipped model: reports/paper.md; the fused images in $(OUT)/paper.
paper:
	$(PYTHON) -m u2fusion_tf.paper $(DATA_ROOT_FLAG) \
		--out_dir $(OUT)/paper --report_dir reports

# The paper's ablations (Sec. 5: EWC, fixed degrees, task order, EWC's lambda), every variant
# trained once per seed (SEEDS) with one reduced schedule (ABLATION_SCHEDULE) on a quarter of the
# patches (stride 128, no multi-focus augmentation); rerunning resumes. Head and c pass through as
# for train-all: `make ablations VGG_WEIGHTS=none TRAIN_FLAGS="--c_multi_modal 0.1 ..."`.
ABLATION_DATA ?= data/ablations
ABLATION_RUNS ?= $(RUNS)/ablations
SEEDS ?= 0,1,2
ABLATION_SCHEDULE ?= --epochs_multi_modal 1 --epochs_multi_exposure 1 --epochs_multi_focus 1 \
	--max_batches_multi_modal 100 --max_batches_multi_exposure 100 --max_batches_multi_focus 100 \
	--validate_every 25
ablation-data:
	$(MAKE) data DATA_DIR=$(ABLATION_DATA) PREPARE_FLAGS="--stride 128" FOCUS_AUGMENTATION=

ablations: ablation-data
	$(PYTHON) -m u2fusion_tf.ablations --data_dir $(ABLATION_DATA) --runs_dir $(ABLATION_RUNS) \
		--seeds $(SEEDS) -- --vgg_weights $(VGG_WEIGHTS) --vgg_precision $(VGG_PRECISION) \
		$(ABLATION_SCHEDULE) $(TRAIN_FLAGS)
	$(MAKE) ablation-report

# The report of the ablation runs: each run summarised into $(ABLATION_REPORT)/runs/ (JSON, kept
# with the project), then $(ABLATION_REPORT).md and its figures rendered from all summaries
# (figures need `pip install -e ".[plots]"`); fused images in $(OUT).
ABLATION_REPORT ?= reports/ablations
# The report's title; empty: the report's own
ABLATION_TITLE ?=
ablation-report:
	$(PYTHON) -m u2fusion_tf.ablation_report --runs_dir $(ABLATION_RUNS) $(DATA_ROOT_FLAG) \
		--out_dir $(OUT)/$(notdir $(ABLATION_REPORT)) --summaries $(ABLATION_REPORT)/runs \
		--report $(ABLATION_REPORT).md --figures $(ABLATION_REPORT) \
		$(if $(ABLATION_TITLE),--title "$(ABLATION_TITLE)")

# Figs. 18 and 19 at the paper's schedule: the baseline and its no-EWC partner trained on the
# full data of `make data` for the paper's epochs, seeds PAPER_SCHEDULE_SEEDS (hours per seed on
# a CPU; rerunning resumes); the report in reports/ablations-paper-schedule.md.
PAPER_SCHEDULE_RUNS ?= $(RUNS)/ablations-paper-schedule
PAPER_SCHEDULE_SEEDS ?= 0,1
ablations-paper-schedule: data
	$(PYTHON) -m u2fusion_tf.ablations --data_dir $(DATA_DIR) --runs_dir $(PAPER_SCHEDULE_RUNS) \
		--seeds $(PAPER_SCHEDULE_SEEDS) --variants baseline,no-ewc -- \
		--vgg_weights $(VGG_WEIGHTS) --vgg_precision $(VGG_PRECISION) $(TRAIN_FLAGS)
	$(MAKE) ablation-report ABLATION_RUNS=$(PAPER_SCHEDULE_RUNS) \
		ABLATION_REPORT=reports/ablations-paper-schedule \
		ABLATION_TITLE="The EWC ablation at the paper's schedule"

# u2fusion_tf tasks. Paths and settings are overridable: `make train-all VGG_WEIGHTS=none`.
PYTHON ?= python
SHARED ?= ../shared
DATA_ROOT ?= $(SHARED)/data
RUNS ?= runs
OUT ?= results

# Use the authors' checkpoint from ../shared when it is there (no download needed).
ifneq ($(wildcard $(SHARED)/official/u2fusion_tf1/model.ckpt.index),)
export U2FUSION_OFFICIAL_CKPT ?= $(abspath $(SHARED)/official/u2fusion_tf1/model.ckpt)
endif

.PHONY: install demo test lint

install:
	$(PYTHON) -m pip install -e .

demo:
	mkdir -p $(OUT)/demo
	$(PYTHON) -m u2fusion_tf.fuse --inputs data/examples/focus_near.png data/examples/focus_far.png --output $(OUT)/demo/focus.png
	$(PYTHON) -m u2fusion_tf.fuse --inputs data/examples/exposure_under.png data/examples/exposure_over.png --output $(OUT)/demo/exposure.png

test: lint
	$(PYTHON) -m pytest -q

lint:
	ruff check .
	ruff format --check .

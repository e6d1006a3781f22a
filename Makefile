# Set-up and entry points. `make demo` and `make test` install what is
# missing into .venv first (tools/setup_env.sh), so each works on a fresh
# machine and takes seconds once installed.
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= work_dirs/demo
DEMO_SEG_DIR ?= work_dirs/demo_seg
DEMO_CLS_DIR ?= work_dirs/demo_cls

.PHONY: install demo demo-data demo-seg demo-seg-data demo-cls demo-cls-data test clean

install:
	VENV=$(VENV) bash tools/setup_env.sh

demo-data: install
	$(PY) tools/misc/generate_demo_data.py data/demo --task det

demo: demo-data
	$(PY) tools/train_al.py configs/demo/saal_tiny_faster_rcnn_shapes.py --work-dir $(DEMO_DIR)

demo-seg-data: install
	$(PY) tools/misc/generate_demo_data.py data/demo_seg --task seg

# Domain-adaptive segmentation: SAAL queries target regions of the synthetic
# "Cityscapes" pool beside a labeled "GTA5" source (about 1 min, 2 CPU cores).
demo-seg: demo-seg-data
	$(PY) tools/train_al.py configs/demo/saal_tiny_deeplabv3plus_street_domains.py --work-dir $(DEMO_SEG_DIR)

demo-cls-data: install
	$(PY) tools/misc/generate_demo_data.py data/demo_cls/digits --task cls

# Classification on real data: scikit-learn's handwritten digits, a small
# ResNet from scratch, SAAL against the reference's small protocol.
demo-cls: demo-cls-data
	$(PY) tools/train_al.py configs/demo/saal_tiny_resnet_digits.py --work-dir $(DEMO_CLS_DIR)

test: install
	$(PY) -m pytest tests -x -q -p no:cacheprovider -n 2 --dist loadfile

clean:
	rm -rf work_dirs data/demo data/demo_seg data/demo_cls

#!/usr/bin/env bash
# Usage: tools/dist_train_al.sh CONFIG GPUS [train_al.py args]
# On a CPU-only machine set env_cfg.dist_cfg.backend=gloo in the config or
# with --cfg-options; GPUS is then the number of processes.
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$(dirname "$0")/train_al.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"

#!/usr/bin/env bash
# Stage I (or Stage II) on several nodes with torchrun's c10d rendezvous.
#
# Run the SAME command on every node; c10d hands out the node ranks, so no rank is given:
#
#   HEAD=node001 NNODES=2 launch/torchrun_multinode.sh \
#       train_configs/stage_I/MetaLlama3.1_8b_q2d_d2q.json \
#       --fsdp true --fsdp_config launch/fsdp/fsdp2_llama.json --activation_checkpointing false
#
# which runs on each node
#
#   python -m torch.distributed.run  (= torchrun) --nnodes 2 --nproc_per_node 8 \
#       --rdzv_backend c10d --rdzv_endpoint node001:29500 --rdzv_id stage_I \
#       experiments/run_stage_I.py CONFIG --gradient_accumulation_steps 4 [your overrides]
#
# The total batch stays TOTAL_BATCH (512, the paper's): unless you pass --gradient_accumulation_steps
# yourself, it is set to TOTAL_BATCH / (per_device_train_batch_size x NNODES x NPROC_PER_NODE), with
# the per-device size read from the config (or from your --per_device_train_batch_size override).
# For DeepSpeed ZeRO-3 pass `--deepspeed launch/deepspeed/zero3.json` instead of the --fsdp options;
# for plain DDP (models up to 3B) pass neither. Under SLURM see launch/slurm/stage_I_multinode.sbatch.
#
# Environment variables (defaults in brackets):
#   HEAD            hostname or IP of the node that hosts the rendezvous (required)
#   NNODES          number of nodes [2]
#   NPROC_PER_NODE  processes (GPUs) per node [8]
#   PORT            rendezvous port on HEAD [29500]
#   RDZV_ID         rendezvous id, the same on all nodes, new for every job [stage_I]
#   TOTAL_BATCH     pairs per optimizer step over all processes [512]
#   SCRIPT          the run script [experiments/run_stage_I.py]
#   PYTHON          the Python interpreter with this package installed [python]
#   DRY_RUN         1: print the torchrun command and exit [0]
set -euo pipefail

if [[ $# -lt 1 || "$1" == "-h" || "$1" == "--help" ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
    exit 2
fi

CONFIG=$1
shift
: "${HEAD:?set HEAD to the hostname or IP of the first node (the rendezvous host)}"
NNODES=${NNODES:-2}
NPROC_PER_NODE=${NPROC_PER_NODE:-8}
PORT=${PORT:-29500}
RDZV_ID=${RDZV_ID:-stage_I}
TOTAL_BATCH=${TOTAL_BATCH:-512}
SCRIPT=${SCRIPT:-experiments/run_stage_I.py}
PYTHON=${PYTHON:-python}

if [[ ! -f "$CONFIG" ]]; then
    echo "error: config file $CONFIG not found (run from the repository root)" >&2
    exit 2
fi

# per_device_train_batch_size and gradient_accumulation_steps as the run will see them:
# the config's values, replaced by a command-line override if there is one.
SIZES=$("$PYTHON" -c '
import json, sys
config = json.load(open(sys.argv[1]))
values = {
    "per_device_train_batch_size": config.get("per_device_train_batch_size", 8),
    "gradient_accumulation_steps": None,
}
args = sys.argv[2:]
for index, arg in enumerate(args):
    for key in values:
        for flag in ("--" + key, "--" + key.replace("_", "-")):
            if arg == flag and index + 1 < len(args):
                values[key] = args[index + 1]
            elif arg.startswith(flag + "="):
                values[key] = arg.split("=", 1)[1]
accumulation = values["gradient_accumulation_steps"]
print(int(values["per_device_train_batch_size"]), "-" if accumulation is None else int(accumulation))
' "$CONFIG" "$@")
read -r PER_DEVICE GIVEN_ACCUMULATION <<<"$SIZES"

WORLD=$((NNODES * NPROC_PER_NODE))
EXTRA=()
if [[ "$GIVEN_ACCUMULATION" == "-" ]]; then
    PER_STEP=$((PER_DEVICE * WORLD))
    if ((TOTAL_BATCH % PER_STEP != 0)); then
        echo "error: TOTAL_BATCH=$TOTAL_BATCH is not a multiple of per_device_train_batch_size x processes" \
             "= $PER_DEVICE x $WORLD; change --per_device_train_batch_size or pass --gradient_accumulation_steps" >&2
        exit 2
    fi
    EXTRA=(--gradient_accumulation_steps $((TOTAL_BATCH / PER_STEP)))
elif ((PER_DEVICE * WORLD * GIVEN_ACCUMULATION != TOTAL_BATCH)); then
    echo "warning: total batch $PER_DEVICE x $WORLD x $GIVEN_ACCUMULATION =" \
         "$((PER_DEVICE * WORLD * GIVEN_ACCUMULATION)), not TOTAL_BATCH=$TOTAL_BATCH" >&2
fi

COMMAND=("$PYTHON" -m torch.distributed.run
    --nnodes "$NNODES" --nproc_per_node "$NPROC_PER_NODE"
    --rdzv_backend c10d --rdzv_endpoint "$HEAD:$PORT" --rdzv_id "$RDZV_ID"
    "$SCRIPT" "$CONFIG" ${EXTRA[@]+"${EXTRA[@]}"} "$@")
if [[ "${DRY_RUN:-0}" == "1" ]]; then
    echo "${COMMAND[*]}"
    exit 0
fi
echo "[$(hostname)] ${COMMAND[*]}" >&2
exec "${COMMAND[@]}"

#!/usr/bin/env bash
# The commands that made results/<preset>/ on the 2-core CPU machine (two chains run side by side).
# Each preset's exact command is also in results/<preset>/COMMAND.txt.
set -u
cd "$(dirname "$0")/.."
DATA="${AGEGENDER_DATA:-/work/shared/data}"
run() {  # run PRESET ARGS...
  local preset=$1; shift
  mkdir -p "results/$preset"
  echo "agegender run $preset --data-root \$AGEGENDER_DATA --out results/$preset --seed 42 $(printf '%q ' "$@")" \
    > "results/$preset/COMMAND.txt"
  /usr/bin/time -f "$preset wall %e s" .venv/bin/agegender run "$preset" --data-root "$DATA" --out "results/$preset" --seed 42 "$@" \
    > "results/$preset/train.log" 2>&1
}
chain_a() {
  run gra_net --set image_size=32 --set max_train_images=6000 --set epochs=15 --set batch_size=64 \
    --set "model_args={'stem_filters': 16, 'stage_filters': (32, 64, 128), 'final_filters': 256, 'final_units': 1}" \
    --set "callbacks.time_limit={'minutes': 7}"
  run cnn_lstm --set image_size=96 --set max_train_images=3000 --set epochs=10 \
    --set "callbacks.time_limit={'minutes': 3}"
}
chain_b() {
  run cnn_rnn_ensemble --set image_size=64 --set max_train_images=5000 --set epochs=10 \
    --set "model_args={'num_members': 2, 'conv_filters': (16, 32, 64), 'rnn_units': 32, 'dense_units': 32}" \
    --set "callbacks.time_limit={'minutes': 7}"
  run adience_cnn --set image_size=96 --set max_train_images=4000 --set epochs=10 --set batch_size=64 \
    --set "callbacks.time_limit={'minutes': 4}"
  run transfer_vgg16_resnet50 --set image_size=64 --set max_train_images=3000 --set epochs=5 --set batch_size=32 \
    --set "callbacks.time_limit={'minutes': 3}"
}
chain_a & chain_b & wait
# Then, alone on the machine: GRA_Net on the whole committed UTKFace training split (results/gra_net_full/).
mkdir -p results/gra_net_full
.venv/bin/agegender run gra_net --data-root "$DATA" --out results/gra_net_full --seed 42 --set image_size=32 \
  --set epochs=30 --set batch_size=64 \
  --set "model_args={'stem_filters': 16, 'stage_filters': (32, 64, 128), 'final_filters': 256, 'final_units': 1}" \
  --set "callbacks.time_limit={'minutes': 26}" > results/gra_net_full/train.log 2>&1

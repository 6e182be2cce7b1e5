#!/usr/bin/env bash
# Copy the shippable part of a training run into checkpoints/<name>/: config, EMA weights,
# the training log, the train state (step, RNG) and the run's console output. The optimizer
# state and raw weights stay behind (they are only needed to resume).
# usage: scripts/ship-checkpoint.sh RUN_DIR NAME [CONSOLE_LOG]
set -euo pipefail
run=$1; name=$2; console=${3:-}
dest="$(dirname "$0")/../checkpoints/$name"
src=$run
[ -f "$src/config.json" ] || src="$run.prev"
mkdir -p "$dest"
for f in config.json ema.safetensors train-log.jsonl train-state.json; do cp "$src/$f" "$dest/$f.tmp" && mv "$dest/$f.tmp" "$dest/$f"; done
# the log may run past the checkpoint (lines after the last save): keep what the weights saw
step=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).step)' "$dest/train-state.json")
node -e 'const fs=require("fs");const [f,s]=process.argv.slice(1);fs.writeFileSync(f,fs.readFileSync(f,"utf8").split("\n").filter(l=>l&&JSON.parse(l).step<=+s).map(l=>l+"\n").join(""))' "$dest/train-log.jsonl" "$step"
if [ -n "$console" ]; then tr '\r' '\n' < "$console" | grep -v '^$' > "$dest/console.log"; fi
echo "shipped step $step to $dest"

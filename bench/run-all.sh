#!/usr/bin/env bash
# Every benchmark figure of docs/BENCHMARKS.md in one go, on an otherwise idle machine:
# driftlab image and video rows (npm run bench), the PyTorch peer at 1 and 2 threads when
# Debian's python3-torch is installed, and serve latency. Results: bench/results/<stamp>/.
# usage: bash bench/run-all.sh [--iters N]
set -euo pipefail
cd "$(dirname "$0")/.."
iters=${2:-10}
stamp=$(date -u +%Y%m%d-%H%M%S)
out=bench/results/$stamp
mkdir -p "$out"
{ echo "date: $(date -u)"; echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"; echo "cores: $(nproc)"; echo "node: $(node --version)"; uptime; } > "$out/machine.txt"
node dist/bench/bench.js --iters "$iters" --out "$out/image.json" 2>&1 | tee "$out/image.txt"
node dist/bench/bench-video.js --iters "$iters" --rollout-engines onnx --out "$out/video.json" 2>&1 | tee "$out/video.txt"
node dist/bench/bench-metrics.js --frames 500 --out "$out/metrics.json" 2>&1 | tee "$out/metrics.txt"
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  for t in 1 2; do /usr/bin/python3 bench/torch_peer.py --threads $t --iters "$iters" | tee -a "$out/torch.jsonl"; done
else
  echo "python3-torch not installed: no PyTorch peer rows (apt-get install python3-torch)" | tee "$out/torch.jsonl"
fi
node dist/bench/load.js --requests 40 --n 1 --steps 10 | tee "$out/serve.json"
echo "results in $out"

#!/bin/bash
# one sitting: onnx training modes interleaved, then PyTorch 2 and 1 threads, then peak RSS per mode
set -u
cd "$(dirname "$0")/../../.."   # the repository root
out=bench/results/20261201-201937-session8
P=$(pgrep -f mmnist-k8 | head -1)
trap '[ -n "$P" ] && kill -CONT $P' EXIT
{ echo "start $(date -u)"; lscpu | grep 'Model name'; grep -m1 -o -w -E 'avx2|avx512f|avx512_vnni|avx_vnni|amx_tile' /proc/cpuinfo | sort -u | tr '\n' ' '; echo; echo "before pause: $(uptime)"; } > $out/machine.txt
[ -n "$P" ] && kill -STOP $P
echo "training run $P paused $(date -u +%T)" >> $out/machine.txt
sleep 3
echo "after pause: $(uptime)" >> $out/machine.txt
node dist/bench/bench.js --only onnx-train --iters 9 --warmup 2 --out $out/image-onnx-train.json > $out/image-onnx-train.txt 2>&1
/usr/bin/python3 bench/torch_peer.py --threads 2 > $out/torch.jsonl 2>&1
/usr/bin/python3 bench/torch_peer.py --threads 1 >> $out/torch.jsonl 2>&1
for a in "--workers 2 --threads 1" "--workers 1 --threads 2" "--workers 1 --threads 1"; do node dist/bench/train-rss.js --engine onnx $a --steps 5 >> $out/rss.jsonl 2>&1; done
echo "end $(date -u +%T): $(uptime)" >> $out/machine.txt

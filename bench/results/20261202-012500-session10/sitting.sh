#!/bin/bash
# session 10 sitting: onnx training with blocked-layout Convs beside plain ones and PyTorch (#13).
# The lead's background video run is paused (SIGSTOP) for the sitting; a sampler logs busy processes.
set -u
cd "$(dirname "$0")/../../.."   # the repository root
out=bench/results/20261202-012500-session10
P=$(pgrep -f "train-video --preset mmnist-small" | head -1)
( while true; do echo "$(date -u +%T) $(ps -eo pid,pcpu,etimes,args --sort=-pcpu | awk 'NR>1 && $2>15 {print $1, $2"%", substr($0, index($0,$4), 70)}' | tr '\n' ';')"; sleep 3; done ) > $out/busy.txt &
S=$!
trap 'kill $S; [ -n "$P" ] && kill -CONT $P' EXIT
{ echo "start $(date -u)"; echo "before pause: $(uptime)"; grep -m1 "model name" /proc/cpuinfo; grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512_vnni|avx_vnni|amx_tile)$' | tr '\n' ' '; echo; } > $out/machine.txt
[ -n "$P" ] && kill -STOP $P
echo "training run $P paused $(date -u +%T)" >> $out/machine.txt
sleep 3
node dist/bench/bench.js --only onnx-train --iters 9 --warmup 2 --out $out/image-onnx-train.json > $out/image-onnx-train.txt 2>&1
/usr/bin/python3 bench/torch_peer.py --threads 2 > $out/torch.jsonl 2>&1
/usr/bin/python3 bench/torch_peer.py --threads 1 >> $out/torch.jsonl 2>&1
node dist/bench/ab-train-step.js --graph-b '{"nchwcBlock":"auto"}' --threads 1 --rounds 7 > $out/ab-1thread.txt 2>&1
echo "end $(date -u +%T): $(uptime)" >> $out/machine.txt

#!/bin/bash
# sitting 2: the same image commands, with a sampler of other busy processes (every 3 s)
set -u
cd "$(dirname "$0")/../../.."   # the repository root
out=bench/results/20261201-201937-session8/sitting2
mkdir -p $out
P=$(pgrep -f mmnist-k8 | head -1)
( while true; do echo "$(date -u +%T) $(ps -eo pid,pcpu,etimes,args --sort=-pcpu | awk 'NR>1 && $2>15 {print $1, $2"%", substr($0, index($0,$4), 70)}' | tr '\n' ';')"; sleep 3; done ) > $out/busy.txt &
S=$!
trap 'kill $S; [ -n "$P" ] && kill -CONT $P' EXIT
{ echo "start $(date -u)"; echo "before pause: $(uptime)"; } > $out/machine.txt
[ -n "$P" ] && kill -STOP $P
echo "training run $P paused $(date -u +%T)" >> $out/machine.txt
sleep 3
node dist/bench/bench.js --only onnx-train --iters 9 --warmup 2 --out $out/image-onnx-train.json > $out/image-onnx-train.txt 2>&1
/usr/bin/python3 bench/torch_peer.py --threads 2 > $out/torch.jsonl 2>&1
/usr/bin/python3 bench/torch_peer.py --threads 1 >> $out/torch.jsonl 2>&1
echo "end $(date -u +%T): $(uptime)" >> $out/machine.txt

#!/bin/bash
set -u
cd "$(dirname "$0")/../../.."   # the repository root
out=bench/results/20261201-201937-session8/video
mkdir -p $out
P=$(pgrep -f mmnist-k8 | head -1)
( while true; do echo "$(date -u +%T) $(ps -eo pid,pcpu,etimes,args --sort=-pcpu | awk 'NR>1 && $2>15 {print $1, $2"%", substr($0, index($0,$4), 70)}' | tr '\n' ';')"; sleep 3; done ) > $out/busy.txt &
S=$!
trap 'kill $S; [ -n "$P" ] && kill -CONT $P' EXIT
echo "start $(date -u +%T) $(uptime)" > $out/machine.txt
[ -n "$P" ] && kill -STOP $P
echo "training run $P paused" >> $out/machine.txt
sleep 2
node dist/bench/bench-video.js --preset mmnist-small-attn --only train --iters 5 --warmup 1 --out $out/video-train.json > $out/video-train.txt 2>&1
echo "end $(date -u +%T) $(uptime)" >> $out/machine.txt

#!/bin/bash
# session 10, second sitting (after taps-flat): conv gradient formulations with the blocked kernels,
# the step's profile, and the whole step against the build before this session; background run paused.
set -u
cd "$(dirname "$0")/../../.."
out=bench/results/20261202-012500-session10
P=$(pgrep -f "train-video --preset mmnist-small" | head -1)
trap '[ -n "$P" ] && kill -CONT $P' EXIT
[ -n "$P" ] && kill -STOP $P
echo "sitting 2 start $(date -u +%T), run $P paused" >> $out/machine.txt
sleep 2
node dist/bench/bench-conv-grad.js --nchwc --rounds 3 --reps 1 > $out/conv-grad-nchwc.txt 2>&1
node dist/bench/profile-train-graph.js --runs 3 --warmup 1 --top 25 > $out/profile-nchwc.txt 2>&1
# BASE: a built copy of the commit before this session's engine work (git archive e365d65)
node dist/bench/ab-train-step.js --base "${BASE:-/tmp/base}" --graph-b '{"nchwcBlock":"auto"}' --threads 1 --rounds 9 > $out/ab-vs-session9-1thread.txt 2>&1
echo "sitting 2 end $(date -u +%T): $(uptime)" >> $out/machine.txt

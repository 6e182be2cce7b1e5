#!/bin/bash
# A/B of the training loop and the rollout path: old = session 17's start (86d9efb), new = this tree (NEW_BUILD); alone (the ablation stopped)
cd REPO
# pairs 1-3 ran as `./ab.sh`; pairs 4-6 ran as ab2.sh, which is `PAIRS="4 5 6" ORDER="new old" TRAIN_ONLY=1 ./ab.sh`
# (merged into this file afterwards; the commands are the same), output in ab2.out
for i in ${PAIRS:-1 2 3}; do
  for b in ${ORDER:-old new}; do
    if [ $b = old ]; then CLI=OLD_BUILD/src/cli.js; else CLI=NEW_BUILD/src/cli.js; fi
    rm -rf /tmp/ab-$b-$i
    node $CLI train-video --preset mmnist-small --context-frames 8 --out /tmp/ab-$b-$i --engine onnx --steps 80 --check-every 0 --seed 0 --rollout-check-every 0 > /tmp/ab-$b-$i.log 2>&1
    node -e "const l=require('fs').readFileSync('/tmp/ab-$b-$i/train-log.jsonl','utf8').trim().split('\n').map(JSON.parse).filter(r=>r.step!==undefined&&r.time!==undefined);const a=l.find(r=>r.step===20),z=l.find(r=>r.step===80);console.log('$b run $i', a&&z?((80-20)/((Date.parse(z.time)-Date.parse(a.time))/1000)).toFixed(3)+' steps/s':'?')"
  done
done
[ -n "$TRAIN_ONLY" ] && { cmp /tmp/ab-old-4/ema.safetensors /tmp/ab-new-4/ema.safetensors && echo "old and new training byte-identical"; exit 0; }
for i in 1 2; do
  for b in old new; do
    if [ $b = old ]; then CLI=OLD_BUILD/src/cli.js; else CLI=NEW_BUILD/src/cli.js; fi
    rm -rf /tmp/abd-$b-$i
    node $CLI drift --ckpt checkpoints/mmnist-small --correctors none --horizon 30 --rollouts 16 --steps 10 --seed 0 --engine onnx --threads 2 --no-mp4 --report-frames 1,10,30 --eta 0 --out /tmp/abd-$b-$i > /tmp/abd-$b-$i.log 2>&1
    echo "$b drift $i: $(grep -o 'none: 16 rollouts x 30 frames in [0-9.]* s' /tmp/abd-$b-$i.log) $(grep '^| none' /tmp/abd-$b-$i.log | head -1)"
  done
done
cmp /tmp/abd-old-1/rollouts/none/frames.npy /tmp/abd-new-1/rollouts/none/frames.npy && echo "old and new rollouts byte-identical at eta 0"

#!/bin/bash
cd REPO
for i in 4 5 6; do
  for b in new old; do
    if [ $b = old ]; then CLI=OLD_BUILD/src/cli.js; else CLI=NEW_BUILD/src/cli.js; fi
    rm -rf /tmp/ab-$b-$i
    node $CLI train-video --preset mmnist-small --context-frames 8 --out /tmp/ab-$b-$i --engine onnx --steps 80 --check-every 0 --seed 0 --rollout-check-every 0 > /tmp/ab-$b-$i.log 2>&1
    node -e "const l=require('fs').readFileSync('/tmp/ab-$b-$i/train-log.jsonl','utf8').trim().split('\n').map(JSON.parse).filter(r=>r.step!==undefined&&r.time!==undefined);const a=l.find(r=>r.step===20),z=l.find(r=>r.step===80);console.log('$b run $i', a&&z?((80-20)/((Date.parse(z.time)-Date.parse(a.time))/1000)).toFixed(3)+' steps/s':'?')"
  done
done
cmp /tmp/ab-old-4/ema.safetensors /tmp/ab-new-4/ema.safetensors && echo "old and new training byte-identical"

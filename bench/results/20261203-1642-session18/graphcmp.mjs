import { createHash } from 'node:crypto';
for (const root of ['OLD_BUILD', 'NEW_BUILD']) {
  const { buildTrainGraph } = await import(`${root}/src/engine/train-graph.js`);
  const { getVideoPreset } = await import(`${root}/src/video/presets.js`);
  const p = getVideoPreset('mmnist-small');
  const m = { ...p.model, video: { ...p.model.video, frames: 9, contextFrames: 8 } };
  const g = buildTrainGraph(m, { rows: 32 * 9, frames: 9, nchwcBlock: 16, adam: { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 } });
  console.log(root, createHash('sha256').update(g.bytes).digest('hex').slice(0, 16), g.nodes);
}

// An external corrector that is fitted, saved and loaded like driftlab's kalman and controller.
// Long rollouts drift in tone (digits fade to grey, the background brightens); this corrector
// learns the pixel-value distribution of real frames and pulls each new frame's values towards
// it, keeping each pixel's rank (its place in the picture):
//   x' = (1 - strength) x + strength Q(rank(x)),   Q = quantiles of real frames, fitted on clips
//
//   driftlab fit-corrector ./examples/ink-match-corrector.mjs --ckpt CKPT --out fitted/ink
//   driftlab rollout --ckpt CKPT --out runs/ink --corrector ./examples/ink-match-corrector.mjs \
//       --corrector-config '{"dir": "fitted/ink", "strength": 0.5}'
import * as fs from 'node:fs';
import * as path from 'node:path';

export const name = 'ink-match';
export const describe = "match each new frame's pixel values to real frames' (fitted quantiles)";

export default function create(ctx, config) {
  const strength = Number(config.strength ?? 0.5), levels = Number(config.levels ?? 64);
  if (!(strength >= 0 && strength <= 1)) throw new Error(`ink-match: "strength" must be in 0..1, got ${config.strength}`);
  if (!(Number.isInteger(levels) && levels >= 2 && levels <= 4096)) throw new Error(`ink-match: "levels" must be an integer in 2..4096, got ${config.levels}`);
  let quantiles = null, dir = config.dir;
  const px = ctx.size * ctx.size;
  return {
    name,
    describe: () => ({ strength, levels, ...(dir ? { dir } : {}) }),
    async fit(clips) { // clips.data: [m, t, S, S] real frames in [-1, 1]
      const sorted = Float32Array.from(clips.data).sort();
      quantiles = Array.from({ length: levels }, (_, q) => sorted[Math.floor(((q + 0.5) * sorted.length) / levels)]);
    },
    async save(to) {
      fs.writeFileSync(path.join(to, `${name}.json`), JSON.stringify({ name, modelId: ctx.modelId, size: ctx.size, quantiles }) + '\n');
    },
    async load(from) {
      const file = path.join(from, `${name}.json`);
      if (!fs.existsSync(file)) throw new Error(`${from} holds no fitted ink-match (no ${name}.json); run driftlab fit-corrector first`);
      const saved = JSON.parse(fs.readFileSync(file, 'utf8'));
      if (saved.modelId !== ctx.modelId) throw new Error(`${from} was fitted for model ${saved.modelId}, this is ${ctx.modelId}; fit it again`);
      if (saved.quantiles.length !== levels) throw new Error(`${from} holds ${saved.quantiles.length} levels, the config asks for ${levels}`);
      quantiles = saved.quantiles;
      dir = from;
    },
    reset() {
      if (!quantiles) throw new Error('ink-match is not fitted: driftlab fit-corrector ./ink-match-corrector.mjs --ckpt CKPT --out DIR, then {"dir": "DIR"}');
    },
    correct(frame) {
      const data = new Float32Array(frame.data.length);
      for (let b = 0; b < frame.n; b++) {
        const o = b * px, x = frame.data.subarray(o, o + px);
        const order = Array.from({ length: px }, (_, i) => i).sort((i, j) => x[i] - x[j] || i - j);
        order.forEach((i, r) => { data[o + i] = (1 - strength) * x[i] + strength * quantiles[Math.floor((r * levels) / px)]; });
      }
      return { n: frame.n, s: frame.s, data };
    },
  };
}

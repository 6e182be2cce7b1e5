// An external drift corrector: `driftlab rollout --corrector ./examples/blend-corrector.mjs`.
// Each new frame is blended with the previous frame: x' = (1 - alpha) x + alpha x_prev, which
// damps frame-to-frame flicker. Config: --corrector-config '{"alpha": 0.2}'.
export const name = 'blend';
export const describe = 'blend each new frame with the previous one';

export default function create(ctx, config) {
  const alpha = Number(config.alpha ?? 0.2);
  if (!(alpha >= 0 && alpha <= 1)) throw new Error(`blend: "alpha" must be in 0..1, got ${config.alpha}`);
  return {
    name,
    describe: () => ({ alpha }),
    reset: () => undefined,
    correct(frame, history) {
      const [prev] = history.recent(1);
      const data = new Float32Array(frame.data.length);
      for (let i = 0; i < data.length; i++) {
        const v = (1 - alpha) * frame.data[i] + alpha * (prev ? prev.data[i] : frame.data[i]);
        data[i] = Math.max(-1, Math.min(1, v));
      }
      return { n: frame.n, s: frame.s, data };
    },
  };
}

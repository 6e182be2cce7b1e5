/** `none`: the baseline. Frames become context exactly as generated. */
import { registerCorrector } from '../registry.js';

registerCorrector('none', 'baseline: no correction', () => ({
  name: 'none',
  describe: () => ({}),
  reset: () => undefined,
  correct: (frame) => ({ ...frame, data: frame.data.slice() }),
}));

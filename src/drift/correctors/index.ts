/** Importing this module registers every built-in corrector (one file each). */
import './none.js';
import './context-noise.js';
import './renoise.js';
import './kalman.js';
import './controller.js';
import './history-guidance.js';
import './reconstruction-guidance.js';
import './anchor.js';
export { listCorrectors, makeCorrector, chain } from '../registry.js';

/**
 * Frames in, encoder frames out: the Moving-MNIST feature networks (mmnist-frame, mmnist-clip)
 * read 32x32 frames in [0,1] -- a 64x64 canvas average-pooled 2x2, as video/clips.ts poolFrame
 * makes them, but scaled to [0,1] instead of [-1,1].
 */
import { DriftlabError } from '../../util/errors.js';

/** Side of the frames the Moving-MNIST encoders read. */
export const ENCODER_SIDE = 32;

/**
 * count frames of side S (uint8 0..255 with range 'u8', or float in [-1,1] with range 'pm1'),
 * frame-major [count,S,S], to float32 [count,32,32] in [0,1]. S = 32 copies; S = 32/k upsamples
 * by nearest neighbour (each pixel becomes a k x k block); S = 32*k average-pools k x k blocks.
 * Float input is clamped to [-1,1] first (samples may overshoot).
 */
export function toEncoderFrames(frames: Uint8Array | Float32Array, count: number, S: number, range: 'u8' | 'pm1'): Float32Array {
  const T = ENCODER_SIDE;
  if (!Number.isInteger(count) || count < 0) throw new DriftlabError(`toEncoderFrames: count must be a non-negative integer, got ${count}`);
  if (!Number.isInteger(S) || S < 1) throw new DriftlabError(`toEncoderFrames: frame side must be a positive integer, got ${S}`);
  if (range !== 'u8' && range !== 'pm1') throw new DriftlabError(`toEncoderFrames: range must be 'u8' or 'pm1', got ${String(range)}`);
  if (range === 'u8' && !(frames instanceof Uint8Array)) throw new DriftlabError("toEncoderFrames: range 'u8' needs a Uint8Array");
  if (range === 'pm1' && !(frames instanceof Float32Array)) throw new DriftlabError("toEncoderFrames: range 'pm1' needs a Float32Array");
  if (frames.length !== count * S * S) {
    throw new DriftlabError(`toEncoderFrames: expected ${count} frames of ${S}x${S} (${count * S * S} values), got ${frames.length}`);
  }
  const up = S < T && T % S === 0 ? T / S : 0;
  const down = S > T && S % T === 0 ? S / T : 0;
  if (S !== T && !up && !down) {
    throw new DriftlabError(`the Moving-MNIST encoders read ${T}x${T} frames; ${S}x${S} frames can be neither upsampled nor pooled to it by an integer factor`);
  }
  const scale = range === 'u8' ? (v: number) => v / 255 : (v: number) => (Math.min(1, Math.max(-1, v)) + 1) / 2;
  const out = new Float32Array(count * T * T);
  for (let n = 0; n < count; n++) {
    const src = n * S * S, dst = n * T * T;
    if (down) {
      const inv = 1 / (down * down);
      for (let y = 0; y < T; y++) for (let x = 0; x < T; x++) {
        let s = 0;
        for (let dy = 0; dy < down; dy++) for (let dx = 0; dx < down; dx++) s += scale(frames[src + (y * down + dy) * S + x * down + dx]);
        out[dst + y * T + x] = s * inv;
      }
    } else {
      const k = up || 1;
      for (let y = 0; y < T; y++) for (let x = 0; x < T; x++) out[dst + y * T + x] = scale(frames[src + Math.floor(y / k) * S + Math.floor(x / k)]);
    }
  }
  return out;
}

/**
 * Frames as stored on disk: model space [-1, 1] <-> uint8. Rollouts feed back exactly the stored
 * frame, and the controller is trained on that same quantisation, so both use these functions.
 */
export const toU8 = (v: Float32Array): Uint8Array => Uint8Array.from(v, (x) => Math.max(0, Math.min(255, Math.round((x + 1) * 127.5))));
export const fromU8 = (v: Uint8Array): Float32Array => Float32Array.from(v, (x) => x / 127.5 - 1);
/** the frame a rollout would store and feed back: fromU8(toU8(v)) */
export const quantize8 = (v: Float32Array): Float32Array => fromU8(toU8(v));

/**
 * Clips from .npy files: the standard Moving-MNIST test set `mnist_test_seq.npy`
 * (uint8 [20, 10000, 64, 64], time first) or any [N,T,H,W] array (uint8, or float in [0,1]).
 * Returned as uint8 [N,T,H,W].
 */
import { NpyArray, readNpy } from '../../src/io/npy.js';
import { DriftlabError } from '../../src/util/errors.js';

export type ClipLayout = 'auto' | 'NTHW' | 'TNHW';

export interface Clips {
  frames: Uint8Array;
  n: number;
  t: number;
  h: number;
  w: number;
}

export function clipsFromNpy(a: NpyArray, source: string, layout: ClipLayout = 'auto'): Clips {
  if (a.shape.length !== 4) {
    throw new DriftlabError(`${source}: expected a 4-D array [N,T,H,W] (or mnist_test_seq.npy's [20,10000,64,64]), got shape [${a.shape}]`);
  }
  let data: Uint8Array;
  if (a.dtype === 'uint8') data = a.data as Uint8Array;
  else if (a.dtype === 'float32' || a.dtype === 'float64') {
    const f = a.data as Float32Array | Float64Array;
    data = new Uint8Array(f.length);
    for (let i = 0; i < f.length; i++) {
      const v = f[i];
      if (!(v >= 0 && v <= 1)) throw new DriftlabError(`${source}: float frames must lie in [0,1]; found ${v} at flat index ${i}`);
      data[i] = Math.round(v * 255);
    }
  } else throw new DriftlabError(`${source}: dtype ${a.dtype} is not supported; use uint8 or float32 in [0,1]`);
  const [d0, d1, h, w] = a.shape;
  if (h !== w) throw new DriftlabError(`${source}: frames must be square, got ${h}x${w}`);
  if (h < 8) throw new DriftlabError(`${source}: frames of ${h}x${w} are too small`);
  const timeFirst = layout === 'TNHW' || (layout === 'auto' && d0 === 20 && d1 === 10000);
  if (!timeFirst) return { frames: data, n: d0, t: d1, h, w };
  // [T,N,H,W] -> [N,T,H,W]
  const T = d0, N = d1, F = h * w;
  const out = new Uint8Array(data.length);
  for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) out.set(data.subarray((t * N + n) * F, (t * N + n + 1) * F), (n * T + t) * F);
  return { frames: out, n: N, t: T, h, w };
}

export async function loadClips(path: string, layout: ClipLayout = 'auto'): Promise<Clips> {
  return clipsFromNpy(await readNpy(path), path, layout);
}

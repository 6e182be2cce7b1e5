/**
 * Checked conversions from user .npy files to what the metrics take: feature matrices [N,D]
 * (user-supplied features for `eval frechet`) and frame stacks [N,T,H,W] in [0,1].
 * Every problem is one DriftlabError line naming the file and the fix.
 */
import { NpyArray, readNpy } from '../io/npy.js';
import { DriftlabError } from '../util/errors.js';
import { Frames } from './frames.js';

export interface FeatureMatrix {
  /** [N,D] row-major */
  x: Float32Array | Float64Array;
  n: number;
  dim: number;
}

/** A [N,D] float32/float64 array with N >= 2 and finite values. */
export function featuresFromNpy(a: NpyArray, source: string): FeatureMatrix {
  if (a.shape.length !== 2) {
    throw new DriftlabError(`${source} has shape [${a.shape.join(',')}]; features must be a 2-D array [N,D] (one row per sample)`);
  }
  if (a.dtype !== 'float32' && a.dtype !== 'float64') {
    throw new DriftlabError(`${source} has dtype ${a.dtype}; features must be float32 or float64 (np.save(path, feats.astype(np.float32)))`);
  }
  const [n, dim] = a.shape;
  if (n < 2) throw new DriftlabError(`${source} has N=${n} feature vectors; a covariance needs at least 2`);
  if (dim < 1) throw new DriftlabError(`${source} has D=0 feature columns`);
  const x = a.data as Float32Array | Float64Array;
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) throw new DriftlabError(`${source} contains NaN or infinite values (row ${Math.floor(i / dim)}, column ${i % dim})`);
  }
  return { x, n, dim };
}

export async function readFeatures(path: string): Promise<FeatureMatrix> {
  return featuresFromNpy(await readNpy(path), path);
}

/**
 * [T,H,W] or [N,T,H,W] frames: uint8 (0..255, divided by 255) or float32/float64 already in [0,1]
 * (a tolerance of 1e-6 for rounding; anything further outside is refused, not clipped).
 */
export function framesFromNpy(a: NpyArray, source: string): Frames {
  const r = a.shape.length;
  if (r !== 3 && r !== 4) {
    throw new DriftlabError(`${source} has shape [${a.shape.join(',')}]; frames must be [T,H,W] or [N,T,H,W] (grayscale)`);
  }
  const [n, t, h, w] = r === 3 ? [1, ...a.shape] : a.shape;
  if (n < 1 || t < 1 || h < 1 || w < 1) throw new DriftlabError(`${source} has an empty axis: shape [${a.shape.join(',')}]`);
  const data = new Float64Array(a.data.length);
  if (a.dtype === 'uint8') {
    const u = a.data as Uint8Array;
    for (let i = 0; i < u.length; i++) data[i] = u[i] / 255;
  } else if (a.dtype === 'float32' || a.dtype === 'float64') {
    const f = a.data as Float32Array | Float64Array;
    for (let i = 0; i < f.length; i++) {
      const v = f[i];
      if (!(v >= -1e-6 && v <= 1 + 1e-6)) {
        throw new DriftlabError(`${source} has value ${v} at flat index ${i}; float frames must lie in [0,1] (rescale [-1,1] data with (x+1)/2, or save uint8 0..255)`);
      }
      data[i] = v;
    }
  } else {
    throw new DriftlabError(`${source} has dtype ${a.dtype}; frames must be uint8 (0..255) or float32/float64 in [0,1]`);
  }
  return { data, n, t, h, w };
}

export async function readFrames(path: string): Promise<Frames> {
  return framesFromNpy(await readNpy(path), path);
}

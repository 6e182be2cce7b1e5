/**
 * AdamW (Loshchilov & Hutter; PyTorch's torch.optim.AdamW semantics), global grad-norm clipping
 * and an EMA of the weights with diffusers' warm-up, all on flat float32 arrays in plain JS:
 * the optimizer is backend-independent, exactly resumable and cheap next to the network.
 */

export interface AdamWConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const DEFAULT_ADAMW: AdamWConfig = { lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };

export class AdamW {
  m: Float32Array;
  v: Float32Array;
  /** number of updates applied so far */
  t = 0;
  constructor(readonly size: number, readonly cfg: AdamWConfig = DEFAULT_ADAMW) {
    this.m = new Float32Array(size);
    this.v = new Float32Array(size);
  }

  /** p <- p - lr*wd*p - lr * mhat / (sqrt(vhat) + eps), in place. lr may be scheduled per step. */
  step(p: Float32Array, g: Float32Array, lr = this.cfg.lr): void {
    const { beta1: b1, beta2: b2, eps, weightDecay: wd } = this.cfg;
    this.t += 1;
    const bc1 = 1 - Math.pow(b1, this.t);
    const bc2 = 1 - Math.pow(b2, this.t);
    const stepSize = lr / bc1;
    const sqrtBc2 = Math.sqrt(bc2);
    const decay = 1 - lr * wd;
    const m = this.m, v = this.v;
    for (let i = 0; i < p.length; i++) {
      const gi = g[i];
      const mi = (m[i] = b1 * m[i] + (1 - b1) * gi);
      const vi = (v[i] = b2 * v[i] + (1 - b2) * gi * gi);
      p[i] = p[i] * decay - (stepSize * mi) / (Math.sqrt(vi) / sqrtBc2 + eps);
    }
  }
}

/** Scale g in place so that its L2 norm is at most maxNorm (PyTorch clip_grad_norm_). Returns the norm before clipping. */
export function clipGradNorm(g: Float32Array, maxNorm: number): number {
  let ss = 0;
  for (let i = 0; i < g.length; i++) ss += g[i] * g[i];
  const norm = Math.sqrt(ss);
  if (maxNorm > 0 && norm > maxNorm) {
    const c = maxNorm / (norm + 1e-6);
    for (let i = 0; i < g.length; i++) g[i] *= c;
  }
  return norm;
}

/** EMA decay at update n (0-based count of updates already applied): min(d, (1+n)/(10+n)). */
export function emaDecay(maxDecay: number, n: number): number {
  return Math.min(maxDecay, (1 + n) / (10 + n));
}

/** ema <- d*ema + (1-d)*p, in place. */
export function emaUpdate(ema: Float32Array, p: Float32Array, d: number): void {
  const c = 1 - d;
  for (let i = 0; i < p.length; i++) ema[i] = d * ema[i] + c * p[i];
}

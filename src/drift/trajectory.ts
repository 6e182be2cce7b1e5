/**
 * Digit trajectories of Moving-MNIST frames: where are the digits in a (generated or real) frame?
 *
 * Every frame is matched against a rollout's own digits (recoverPositions / TrajectoryMatcher);
 * the digits, their true positions and the trajectory error live in trajectory-truth.ts.
 *
 * Matching model. The simulator draws digit d at the integer canvas offset (x, y) =
 * round(position), composites the digits by pixel-wise max, and the model frame is that canvas
 * average-pooled by p (poolFrame). Rendering a digit at (x, y) and pooling equals one of p*p
 * "phase templates" (the digit drawn at offset (x mod p, y mod p) in a (w*p)^2 canvas, w =
 * ceil((28+p-1)/p), pooled to w*w) placed at model pixel (x div p, y div p); these are built
 * once per digit. Scores are squared errors in uint8 units relative to the empty frame,
 *
 *   E(positions) = sum_px (f - pool(max_d digit_d))^2 - sum_px f^2,
 *
 * so that for a lone digit E = sum T^2 - 2 f.T over its template (the correlation map), and
 * for digits whose windows do not touch the scores add up. Recovery of one frame:
 *   1. per digit, the single-digit map over every canvas offset in [0, size-28]^2 (or around a
 *      hint), sparse over the template's non-zero pixels;
 *   2. the 6 best well-separated minima per digit; every combination of the best few (at most
 *      256 combinations) is scored jointly (exact max-composite where windows overlap);
 *   3. joint refinement: coordinate descent, each digit moved within +-2 canvas px or to another
 *      of its minima with the others fixed, scored exactly (max-composite) where windows
 *      overlap, until no move improves (at most 8 rounds). This resolves overlapping digits.
 *      With 3+ digits, one global move per digit (its best offset anywhere given the others)
 *      and a second descent follow (globalRefine).
 * Positions are integers (the drawn offsets); against float truth the error of a perfect
 * recovery is at most sqrt(0.5) px. Measured (2 cores, shared): about 0.3-0.5 ms per 32x32
 * frame with 2 digits (16,000 frames in 5-8 s), about 1 ms at 64x64, about 5 ms with 3 digits.
 */
import { DriftlabError } from '../util/errors.js';
import { DIGIT_SIDE } from './trajectory-truth.js';

interface Phase {
  /** offsets (dy*S + dx) of the non-zero pooled pixels, their values (uint8 units) and dy, dx */
  off: Int32Array;
  val: Float64Array;
  /** sum of squared values */
  t2: number;
  /** the pooled template as a dense [w, w] array */
  dense: Float64Array;
}

interface DigitModel {
  image: Uint8Array;
  phases: Phase[];
}

export interface MatcherOptions {
  /** well-separated minima kept per digit (default 6); every combination of the best few (at most 256 combinations) is scored jointly, and in refinement each digit may also jump to any of its candidates */
  candidates?: number;
  /** half-width of the joint refinement neighbourhood, canvas px (default 2) */
  refineRadius?: number;
  /** maximum coordinate-descent rounds (default 8) */
  maxRounds?: number;
  /**
   * after local convergence, move each digit to its best offset anywhere (others fixed, exact
   * joint score) and refine again, once. Default: on for 3+ digits (where a digit's true place is
   * sometimes outside its lone-digit minima), off for 1-2 (never needed in tests, 2x the cost).
   */
  globalRefine?: boolean;
}

/** Restrict the single-digit search to a box of +-radius canvas px around previous positions. */
export interface RecoverHint {
  positions: ArrayLike<number>[];
  /** default 8 */
  radius?: number;
}

function buildModel(image: Uint8Array, S: number, p: number): DigitModel {
  if (image.length !== DIGIT_SIDE * DIGIT_SIDE) throw new DriftlabError(`digit templates must be 28x28 uint8 (784 values), got ${image.length}`);
  const w = Math.ceil((DIGIT_SIDE + p - 1) / p), W = w * p;
  const canvas = new Float64Array(W * W);
  const phases: Phase[] = [];
  for (let py = 0; py < p; py++) for (let qx = 0; qx < p; qx++) {
    canvas.fill(0);
    for (let r = 0; r < DIGIT_SIDE; r++) for (let c = 0; c < DIGIT_SIDE; c++) canvas[(py + r) * W + qx + c] = image[r * DIGIT_SIDE + c];
    const off: number[] = [], val: number[] = [];
    const dense = new Float64Array(w * w);
    let t2 = 0;
    for (let y = 0; y < w; y++) for (let x = 0; x < w; x++) {
      let s = 0;
      for (let dy = 0; dy < p; dy++) for (let dx = 0; dx < p; dx++) s += canvas[(y * p + dy) * W + x * p + dx];
      if (s === 0) continue;
      const v = s / (p * p);
      dense[y * w + x] = v;
      off.push(y * S + x);
      val.push(v);
      t2 += v * v;
    }
    phases.push({ off: Int32Array.from(off), val: Float64Array.from(val), t2, dense });
  }
  return { image, phases };
}

/**
 * Matches the digits of one rollout (fixed templates) in frames of side S = canvasSize / pool.
 * Holds scratch buffers: not re-entrant, cheap to construct (phase templates are cached per
 * template array).
 */
export class TrajectoryMatcher {
  readonly digits: number;
  /** largest offset, canvasSize - 28 */
  readonly L: number;
  private readonly w: number;
  private readonly models: DigitModel[];
  private readonly canvas: Uint8Array;
  private readonly f: Float64Array;
  private readonly map: Float64Array;
  /** per-digit copies of the single-digit maps (global refinement only) */
  private readonly maps: Float64Array[];
  private readonly global: boolean;
  private readonly restPooled: Float64Array;
  /** model-pixel box [x0, y0, x1, y1) of the rest's windows (what setRest must clear next time) */
  private readonly restBox = new Int32Array(4);
  private baseRest = 0;
  private readonly M: number;
  private readonly Mc: number;
  private readonly R: number;
  private readonly rounds: number;

  constructor(readonly S: number, readonly canvasSize: number, readonly pool: number, templates: Uint8Array[], opts: MatcherOptions = {}) {
    if (!Number.isInteger(pool) || pool < 1 || canvasSize % pool !== 0 || canvasSize / pool !== S) {
      throw new DriftlabError(`frame side ${S} must be canvas ${canvasSize} / pool ${pool}`);
    }
    if (canvasSize < DIGIT_SIDE) throw new DriftlabError(`canvas ${canvasSize} is smaller than a digit (28)`);
    this.digits = templates.length;
    this.L = canvasSize - DIGIT_SIDE;
    this.w = Math.ceil((DIGIT_SIDE + pool - 1) / pool);
    this.models = templates.map((t) => cachedModel(t, S, pool));
    this.canvas = new Uint8Array(canvasSize * canvasSize);
    this.f = new Float64Array(S * S);
    this.restPooled = new Float64Array(S * S);
    this.map = new Float64Array((this.L + 1) * (this.L + 1));
    const D = this.digits;
    this.M = opts.candidates ?? 6;
    this.Mc = D === 0 ? 0 : Math.max(1, Math.min(this.M, Math.floor(256 ** (1 / D) + 1e-9)));
    this.R = opts.refineRadius ?? 2;
    this.rounds = opts.maxRounds ?? 8;
    this.global = opts.globalRefine ?? D >= 3;
    this.maps = this.global ? templates.map(() => new Float64Array(this.map.length)) : [];
  }

  /** Single-digit score of digit d at canvas offset (x, y): sum T^2 - 2 f.T. */
  private single(d: number, x: number, y: number): number {
    const p = this.pool;
    const ph = this.models[d].phases[(y % p) * p + (x % p)];
    const base = ((y / p) | 0) * this.S + ((x / p) | 0);
    const off = ph.off, val = ph.val, f = this.f;
    let acc = 0;
    for (let k = 0; k < off.length; k++) acc += val[k] * f[base + off[k]];
    return ph.t2 - 2 * acc;
  }

  /** Render the digits `others` (at xs, ys) as the fixed rest: canvas, pooled values, their E. */
  private setRest(others: number[], xs: Int32Array, ys: Int32Array): void {
    const p = this.pool, w = this.w, S = this.S, C = this.canvasSize, cv = this.canvas, rp = this.restPooled, f = this.f, box = this.restBox;
    for (let y = box[1]; y < box[3]; y++) {
      cv.fill(0, y * p * C + box[0] * p, y * p * C + box[2] * p);
      for (let dy = 1; dy < p; dy++) cv.fill(0, (y * p + dy) * C + box[0] * p, (y * p + dy) * C + box[2] * p);
      rp.fill(0, y * S + box[0], y * S + box[2]);
    }
    box[0] = S; box[1] = S; box[2] = 0; box[3] = 0;
    this.baseRest = 0;
    if (others.length === 0) { box[0] = box[1] = 0; return; }
    for (const d of others) {
      const mx = (xs[d] / p) | 0, my = (ys[d] / p) | 0;
      box[0] = Math.min(box[0], mx); box[1] = Math.min(box[1], my);
      box[2] = Math.max(box[2], Math.min(S, mx + w)); box[3] = Math.max(box[3], Math.min(S, my + w));
    }
    for (const d of others) {
      const img = this.models[d].image, x = xs[d], y0 = ys[d];
      for (let r = 0; r < DIGIT_SIDE; r++) {
        const row = (y0 + r) * C + x, ir = r * DIGIT_SIDE;
        for (let c = 0; c < DIGIT_SIDE; c++) {
          const v = img[ir + c];
          if (v > cv[row + c]) cv[row + c] = v;
        }
      }
    }
    const inv = 1 / (p * p);
    let acc = 0;
    for (let y = box[1]; y < box[3]; y++) for (let x = box[0]; x < box[2]; x++) {
      let sum = 0;
      for (let dy = 0; dy < p; dy++) {
        const row = (y * p + dy) * C + x * p;
        for (let dx = 0; dx < p; dx++) sum += cv[row + dx];
      }
      const m = sum * inv, fv = f[y * S + x], e = fv - m;
      rp[y * S + x] = m;
      acc += e * e - fv * fv;
    }
    this.baseRest = acc;
  }

  /** E of the rest (setRest) plus digit d at (x, y), max-composited where they meet. */
  private withRest(d: number, x: number, y: number, single = this.single(d, x, y)): number {
    let v = this.baseRest + single;
    const p = this.pool, w = this.w, S = this.S, C = this.canvasSize, box = this.restBox;
    const mx = (x / p) | 0, my = (y / p) | 0;
    const x0 = Math.max(mx, box[0]), x1 = Math.min(mx + w, box[2]), y0 = Math.max(my, box[1]), y1 = Math.min(my + w, box[3]);
    if (x0 >= x1 || y0 >= y1) return v;
    const dense = this.models[d].phases[(y % p) * p + (x % p)].dense, img = this.models[d].image;
    const cv = this.canvas, rp = this.restPooled, f = this.f, inv = 1 / (p * p);
    for (let by = y0; by < y1; by++) for (let bx = x0; bx < x1; bx++) {
      const r = rp[by * S + bx];
      if (r === 0) continue;
      const t = dense[(by - my) * w + bx - mx];
      if (t === 0) continue;
      let sum = 0;
      for (let dy = 0; dy < p; dy++) {
        const Y = by * p + dy, ly = Y - y, row = Y * C;
        for (let dx = 0; dx < p; dx++) {
          const X = bx * p + dx, lx = X - x;
          const dv = ly >= 0 && ly < DIGIT_SIDE && lx >= 0 && lx < DIGIT_SIDE ? img[ly * DIGIT_SIDE + lx] : 0;
          const rv = cv[row + X];
          sum += dv > rv ? dv : rv;
        }
      }
      const fv = f[by * S + bx], eb = fv - sum * inv, er = fv - r;
      v += eb * eb - er * er - (t * t - 2 * fv * t);
    }
    return v;
  }

  /**
   * E = sum_px (f - pool(max_d digit_d))^2 - sum_px f^2 of the given positions in a frame
   * (uint8 [S*S]): the objective recover() minimises (lower is a better fit).
   */
  energy(frame: ArrayLike<number>, positions: ArrayLike<number>[]): number {
    if (frame.length !== this.S * this.S) throw new DriftlabError(`frame has ${frame.length} pixels, expected ${this.S}x${this.S}`);
    if (positions.length !== this.digits) throw new DriftlabError(`${positions.length} positions for ${this.digits} digits`);
    for (let i = 0; i < frame.length; i++) this.f[i] = frame[i];
    const D = this.digits;
    if (D === 0) return 0;
    const xs = Int32Array.from(positions, (q) => clamp(Math.round(q[0]), 0, this.L));
    const ys = Int32Array.from(positions, (q) => clamp(Math.round(q[1]), 0, this.L));
    this.setRest(Array.from({ length: D - 1 }, (_, i) => i), xs, ys);
    return this.withRest(D - 1, xs[D - 1], ys[D - 1]);
  }

  /** Recover the digits' top-left positions (canvas px) in one uint8 frame [S*S]. */
  recover(frame: ArrayLike<number>, hint?: RecoverHint): [number, number][] {
    const S = this.S, L = this.L, D = this.digits, f = this.f, map = this.map, side = L + 1;
    if (frame.length !== S * S) throw new DriftlabError(`frame has ${frame.length} pixels, expected ${S}x${S}`);
    if (hint && hint.positions.length !== D) throw new DriftlabError(`hint has ${hint.positions.length} positions for ${D} digits`);
    for (let i = 0; i < S * S; i++) f[i] = frame[i];
    // 1-2. single-digit maps and their best separated minima
    const cands: number[][] = [];
    const sep = 4;
    for (let d = 0; d < D; d++) {
      let x0 = 0, x1 = L, y0 = 0, y1 = L;
      if (hint) {
        const r = hint.radius ?? 8, hx = Math.round(hint.positions[d][0]), hy = Math.round(hint.positions[d][1]);
        x0 = clamp(hx - r, 0, L); x1 = clamp(hx + r, 0, L); y0 = clamp(hy - r, 0, L); y1 = clamp(hy + r, 0, L);
        map.fill(Infinity);
      }
      for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) map[y * side + x] = this.single(d, x, y);
      if (this.global) this.maps[d].set(map);
      const list: number[] = [];
      for (let m = 0; m < this.M; m++) {
        let best = -1, bv = Infinity;
        for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) {
          const v = map[y * side + x];
          if (v < bv) { bv = v; best = y * side + x; }
        }
        if (best < 0) break;
        list.push(best);
        const bx = best % side, by = (best / side) | 0;
        for (let y = Math.max(y0, by - sep); y <= Math.min(y1, by + sep); y++) for (let x = Math.max(x0, bx - sep); x <= Math.min(x1, bx + sep); x++) map[y * side + x] = Infinity;
      }
      cands.push(list);
    }
    // every combination of candidates, scored jointly: the first D-1 digits as the rest, the last one added
    const xs = new Int32Array(D), ys = new Int32Array(D), bxs = new Int32Array(D), bys = new Int32Array(D);
    const head = Array.from({ length: Math.max(0, D - 1) }, (_, i) => i);
    let bestE = Infinity;
    const idx = new Int32Array(D);
    while (D > 0) {
      for (let d = 0; d < D - 1; d++) { const c = cands[d][idx[d]]; xs[d] = c % side; ys[d] = (c / side) | 0; }
      this.setRest(head, xs, ys);
      for (const c of cands[D - 1].slice(0, this.Mc)) {
        const x = c % side, y = (c / side) | 0;
        const e = this.withRest(D - 1, x, y);
        if (e < bestE) { bestE = e; xs[D - 1] = x; ys[D - 1] = y; bxs.set(xs); bys.set(ys); }
      }
      let d = 0;
      while (d < D - 1 && ++idx[d] >= Math.min(this.Mc, cands[d].length)) idx[d++] = 0;
      if (d >= D - 1) break;
    }
    // 3. joint refinement by coordinate descent
    xs.set(bxs); ys.set(bys);
    this.refine(xs, ys, cands, hint !== undefined);
    return Array.from({ length: D }, (_, d) => [xs[d], ys[d]] as [number, number]);
  }

  /** Coordinate descent from xs, ys (in place); then, if enabled, one global move per digit and again. */
  private refine(xs: Int32Array, ys: Int32Array, cands: number[][], hinted: boolean): void {
    const D = this.digits, L = this.L, side = L + 1, R = this.R;
    const descend = () => {
      for (let round = 0; round < this.rounds && D > 0; round++) {
        let moved = false;
        for (let d = 0; d < D; d++) {
          const others: number[] = [];
          for (let e = 0; e < D; e++) if (e !== d) others.push(e);
          const cx = xs[d], cy = ys[d];
          this.setRest(others, xs, ys);
          let bestX = cx, bestY = cy, best = this.withRest(d, cx, cy);
          for (let y = Math.max(0, cy - R); y <= Math.min(L, cy + R); y++) for (let x = Math.max(0, cx - R); x <= Math.min(L, cx + R); x++) {
            if (x === cx && y === cy) continue;
            const v = this.withRest(d, x, y);
            if (v < best - 1e-6) { best = v; bestX = x; bestY = y; } // strict improvement: ties keep the current position
          }
          for (const c of cands[d]) { // or a jump to another of its candidates
            const x = c % side, y = (c / side) | 0;
            const v = this.withRest(d, x, y);
            if (v < best - 1e-6) { best = v; bestX = x; bestY = y; }
          }
          if (bestX !== cx || bestY !== cy) { xs[d] = bestX; ys[d] = bestY; moved = true; }
        }
        if (!moved) break;
      }
    };
    descend();
    if (!this.global || D < 2) return;
    let moved = false;
    for (let d = 0; d < D; d++) {
      const others: number[] = [];
      for (let e = 0; e < D; e++) if (e !== d) others.push(e);
      this.setRest(others, xs, ys);
      const map = this.maps[d];
      let best = this.withRest(d, xs[d], ys[d]), bx = xs[d], by = ys[d];
      for (let y = 0; y <= L; y++) for (let x = 0; x <= L; x++) {
        const m = map[y * side + x];
        const v = this.withRest(d, x, y, hinted && m === Infinity ? this.single(d, x, y) : m);
        if (v < best - 1e-6) { best = v; bx = x; by = y; }
      }
      if (bx !== xs[d] || by !== ys[d]) { xs[d] = bx; ys[d] = by; moved = true; }
    }
    if (moved) descend();
  }
}

const clamp = (v: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, v));

const modelCache = new WeakMap<Uint8Array, Map<string, DigitModel>>();
function cachedModel(t: Uint8Array, S: number, p: number): DigitModel {
  let m = modelCache.get(t);
  if (!m) modelCache.set(t, (m = new Map()));
  const key = `${S}/${p}`;
  let model = m.get(key);
  if (!model) m.set(key, (model = buildModel(t, S, p)));
  return model;
}

/**
 * Top-left positions [digits][2] (canvas px, integers) of the given digits in a uint8 frame of
 * side S (the canvas pooled by `pool`). Phase templates are cached per template array, so pass
 * the same Uint8Array objects for every frame of a rollout (or use a TrajectoryMatcher).
 */
export function recoverPositions(frame: ArrayLike<number>, S: number, canvasSize: number, pool: number, templates: Uint8Array[], hint?: RecoverHint): [number, number][] {
  return new TrajectoryMatcher(S, canvasSize, pool, templates).recover(frame, hint);
}

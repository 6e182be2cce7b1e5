// Progress bar for long jobs: live \r redraws on a TTY, short plain lines on pipes / CI logs.
//
// Hand-written on purpose (issue #16 item 3 compared it with cli-progress 3.12): cli-progress
// took 55-140x the time per tick in two runs (10,000 ticks with a loss field: 1.3-1.4 ms here
// against 140-186 ms non-TTY, 0.8-0.9 against 117-149 ms TTY; bench/bench-encoders.ts,
// docs/BENCHMARKS.md "Encoders"), and
// it does not keep this bar's behaviour: no rate (img/s, s/step), its non-TTY output is a line
// every notTTYSchedule ms instead of one per 10% of the total plus one per 30 s, and its redraw
// timers keep the process alive until stop(). So this one stays.

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  total: number;
  label?: string;
  stream?: ProgressStream;
  /** Unit for the rate, e.g. 'img' -> "12.3 img/s". */
  unit?: string;
  /** Bar width in characters (default 20). */
  barWidth?: number;
  /** Force TTY/non-TTY behaviour (default: stream.isTTY). */
  tty?: boolean;
  /** Work already done before this process started (a resumed run): counted in the bar, not in the rate or ETA. */
  initial?: number;
  /** Clock in milliseconds (for tests). */
  now?: () => number;
  /** Min ms between TTY redraws (default 200 = 5/s). */
  ttyIntervalMs?: number;
  /** Non-TTY: print when another `logFraction` of the total is done (default 0.1)... */
  logFraction?: number;
  /** ...or when this many ms passed since the last line (default 30 000). */
  logIntervalMs?: number;
}

/** "12.3s", "3m05s", "1h02m"; "?" for non-finite or negative input. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  if (seconds < 59.95) return `${seconds.toFixed(1)}s`;
  const total = Math.round(seconds);
  if (total < 3600) return `${Math.floor(total / 60)}m${String(total % 60).padStart(2, '0')}s`;
  const mins = Math.round(seconds / 60);
  return `${Math.floor(mins / 60)}h${String(mins % 60).padStart(2, '0')}m`;
}

/** Compact number for status fields: integers as-is, others with 4 significant digits. */
export function formatValue(v: string | number): string {
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e9) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-4 || a >= 1e6)) return v.toExponential(3).replace(/\.?0+e/, 'e').replace('e+', 'e');
  return String(Number(v.toPrecision(4)));
}

function formatRate(perSec: number, unit: string): string {
  if (!(perSec > 0) || !Number.isFinite(perSec)) return `0 ${unit}/s`;
  if (perSec < 1) return `${(1 / perSec).toFixed(1)} s/${unit}`;
  return `${perSec >= 100 ? perSec.toFixed(0) : perSec >= 10 ? perSec.toFixed(1) : perSec.toFixed(2)} ${unit}/s`;
}

export class Progress {
  readonly total: number;
  readonly label: string;
  readonly unit: string;
  count = 0;
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly now: () => number;
  private readonly barWidth: number;
  private readonly ttyInterval: number;
  private readonly logFraction: number;
  private readonly logInterval: number;
  private readonly start: number;
  private readonly initial: number;
  private fields: Record<string, string | number> = {};
  private lastDraw = -Infinity;
  private lastLen = 0;
  private nextLogCount: number;
  private finished = false;

  constructor(opts: ProgressOptions) {
    this.total = Math.max(0, opts.total);
    this.label = opts.label ?? '';
    this.unit = opts.unit ?? 'it';
    this.stream = opts.stream ?? process.stderr;
    this.tty = opts.tty ?? !!this.stream.isTTY;
    this.now = opts.now ?? (() => performance.now());
    this.barWidth = opts.barWidth ?? 20;
    this.ttyInterval = opts.ttyIntervalMs ?? 200;
    this.logFraction = opts.logFraction ?? 0.1;
    this.logInterval = opts.logIntervalMs ?? 30_000;
    this.start = this.now();
    this.initial = Math.max(0, opts.initial ?? 0);
    this.count = this.initial;
    const logStep = Math.max(1, this.total * this.logFraction);
    this.nextLogCount = this.initial > 0 ? (Math.floor(this.initial / logStep) + 1) * logStep : this.total * this.logFraction;
  }

  /** Seconds since construction. */
  elapsed(): number {
    return (this.now() - this.start) / 1000;
  }

  /** Advances by n and merges `fields` (e.g. {loss: 0.0312}) into the status; reaching total calls done(). */
  tick(n = 1, fields?: Record<string, string | number>): void {
    if (this.finished) return;
    this.count += n;
    if (fields) Object.assign(this.fields, fields);
    const t = this.now();
    if (this.total > 0 && this.count >= this.total) this.done();
    else if (this.tty ? t - this.lastDraw >= this.ttyInterval
      : (this.total > 0 && this.count >= this.nextLogCount) || t - this.lastDraw >= this.logInterval) {
      this.draw(t, false);
    }
  }

  /** Updates status fields without advancing. */
  set(fields: Record<string, string | number>): void {
    Object.assign(this.fields, fields);
  }

  /** Prints the final line (total elapsed instead of ETA). Idempotent. */
  done(fields?: Record<string, string | number>): void {
    if (this.finished) return;
    if (fields) Object.assign(this.fields, fields);
    this.draw(this.now(), true);
    this.finished = true;
  }

  /** The status line as it would be printed now. */
  line(final = false, t = this.now()): string {
    const secs = (t - this.start) / 1000;
    const rate = secs > 0 ? (this.count - this.initial) / secs : 0;
    const parts: string[] = [];
    if (this.label) parts.push(this.label);
    if (this.total > 0) {
      const frac = Math.min(1, this.count / this.total);
      const filled = Math.round(frac * this.barWidth);
      parts.push(`[${'#'.repeat(filled)}${'.'.repeat(this.barWidth - filled)}]`);
      parts.push(`${String(Math.floor(frac * 100)).padStart(3)}%`);
      parts.push(`${this.count}/${this.total}`);
    } else parts.push(`${this.count}`);
    for (const [k, v] of Object.entries(this.fields)) parts.push(`${k}=${formatValue(v)}`);
    if (this.count > this.initial && secs > 0) parts.push(formatRate(rate, this.unit));
    if (final) parts.push(`in ${formatDuration(secs)}`);
    else if (this.total > 0 && rate > 0) parts.push(`ETA ${formatDuration(Math.max(0, this.total - this.count) / rate)}`);
    return parts.join(' ');
  }

  private draw(t: number, final: boolean): void {
    this.lastDraw = t;
    let s = this.line(final, t);
    if (this.tty) {
      const cols = this.stream.columns;
      if (cols && s.length > cols - 1) s = s.slice(0, cols - 1);
      const padLen = Math.max(0, this.lastLen - s.length);
      this.lastLen = s.length;
      this.stream.write(`\r${s}${' '.repeat(padLen)}${final ? '\n' : ''}`);
    } else {
      if (this.total > 0) {
        const step = Math.max(1, this.total * this.logFraction);
        this.nextLogCount = (Math.floor(this.count / step) + 1) * step;
      }
      this.stream.write(`${s}\n`);
    }
  }
}

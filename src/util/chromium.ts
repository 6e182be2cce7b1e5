/**
 * Headless Chromium as a render checker for the HTML reports of src/drift/report.ts: load the
 * page from disk with no network and a throwaway profile, let virtual time run, dump the DOM and
 * read back the JSON the report's own script wrote into <pre id="render-check">.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { DriftlabError } from './errors.js';
import { findExecutable } from './which.js';

const NAMES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

/** Chromium to use: $CHROMIUM_PATH if executable, else chromium, chromium-browser, google-chrome on $PATH; null if none. */
export function findChromium(env: NodeJS.ProcessEnv = process.env): string | null {
  return findExecutable(NAMES, 'CHROMIUM_PATH', env);
}

export interface RenderTally { ok: number; bad: string[] }
export interface RenderCheck {
  images: RenderTally;
  svgs: RenderTally;
  /** gifFallback: videos that did not decode but whose GIF twin rendered, in a browser without H.264 */
  videos: RenderTally & { gifFallback: string[] };
  /** what the browser answered to canPlayType('video/mp4; codecs="avc1.64001E"') ('' = no H.264) */
  h264: string;
  /** Vega-Lite charts that vega-embed drew (svg with marks) or failed to */
  charts: RenderTally;
  /** script errors, console.error calls and CSP violations seen by the page */
  errors: string[];
  /** window width, document scroll width, and elements that stick out past the window (not inside a box that scrolls) */
  layout: { width: number; scrollWidth: number; wide: string[] };
  /** the JSON text exactly as the page wrote it */
  raw: string;
  /** the dumped DOM, when opts.keepDom */
  dom?: string;
}
export interface CheckRenderOptions {
  /** chromium binary (default findChromium()) */
  chromium?: string;
  /** kill chromium after this many ms (default 60000) */
  timeoutMs?: number;
  /** virtual time the page gets before the DOM is dumped (default 10000) */
  virtualTimeMs?: number;
  /** also return the dumped DOM */
  keepDom?: boolean;
  /** browser window width in CSS px (default 1300); the layout check compares elements with it */
  windowWidth?: number;
}

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos|nbsp);/gi, (m, e: string) => {
    const k = e.toLowerCase();
    if (k[0] === '#') return String.fromCodePoint(k[1] === 'x' ? parseInt(k.slice(2), 16) : parseInt(k.slice(1), 10));
    return ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' } as Record<string, string>)[k] ?? m;
  });
}

/** Chromium's stderr minus the usual noise (dbus, launcher warnings): its last meaningful line. */
function lastError(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l && !/dbus|\/usr\/bin\/chromium: \d+:|Fontconfig|sandbox|gcm|DevTools listening/i.test(l));
  return lines.at(-1)?.slice(0, 300) ?? 'no message';
}

/** Parse the render-check JSON out of a dumped DOM (exported for tests). */
export function parseRenderCheck(dom: string, what = 'the page'): Omit<RenderCheck, 'dom'> {
  const m = /<pre\b[^>]*\bid="render-check"[^>]*>([\s\S]*?)<\/pre>/i.exec(dom);
  if (!m) throw new DriftlabError(`${what} has no <pre id="render-check">: not a driftlab report, or chromium did not load it`);
  const raw = decodeEntities(m[1]).trim();
  let j: any;
  try {
    j = JSON.parse(raw);
  } catch {
    throw new DriftlabError(`${what} did not finish its render check within the virtual time budget (render-check says ${JSON.stringify(raw.slice(0, 60))})`);
  }
  const tally = (t: any, k: string): RenderTally => {
    if (!t || typeof t.ok !== 'number' || !Array.isArray(t.bad)) throw new DriftlabError(`${what}: render-check JSON lacks '${k}' {ok, bad}`);
    return { ok: t.ok, bad: t.bad.map(String) };
  };
  return {
    images: tally(j.images, 'images'),
    svgs: tally(j.svgs, 'svgs'),
    videos: { ...tally(j.videos, 'videos'), gifFallback: Array.isArray(j.videos.gifFallback) ? j.videos.gifFallback.map(String) : [] },
    h264: typeof j.h264 === 'string' ? j.h264 : '',
    charts: j.charts ? tally(j.charts, 'charts') : { ok: 0, bad: [] },
    errors: Array.isArray(j.errors) ? j.errors.map(String) : [],
    layout: {
      width: Number(j.layout?.width ?? 0), scrollWidth: Number(j.layout?.scrollWidth ?? 0),
      wide: Array.isArray(j.layout?.wide) ? j.layout.wide.map(String) : [],
    },
    raw,
  };
}

/**
 * Opens `htmlFile` in headless Chromium (no sandbox, no GPU, no network services, a fresh temp
 * profile), dumps the DOM after the virtual time budget and returns the page's render check.
 * Throws a one-line DriftlabError when no chromium is found, it fails or times out, or the page
 * wrote no render check.
 */
export async function checkRender(htmlFile: string, opts: CheckRenderOptions = {}): Promise<RenderCheck> {
  const file = path.resolve(htmlFile);
  try {
    if (!statSync(file).isFile()) throw new Error('not a file');
  } catch {
    throw new DriftlabError(`checkRender: ${htmlFile} is not a readable file`);
  }
  const chromium = opts.chromium ?? findChromium();
  if (!chromium) {
    const bad = process.env.CHROMIUM_PATH ? ` (CHROMIUM_PATH=${process.env.CHROMIUM_PATH} is not an executable file)` : '';
    throw new DriftlabError(`cannot check ${htmlFile}: no chromium found${bad}; install it (Debian/Ubuntu: apt-get install chromium) or set CHROMIUM_PATH`);
  }
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const profile = mkdtempSync(path.join(tmpdir(), 'driftlab-chromium-'));
  const args = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-extensions', '--disable-default-apps', '--no-first-run',
    '--no-default-browser-check', '--mute-audio', `--user-data-dir=${profile}`, `--window-size=${Math.round(opts.windowWidth ?? 1300)},1000`,
    '--hide-scrollbars',
    `--virtual-time-budget=${opts.virtualTimeMs ?? 10_000}`, '--dump-dom', pathToFileURL(file).href,
  ];
  try {
    const { code, signal, stdout, stderr, timedOut } = await new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string; timedOut: boolean }>((resolve, reject) => {
      // own process group, so a timeout can stop chromium together with its helper processes
      const child = spawn(chromium, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      const out: Buffer[] = [];
      let err = '';
      let timedOut = false;
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d: Buffer) => {
        if (err.length < 1 << 16) err += d.toString();
      });
      const timer = setTimeout(() => {
        timedOut = true;
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      }, timeoutMs);
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(new DriftlabError(`cannot run chromium at ${chromium}: ${e.message.split('\n')[0]}`));
      });
      child.on('close', (c, s) => {
        clearTimeout(timer);
        resolve({ code: c, signal: s, stdout: Buffer.concat(out).toString('utf8'), stderr: err, timedOut });
      });
    });
    if (timedOut) throw new DriftlabError(`chromium (${chromium}) did not finish rendering ${htmlFile} within ${timeoutMs / 1000} s`);
    if (code !== 0 || !stdout.trim()) {
      const how = signal ? `was killed by ${signal}` : code !== 0 ? `exited with code ${code}` : 'printed no DOM';
      throw new DriftlabError(`chromium (${chromium}) ${how} rendering ${htmlFile}: ${lastError(stderr)}`);
    }
    const r: RenderCheck = parseRenderCheck(stdout, htmlFile);
    if (!/<body\b[^>]*\bdata-rendered="1"/i.test(stdout)) throw new DriftlabError(`${htmlFile}: the render check ran but body[data-rendered] is not set`);
    if (opts.keepDom) r.dom = stdout;
    return r;
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

/**
 * Vega-Lite in Node, no browser: compile a spec with vega-lite, lay it out with vega (text
 * measured with the Inter font that ships in @expo-google-fonts/inter, through fontkit), write
 * SVG with vega's headless renderer and rasterise that SVG with resvg using the same font files
 * and no system fonts. Same spec + data -> byte-identical SVG and PNG on every machine.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { DriftlabError } from '../util/errors.js';

const require = createRequire(import.meta.url);

/** The font every chart uses; the SVG names fallbacks for viewers without it. */
export const FONT_FAMILY = 'Inter';
export const FONT_STACK = 'Inter, Helvetica, Arial, sans-serif';
export const FONT_FILES = {
  get regular() { return packageFile('@expo-google-fonts/inter', '400Regular/Inter_400Regular.ttf'); },
  get bold() { return packageFile('@expo-google-fonts/inter', '700Bold/Inter_700Bold.ttf'); },
};

/** A file inside an installed package, found past its "exports" map (e.g. a UMD build, a font). */
export function packageFile(pkg: string, rel: string): string {
  for (const dir of require.resolve.paths(pkg) ?? []) {
    const f = path.join(dir, pkg, rel);
    if (existsSync(f)) return f;
  }
  throw new DriftlabError(`cannot find ${rel} of the npm package ${pkg}; reinstall driftlab's dependencies (npm ci)`);
}

interface Face { unitsPerEm: number; layout(text: string): { advanceWidth: number } }
let faces: { regular: Face; bold: Face } | null = null;

async function loadFaces(): Promise<{ regular: Face; bold: Face }> {
  if (faces) return faces;
  const fontkit = (await import('fontkit')) as any;
  const open = (file: string): Face => (fontkit.create ?? fontkit.default.create)(readFileSync(file));
  faces = { regular: open(FONT_FILES.regular), bold: open(FONT_FILES.bold) };
  return faces;
}

/** Text advance in px of `text` at `size` px, as resvg will draw it (kerning included). */
export function measureText(f: { regular: Face; bold: Face }, text: string, size: number, weight?: string | number): number {
  const bold = weight === 'bold' || weight === 'bolder' || Number(weight) >= 600;
  const face = bold ? f.bold : f.regular;
  return (face.layout(text).advanceWidth / face.unitsPerEm) * size;
}

let vegaReady: Promise<{ vega: any; vl: any }> | null = null;

/** vega + vega-lite, with vega's text measurement switched from its 0.8 em estimate to the real font. */
export function loadVega(): Promise<{ vega: any; vl: any }> {
  vegaReady ??= (async () => {
    const [vega, vl, f] = (await Promise.all([import('vega'), import('vega-lite'), loadFaces()])) as [any, any, Awaited<ReturnType<typeof loadFaces>>];
    const memo = new Map<string, number>();
    vega.textMetrics.width = (item: any, text: unknown) => {
      const t = text == null ? '' : String(text).trim();
      const size = item.fontSize != null ? +item.fontSize || 0 : 11;
      const key = `${item.fontWeight ?? ''}|${size}|${t}`;
      let w = memo.get(key);
      if (w === undefined) memo.set(key, (w = measureText(f, t, size, item.fontWeight)));
      return w;
    };
    return { vega, vl };
  })();
  return vegaReady;
}

export interface RenderOptions {
  /** directory that relative data URLs (e.g. NAME.csv) are read from */
  baseDir: string;
}

/**
 * Vega-Lite spec -> SVG text. Data URLs are read from files only (relative to baseDir); no
 * network access is possible.
 */
export async function renderSvg(spec: object, opts: RenderOptions): Promise<string> {
  const { vega, vl } = await loadVega();
  let compiled: any;
  try {
    compiled = vl.compile(spec as any).spec;
  } catch (e) {
    throw new DriftlabError(`vega-lite cannot compile the spec: ${String((e as Error)?.message ?? e).split('\n')[0]}`);
  }
  const base = pathToFileURL(path.resolve(opts.baseDir) + path.sep).pathname;
  const loader = vega.loader({ baseURL: base, mode: 'file' });
  const errors: string[] = [];
  const logger = vega.logger(vega.Warn, 'error');
  logger.error = (...a: unknown[]) => (errors.push(a.map(String).join(' ')), logger);
  // vega warnings (e.g. an empty domain) are not fatal, except a data file it could not load
  logger.warn = (...a: unknown[]) => (/^Loading failed/i.test(String(a[0])) && errors.push(a.map((v) => String((v as Error)?.message ?? v)).join(' ')), logger);
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', loader, logger });
  try {
    const svg: string = await view.toSVG();
    if (errors.length) throw new DriftlabError(`vega reported: ${errors[0]!.split('\n')[0]}`);
    const out = stableIds(svg);
    return out.endsWith('\n') ? out : out + '\n';
  } catch (e) {
    if (e instanceof DriftlabError) throw e;
    const msg = String((e as Error)?.message ?? e).split('\n')[0]!;
    if (/ENOENT|no such file/i.test(msg)) throw new DriftlabError(`the spec's data file is missing (read relative to ${opts.baseDir}): ${msg}`);
    throw new DriftlabError(`vega cannot render the spec: ${msg}`);
  } finally {
    view.finalize();
  }
}

/**
 * vega numbers clip paths and gradients with a process-wide counter (clip7 in the third chart
 * of a run); renumber them in order of appearance so the SVG depends only on the spec and data.
 */
export function stableIds(svg: string): string {
  const map = new Map<string, string>();
  const count = new Map<string, number>();
  const fresh = (kind: string, old: string) => {
    if (!map.has(old)) {
      const n = (count.get(kind) ?? 0) + 1;
      count.set(kind, n);
      map.set(old, `${kind}${n}`);
    }
    return map.get(old)!;
  };
  return svg.replace(/(\bid="|url\(#|href="#)((?:clip|gradient|pattern)_?)(\d+)/g, (_m, pre: string, kind: string, n: string) => pre + fresh(kind, kind + n));
}

/** SVG text -> PNG bytes at `scale` device pixels per SVG pixel, with the bundled font only. */
export async function svgToPng(svg: string, scale = 2): Promise<Uint8Array> {
  const { Resvg } = await import('@resvg/resvg-js');
  const r = new Resvg(svg, {
    font: { loadSystemFonts: false, fontFiles: [FONT_FILES.regular, FONT_FILES.bold], defaultFontFamily: FONT_FAMILY, sansSerifFamily: FONT_FAMILY },
    fitTo: { mode: 'zoom', value: scale },
    background: '#ffffff',
    shapeRendering: 2,
    textRendering: 1,
  });
  return r.render().asPng();
}

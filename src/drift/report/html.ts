/** Report building blocks: HTML escaping, ids, reading media files, relative links, inline-safe SVG. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DriftlabError } from '../../util/errors.js';

/** Escape text for HTML element content and double-quoted attribute values. */
export function escapeHtml(s: string | number): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A stable, attribute-safe id fragment: letters, digits, '-', '_' (anything else becomes '-'). */
export function slug(id: string): string {
  const s = String(id).trim().replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '');
  return s || 'x';
}

export function readMedia(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException)?.code;
    throw new DriftlabError(`report: cannot read ${what} ${file}${code === 'ENOENT' ? ': file not found' : `: ${code ?? String(e).split('\n')[0]}`}`);
  }
}

export const dataUri = (mime: string, bytes: Uint8Array) => `data:${mime};base64,${Buffer.from(bytes).toString('base64')}`;

export function relLink(baseDir: string, file: string): string {
  const rel = path.relative(path.resolve(baseDir), path.resolve(file)).split(path.sep).join('/');
  return rel.split('/').map(encodeURIComponent).join('/');
}

/**
 * Inline-safe SVG markup, or null when the file does not look like one SVG document (the caller
 * then embeds it as a data: URI <img>, where scripts never run). Strips the XML prolog, doctype,
 * comments, <script>/<foreignObject>/embedding elements, on* attributes and javascript:/external
 * links; ids are prefixed so several inline SVGs cannot collide.
 */
export function sanitizeSvg(text: string, idPrefix: string): string | null {
  let s = text.replace(/^\uFEFF/, '');
  s = s.replace(/<\?[\s\S]*?\?>/g, '');
  s = s.replace(/<!DOCTYPE[^>[]*(\[[\s\S]*?\])?\s*>/gi, '');
  s = s.replace(/<!--[\s\S]*?-->/g, '');
  for (const tag of ['script', 'foreignObject', 'iframe', 'object', 'embed', 'audio', 'video', 'handler', 'listener']) {
    s = s.replace(new RegExp(`<${tag}\\b[\\s\\S]*?<\\/${tag}\\s*>`, 'gi'), '');
    s = s.replace(new RegExp(`<${tag}\\b[^>]*>`, 'gi'), '');
  }
  s = s.replace(/\s+on[a-z0-9_:-]*\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)/gi, '');
  s = s.replace(/(\s(?:xlink:)?href\s*=\s*)("[^"]*"|'[^']*'|[^\s>]+)/gi, (m, pre: string, v: string) => {
    const url = v.replace(/^["']|["']$/g, '').trim();
    return url.startsWith('#') || /^data:image\//i.test(url) ? m : `${pre}"#"`;
  });
  s = s.trim();
  if (!/^<svg[\s>]/i.test(s) || !/<\/svg>$/i.test(s)) return null;
  if (/<script|\son[a-z]+\s*=|javascript:|<foreignObject|<!ENTITY/i.test(s)) return null; // paranoia: fall back to <img>
  s = s.replace(/(\sid\s*=\s*)(["'])([^"']*)\2/gi, (_m, pre: string, q: string, v: string) => `${pre}${q}${idPrefix}${v}${q}`);
  s = s.replace(/url\(\s*(["']?)#/g, (_m, q: string) => `url(${q}#${idPrefix}`);
  s = s.replace(/(\s(?:xlink:)?href\s*=\s*)(["'])#/gi, (_m, pre: string, q: string) => `${pre}${q}#${idPrefix}`);
  return s;
}

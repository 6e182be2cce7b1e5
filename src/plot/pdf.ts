/**
 * SVG -> vector PDF with pdfkit + svg-to-pdfkit (pure JavaScript): paths stay paths and text
 * stays text, set in the Inter font files the charts are laid out with (vega.ts FONT_FILES),
 * embedded as subsets so the PDF shows the same glyphs on every machine and its text can be
 * selected and searched. One page of the SVG's width x height, 1 SVG px = 1 PDF point (the
 * convention of vega's own PDF output), so a 720 x 450 chart is a 720 x 450 pt page.
 *
 * Same SVG -> same bytes: the creation date (pdfkit writes one into the info dictionary and the
 * XMP metadata, and derives the file ID from it) is SOURCE_DATE_EPOCH when set, else the epoch,
 * never the clock, so re-rendering an unchanged spec does not change the PDF.
 */
import { DriftlabError } from '../util/errors.js';
import { FONT_FILES } from './vega.js';

export interface PdfOptions {
  /** document title (PDF info dictionary), e.g. the chart's title */
  title?: string;
}

/** width/height of the root <svg> element, in px; fails on a missing or non-px size. */
export function svgSize(svg: string): { width: number; height: number } {
  const root = /<svg\b[^>]*>/.exec(svg)?.[0];
  const attr = (k: string) => (root ? new RegExp(`\\s${k}="([0-9.]+)(px)?"`).exec(root)?.[1] : undefined);
  const width = Number(attr('width'));
  const height = Number(attr('height'));
  if (!(width > 0) || !(height > 0)) throw new DriftlabError('cannot write a PDF: the SVG has no width/height in px on its root element');
  return { width, height };
}

/** SOURCE_DATE_EPOCH (seconds; the reproducible-builds convention) or the epoch. */
function sourceDate(): Date {
  const s = Number(process.env.SOURCE_DATE_EPOCH);
  return new Date(Number.isFinite(s) && s >= 0 ? s * 1000 : 0);
}

export async function svgToPdf(svg: string, opts: PdfOptions = {}): Promise<Uint8Array> {
  const { width, height } = svgSize(svg);
  const { default: PDFDocument } = (await import('pdfkit')) as any;
  const { default: SVGtoPDF } = (await import('svg-to-pdfkit')) as any;
  const doc = new PDFDocument({
    size: [width, height],
    margin: 0,
    font: FONT_FILES.regular, // the default font: pdfkit then never loads its built-in Helvetica
    compress: true,
    info: { ...(opts.title ? { Title: opts.title } : {}), Producer: 'driftlab (pdfkit)', Creator: 'driftlab', CreationDate: sourceDate() },
  });
  doc.registerFont('Inter', FONT_FILES.regular);
  doc.registerFont('Inter-Bold', FONT_FILES.bold);
  const chunks: Buffer[] = [];
  doc.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => (doc.on('end', resolve), doc.on('error', reject)));
  const warnings: string[] = [];
  SVGtoPDF(doc, svg, 0, 0, {
    width,
    height,
    assumePt: true,
    // every family vega names (Inter, Helvetica, Arial, sans-serif) is set in the bundled Inter
    fontCallback: (_family: string, bold: boolean) => (bold ? 'Inter-Bold' : 'Inter'),
    warningCallback: (w: string) => warnings.push(w),
  });
  doc.end();
  await done;
  if (warnings.length) throw new DriftlabError(`cannot convert the SVG to PDF: ${warnings[0]}`);
  return new Uint8Array(Buffer.concat(chunks));
}

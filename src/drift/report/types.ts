/** What a report holds (src/drift/report.ts builds the page from it). */
export interface ReportTable { title: string; caption?: string; columns: string[]; rows: (string | number)[][] }
export interface ReportFigure {
  id: string; title: string; caption?: string; /** SVG file path */ svg?: string; /** PNG file path */ png?: string;
  /** Vega-Lite spec (default: NAME.vl.json beside the SVG, when it exists) drawn as an interactive chart */
  vl?: string;
}
export interface ReportVideo { id: string; title: string; caption?: string; /** GIF file path */ gif?: string; /** MP4 file path */ mp4?: string }
export interface ReportSpec {
  title: string;
  subtitle?: string;
  /** run details: command, checkpoint, engine, seed, horizon, rollouts, date, ... */
  meta: Record<string, string | number>;
  tables: ReportTable[];
  figures: ReportFigure[];
  videos: ReportVideo[];
  /** e.g. what each metric is and is not comparable with */
  notes: string[];
  /** directory the report will be written to, for relative links (writeReport sets it; default cwd) */
  baseDir?: string;
  /** MP4s up to this size are embedded as data: URIs, larger ones linked (default 1 MB) */
  maxInlineVideoBytes?: number;
  /** GIFs up to this size are embedded as data: URIs, larger ones shown by relative URL (default 2 MB) */
  maxInlineGifBytes?: number;
}

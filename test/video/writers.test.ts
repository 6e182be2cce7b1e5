/**
 * Video writers: GIF round trips (exact gray levels, LZW table resets and code-size growth,
 * loop block and delays, checked against ffmpeg's decoder too), filmstrip geometry, MP4 through
 * ffmpeg (frame count by ffprobe) and the one-line error when no ffmpeg exists.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { rejectsDriftlab, tempDir, throwsDriftlab } from '../helpers/common.js';
import { textHeight, textWidth } from '../../src/plot/font.js';
import { decodePng } from '../../src/plot/png.js';
import { Rng } from '../../src/util/rng.js';
import {
  decodeGif, encodeGif, filmstrip, filmstripLayout, findFfmpeg, gifDelays, lzwDecode,
  writeFilmstrip, writeGif, writeMp4, writeVideo, type LzwStats,
} from '../../src/video/writers.js';
// the hand-written LZW encoder gifenc replaced: a second, independent encoder for the decoder tests
import { lzwEncode } from '../../bench/legacy-gif-encoder.js';

const bytesOf = (n: number, alphabet: number, seed: number) => {
  const r = new Rng(seed);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = r.int(alphabet);
  return b;
};
const stats = (): LzwStats => ({ clears: 0, maxCodeSize: 0 });
const ffmpeg = findFfmpeg();

test('GIF round trip: uint8 frames come back exactly, every gray level', () => {
  const [T, H, W] = [4, 16, 17];
  const frames = bytesOf(T * H * W, 256, 1);
  for (let v = 0; v < 256; v++) frames[v] = v; // all 256 levels present
  const gif = encodeGif(frames, T, H, W, { fps: 10 });
  const d = decodeGif(gif);
  assert.equal([d.T, d.H, d.W], [T, H, W]);
  assert.ok(Buffer.from(d.frames).equals(Buffer.from(frames)), 'decoded frames differ');
  for (let v = 0; v < 256; v++) assert.equal([...d.palette.subarray(3 * v, 3 * v + 3)], [v, v, v]);
});

test('GIF round trip: floats quantise by Math.round(v*255), clipped, NaN -> 0', () => {
  const vals = [0, 1 / 255, 0.5, 0.998, 1, -0.2, 1.7, NaN, 0.25, 0.7];
  const d = decodeGif(encodeGif(new Float32Array(vals), 1, 2, 5));
  const want = vals.map((v) => (Number.isNaN(v) ? 0 : Math.min(255, Math.max(0, Math.round(Math.fround(v) * 255)))));
  assert.equal([...d.frames], want);
});

test('GIF: integer upscaling repeats each pixel scale x scale', () => {
  const d = decodeGif(encodeGif(Uint8Array.of(10, 20, 30, 40, 50, 60), 1, 2, 3, { scale: 3 }));
  assert.equal([d.H, d.W], [6, 9]);
  for (let y = 0; y < 6; y++) for (let x = 0; x < 9; x++) {
    assert.is(d.frames[y * 9 + x], 10 * (1 + Math.floor(y / 3) * 3 + Math.floor(x / 3)));
  }
});

test('LZW: 256x256 noise forces table resets and 12-bit codes; decodes exactly', () => {
  const noise = bytesOf(256 * 256, 256, 2);
  const st = stats();
  const back = lzwDecode(lzwEncode(noise), 8, noise.length, st);
  assert.ok(Buffer.from(back).equals(Buffer.from(noise)));
  assert.ok(st.clears > 5, `expected several clear codes, got ${st.clears}`);
  assert.is(st.maxCodeSize, 12);
  // and through the container, several frames sharing one encoder table
  const frames = bytesOf(3 * 256 * 256, 256, 3);
  const d = decodeGif(encodeGif(frames, 3, 256, 256));
  assert.ok(Buffer.from(d.frames).equals(Buffer.from(frames)));
});

test('LZW: a constant frame compresses to long strings without a reset', () => {
  const flat = new Uint8Array(256 * 256).fill(77);
  const st = stats();
  const code = lzwEncode(flat);
  assert.ok(code.length < 1000, `constant frame took ${code.length} bytes`);
  assert.ok(Buffer.from(lzwDecode(code, 8, flat.length, st)).equals(Buffer.from(flat)));
  assert.is(st.clears, 1);
  assert.ok(st.maxCodeSize >= 10 && st.maxCodeSize < 12, `max code size ${st.maxCodeSize}`);
  const d = decodeGif(encodeGif(new Float32Array(64 * 64), 1, 64, 64));
  assert.ok(d.frames.every((v) => v === 0));
});

test('LZW: every length around the code-size and table-full boundaries', () => {
  let cases = 0;
  for (const alphabet of [1, 2, 7, 256]) {
    for (let n = 1; n < 1400; n += alphabet === 256 ? 1 : 13) {
      const x = bytesOf(n, alphabet, n * 31 + alphabet);
      const back = lzwDecode(lzwEncode(x), 8, n);
      if (!Buffer.from(back).equals(Buffer.from(x))) assert.unreachable(`length ${n}, alphabet ${alphabet}`);
      cases++;
    }
  }
  // 3838 new codes fill the table: lengths near that many emitted codes (noise ~ 1 code per byte)
  for (let n = 3700; n < 4200; n += 3) {
    const x = bytesOf(n, 256, n);
    if (!Buffer.from(lzwDecode(lzwEncode(x), 8, n)).equals(Buffer.from(x))) assert.unreachable(`length ${n}`);
    cases++;
  }
  assert.ok(cases > 1500);
  throwsDriftlab(() => lzwDecode(Uint8Array.of(0xff, 0xff), 8, 10), /corrupt|ends after/);
});

test('GIF: header, NETSCAPE2.0 loop block and per-frame delays', () => {
  const gif = encodeGif(new Uint8Array(6 * 4), 6, 2, 2, { fps: 30 });
  assert.is(Buffer.from(gif.subarray(0, 6)).toString('latin1'), 'GIF89a');
  const at = Buffer.from(gif).indexOf('NETSCAPE2.0', 0, 'latin1');
  assert.ok(at > 0, 'no NETSCAPE2.0 block');
  assert.equal([...gif.subarray(at - 3, at)], [0x21, 0xff, 11]);
  assert.equal([...gif.subarray(at + 11, at + 16)], [3, 1, 0, 0, 0]); // loop forever
  assert.is(gif[gif.length - 1], 0x3b);
  const d = decodeGif(gif);
  assert.is(d.loopCount, 0);
  assert.equal(d.delaysCs, [3, 4, 3, 3, 4, 3]); // 30 fps: 20 cs per 6 frames exactly
  assert.equal(decodeGif(encodeGif(new Uint8Array(12), 3, 2, 2)).delaysCs, [10, 10, 10]); // default 10 fps
  assert.equal(decodeGif(encodeGif(new Uint8Array(4), 1, 2, 2, { loop: 3 })).loopCount, 3);
  assert.is(decodeGif(encodeGif(new Uint8Array(4), 1, 2, 2, { loop: false })).loopCount, null);
  assert.equal(gifDelays(4, 50), [2, 2, 2, 2]);
  throwsDriftlab(() => encodeGif(new Uint8Array(4), 1, 2, 2, { fps: 60 }), /fps must be in \(0, 50\]/);
  throwsDriftlab(() => encodeGif(new Uint8Array(5), 1, 2, 2), /expected 1x2x2 = 4 values, got 5/);
  throwsDriftlab(() => decodeGif(Uint8Array.of(1, 2, 3, 4, 5, 6, 7)), /not a GIF/);
});

test('GIF: ffmpeg decodes our file to the same pixels (independent decoder)', async () => {
  if (!ffmpeg) return; // the MP4 test below reports a missing ffmpeg
  const [T, H, W] = [5, 20, 30];
  const frames = bytesOf(T * H * W, 256, 4);
  const file = path.join(tempDir('driftlab-gif-'), 'x.gif');
  await writeGif(file, frames, T, H, W, { fps: 20 });
  const r = spawnSync(ffmpeg, ['-v', 'error', '-i', file, '-fps_mode', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { maxBuffer: 1 << 24 });
  assert.is(r.status, 0, String(r.stderr));
  const rgb = new Uint8Array(r.stdout);
  assert.is(rgb.length, T * H * W * 3);
  for (let i = 0; i < T * H * W; i++) if (rgb[3 * i] !== frames[i]) assert.unreachable(`pixel ${i}: ffmpeg ${rgb[3 * i]} vs ${frames[i]}`);
});

test('filmstrip: geometry, truth over generated, labels, context marker', async () => {
  const [H, W] = [3, 2];
  const truth = [0, 1].map((c) => Uint8Array.from({ length: 4 * H * W }, (_, i) => 10 + 60 * c + i));
  const gen = [0, 1].map((c) => Float32Array.from({ length: 2 * H * W }, (_, i) => (150 + 40 * c + i) / 255));
  const opts = { truth, generated: gen, H, W, generatedStart: 2, contextFrames: 2, scale: 2, pad: 1 };
  const L = filmstripLayout(opts);
  const s = filmstrip(opts);
  const rowLabelW = textWidth('generated') + 4;
  const band = textHeight() + 3 + 2;
  assert.equal([L.cols, L.cellW, L.cellH, L.rowLabelW, L.labelBandH, L.labelEvery], [4, 4, 6, rowLabelW, band, 2]);
  assert.is(s.width, rowLabelW + 1 + 4 * (4 + 1));
  assert.is(s.height, band + 1 + 2 * 2 * (6 + 1) + 3);
  assert.is(s.channels, 1);
  const at = (x: number, y: number) => s.pixels[y * s.width + x]!;
  for (let c = 0; c < 2; c++) {
    for (let col = 0; col < 4; col++) {
      for (let y = 0; y < H * 2; y++) for (let x = 0; x < W * 2; x++) {
        const src = col * H * W + Math.floor(y / 2) * W + Math.floor(x / 2);
        assert.is(at(L.cellX(col) + x, L.cellY(c, 0) + y), truth[c]![src], `truth clip ${c} frame ${col}`);
        const g = col < 2 ? 128 : 150 + 40 * c + src - 2 * H * W; // generated starts at frame 2
        assert.is(at(L.cellX(col) + x, L.cellY(c, 1) + y), g, `generated clip ${c} frame ${col}`);
      }
    }
  }
  assert.is(L.cellY(1, 0), L.cellY(0, 1) + 6 + 1 + 3); // clips separated by 3*pad
  const y0 = L.cellY(0, 0);
  assert.is(at(L.cellX(2) - 1, y0), 255, 'white marker before the first predicted frame');
  assert.is(at(L.cellX(1) - 1, y0), 128, 'ordinary gap');
  const inkIn = (x0: number, x1: number, ya: number, yb: number) => {
    for (let y = ya; y < yb; y++) for (let x = x0; x < x1; x++) if (at(x, y) === 0) return true;
    return false;
  };
  for (let col = 0; col < 4; col++) {
    assert.is(inkIn(L.cellX(col), L.cellX(col) + 4, 0, band), col % 2 === 0, `frame label over column ${col}`);
  }
  assert.ok(inkIn(0, rowLabelW, y0, y0 + 6), 'truth label');
  assert.ok(inkIn(0, rowLabelW, L.cellY(1, 1), L.cellY(1, 1) + 6), 'generated label');
  const file = path.join(tempDir('driftlab-strip-'), 'strip.png');
  await writeFilmstrip(file, opts);
  const png = decodePng(new Uint8Array(readFileSync(file)));
  assert.equal([png.width, png.height, png.channels], [s.width, s.height, 1]);
  assert.ok(Buffer.from(png.pixels).equals(Buffer.from(s.pixels)));
  throwsDriftlab(() => filmstrip({ generated: [new Float32Array(7)], H, W }), /not a whole number/);
  throwsDriftlab(() => filmstrip({ generated: gen, truth: [truth[0]!], H, W }), /1 truth clips for 2/);
});

test('filmstrip: step shows every k-th frame and labels real indices', () => {
  const L = filmstripLayout({ generated: [new Uint8Array(25 * 4)], H: 2, W: 2, step: 5 });
  assert.is(L.cols, 5);
  assert.equal([0, 1, 4].map(L.frameOf), [0, 5, 20]);
});

test('writeVideo picks the format from the extension', async () => {
  const dir = tempDir('driftlab-video-');
  const frames = bytesOf(3 * 4 * 5, 256, 5);
  await writeVideo(path.join(dir, 'a.gif'), frames, 3, 4, 5, { fps: 5 });
  const d = decodeGif(new Uint8Array(readFileSync(path.join(dir, 'a.gif'))));
  assert.ok(Buffer.from(d.frames).equals(Buffer.from(frames)));
  assert.equal(d.delaysCs, [20, 20, 20]);
  await writeVideo(path.join(dir, 'a.png'), frames, 3, 4, 5, { scale: 2 });
  assert.is(decodePng(new Uint8Array(readFileSync(path.join(dir, 'a.png')))).channels, 1);
  await rejectsDriftlab(writeVideo(path.join(dir, 'a.avi'), frames, 3, 4, 5), /unknown video extension '\.avi'; use \.gif, \.mp4 or \.png/);
  await rejectsDriftlab(writeVideo(path.join(dir, 'no/such/dir/a.gif'), frames, 3, 4, 5), /does not exist/);
  assert.equal(readdirSync(dir).sort(), ['a.gif', 'a.png']);
});

function ffprobeFor(ff: string): string | null {
  const beside = path.join(path.dirname(ff), 'ffprobe' + path.extname(ff));
  if (existsSync(beside)) return beside;
  const r = spawnSync('ffprobe', ['-version']);
  return r.status === 0 ? 'ffprobe' : null;
}

/** [frames, width, height] of a video: ffprobe when available, else ffmpeg's own frame count. */
function probe(ff: string, file: string): [number, number, number] {
  const fp = ffprobeFor(ff);
  if (fp) {
    const r = spawnSync(fp, ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames,width,height', '-of', 'csv=p=0', file]);
    assert.is(r.status, 0, String(r.stderr));
    const [w, h, n] = String(r.stdout).trim().split(',').map(Number);
    return [n!, w!, h!];
  }
  const r = spawnSync(ff, ['-hide_banner', '-i', file, '-map', '0:v:0', '-f', 'null', '-']);
  const err = String(r.stderr);
  const n = Number([...err.matchAll(/frame=\s*(\d+)/g)].pop()?.[1]);
  const m = /, (\d+)x(\d+)/.exec(err);
  return [n, Number(m?.[1]), Number(m?.[2])];
}

test('MP4: 12 frames of 32x32 through ffmpeg; odd sizes padded to even', async () => {
  if (!ffmpeg) {
    if (process.env.DRIFTLAB_ALLOW_NO_FFMPEG === '1') {
      console.log('  (MP4 test skipped: no ffmpeg, DRIFTLAB_ALLOW_NO_FFMPEG=1)');
      return;
    }
    assert.unreachable(
      "no ffmpeg found (ffmpeg-static, FFMPEG_PATH, PATH): CI installs Debian's ffmpeg in .ci/run " +
        '(apt-get install ffmpeg); install it, or set DRIFTLAB_ALLOW_NO_FFMPEG=1 to skip this test',
    );
    return;
  }
  const dir = tempDir('driftlab-mp4-');
  const [T, H, W] = [12, 32, 32];
  const frames = new Float32Array(T * H * W);
  for (let t = 0; t < T; t++) for (let y = 4; y < 12; y++) for (let x = 2 * t; x < 2 * t + 8; x++) frames[t * H * W + y * W + x] = 1;
  const file = path.join(dir, 'clip.mp4');
  await writeVideo(file, frames, T, H, W, { fps: 8 });
  assert.equal(probe(ffmpeg, file), [12, 32, 32]);
  assert.is(Buffer.from(readFileSync(file).subarray(4, 8)).toString('latin1'), 'ftyp');
  // decode back: the square is where we put it (no transposition, nothing lost)
  const r = spawnSync(ffmpeg, ['-v', 'error', '-i', file, '-f', 'rawvideo', '-pix_fmt', 'gray', '-'], { maxBuffer: 1 << 24 });
  const back = new Uint8Array(r.stdout);
  assert.is(back.length, T * H * W);
  let err = 0;
  for (let i = 0; i < back.length; i++) err += Math.abs(back[i]! - Math.round(frames[i]! * 255));
  assert.ok(err / back.length < 6, `mean abs error ${err / back.length}`);
  await writeMp4(path.join(dir, 'odd.mp4'), bytesOf(3 * 31 * 33, 256, 6), 3, 31, 33, { fps: 25 });
  assert.equal(probe(ffmpeg, path.join(dir, 'odd.mp4')), [3, 34, 32]);
  await writeMp4(path.join(dir, 'big.mp4'), new Uint8Array(2 * 5 * 7), 2, 5, 7, { scale: 3 });
  assert.equal(probe(ffmpeg, path.join(dir, 'big.mp4')), [2, 22, 16]);
  if (existsSync('/bin/false')) {
    await rejectsDriftlab(writeMp4(path.join(dir, 'f.mp4'), frames, T, H, W, { ffmpegPath: '/bin/false' }), /exited with code 1/);
  }
  assert.equal(readdirSync(dir).sort(), ['big.mp4', 'clip.mp4', 'odd.mp4'], 'no temp files left behind');
});

test('MP4 without any ffmpeg: findFfmpeg() is null and writeMp4 throws one line', async () => {
  const saved = { FFMPEG_PATH: process.env.FFMPEG_PATH, PATH: process.env.PATH };
  const dir = tempDir('driftlab-noff-');
  let staticInstalled = true;
  try {
    createRequire(import.meta.url).resolve('ffmpeg-static');
  } catch {
    staticInstalled = false;
  }
  try {
    process.env.FFMPEG_PATH = path.join(dir, 'nonexistent-ffmpeg');
    process.env.PATH = '';
    assert.is(findFfmpeg({ ffmpegStatic: false }), null);
    if (!staticInstalled) assert.is(findFfmpeg(), null);
    const file = path.join(dir, 'x.mp4');
    await rejectsDriftlab(writeMp4(file, new Uint8Array(8), 2, 2, 2, { ffmpegStatic: false }), /cannot write .*x\.mp4: no ffmpeg found \(FFMPEG_PATH=.* is not an executable file\); install ffmpeg/);
    assert.not.ok(existsSync(file));
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  assert.is(findFfmpeg({ env: { PATH: '' }, ffmpegStatic: false }), null);
  assert.equal(readdirSync(dir), []);
});

test.run();

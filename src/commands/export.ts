/** driftlab export: a checkpoint as an ONNX graph (opset 17, dynamic batch) with its weights, float32 or int8 (--quantize). */
import type { CommandModule } from 'yargs';
import * as tf from '@tensorflow/tfjs';
import { BackendName, initBackend } from '../backend.js';
import { loadCheckpoint } from '../diffusion/checkpoint.js';
import { UNetModel } from '../diffusion/model.js';
import { ONNX_OPSET, exportOnnx } from '../engine/export.js';
import { OnnxUNet } from '../engine/onnx-engine.js';
import { decodeModel } from '../engine/onnx-proto.js';
import { KEEP_FLOAT, QuantizeMode, calibrate, mnistCalibration, parseQuantizeMode, quantizeOnnxBytes } from '../engine/quantize.js';
import { writeFileNoClobber } from '../io/atomic.js';
import { DriftlabError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import type { ScheduleConfig } from '../diffusion/schedule.js';
import { checkWritable, positiveInt } from './common.js';

export const exportCommand: CommandModule<any, any> = {
  command: 'export',
  describe: 'write a checkpoint as an ONNX model (NHWC x, t[, labels] -> out) for onnxruntime and other runtimes',
  builder: (y) => y
    .option('ckpt', { type: 'string', demandOption: true, describe: 'checkpoint folder' })
    .option('out', { type: 'string', demandOption: true, describe: 'the .onnx file to write' })
    .option('weights', { choices: ['ema', 'model'], default: 'ema', describe: 'which weights of the checkpoint' })
    .option('quantize', { type: 'string', default: 'none', describe: 'int8 weights: none | dynamic (activations quantized per call) | static (Conv activations calibrated on MNIST x_t; fastest)' })
    .option('calib-samples', { type: 'number', default: 512, describe: '--quantize static: noisy MNIST digits x_t (t uniform) to calibrate activation ranges on' })
    .option('keep-float', { type: 'string', default: KEEP_FLOAT.join(','), describe: "--quantize: weights whose name contains one of these (comma-separated) stay float32; '' quantizes all" })
    .option('verify', { type: 'boolean', default: false, describe: 'run the file in onnxruntime-node and compare it with tfjs on a random batch (int8: with the float32 export on noisy MNIST digits)' })
    .option('overwrite', { type: 'boolean', default: false, describe: 'replace an existing file' }),
  handler: async (a) => {
    const quantize = parseQuantizeMode(a.quantize);
    const calibN = positiveInt('calib-samples', a.calibSamples);
    checkWritable(a.out, a.overwrite);
    const ck = await loadCheckpoint(a.ckpt, { ema: a.weights === 'ema' });
    const flat = a.weights === 'ema' && ck.ema ? ck.ema : ck.params;
    const c = ck.config.model;
    const ex = exportOnnx(c, flat, {
      metadata: { 'driftlab.schedule': JSON.stringify(ck.config.schedule), 'driftlab.objective': JSON.stringify(ck.config.objective), 'driftlab.weights': a.weights },
    });
    let bytes = ex.bytes, nodes = ex.nodes, int8 = '';
    if (quantize) {
      const keep = String(a.keepFloat ?? '').split(',').map((k) => k.trim()).filter(Boolean);
      let ranges, calibration;
      if (quantize === 'static') {
        calibration = `min/max over ${calibN} MNIST x_t, t ~ U{0..T-1}, seed ${a.seed}`;
        ranges = await calibrate(decodeModel(ex.bytes), mnistCalibration(c, ck.config.schedule, calibN, 64, a.seed), c);
      }
      const q = quantizeOnnxBytes(ex.bytes, quantize, { exclude: keep, ranges, calibration }, `the export of ${a.ckpt}`);
      bytes = q.bytes;
      nodes = decodeModel(bytes).graph.nodes.length;
      const r = q.report;
      int8 = `, int8 ${quantize}: ${r.counts.Conv} Conv + ${r.counts.MatMul + r.counts.Gemm} MatMul weights (${r.kept.length ? `float32 kept: ${r.kept.join(', ')}` : 'none kept float32'})`
        + `${calibration ? `, Conv activations calibrated on ${calibN} noisy MNIST digits` : ''}; float32 would be ${(ex.bytes.length / 1e6).toFixed(1)} MB`;
    }
    await writeFileNoClobber(a.out, bytes, { overwrite: a.overwrite });
    const S = c.sampleSize;
    const io = `x [batch,${S},${S},${c.inChannels}], t [batch]${c.numClasses > 0 ? ', labels [batch] int64' : ''} -> out [batch,${S},${S},${c.outChannels}]`;
    process.stdout.write(`${a.out}: ${(bytes.length / 1e6).toFixed(1)} MB, ${nodes} nodes, opset ${ONNX_OPSET}, ${io} (${a.weights} weights of ${a.ckpt})${int8}\n`);
    if (a.verify && quantize) await verifyInt8(a.out, ex.bytes, c, ck.config.schedule, quantize, a.seed);
    else if (a.verify) await verify(a.out, c, flat, a.backend as BackendName, a.seed);
  },
};

/**
 * int8 against the float32 export, both in onnxruntime, on what sampling feeds the network (noisy
 * MNIST digits; random normals for non-MNIST shapes). Fails when the RMS difference exceeds 10% of
 * the float output's RMS: int8 rounding costs ~1.5% on the shipped checkpoints, a wrong scale or
 * layout costs ~100%.
 */
async function verifyInt8(file: string, floatBytes: Uint8Array, c: UNetModel['config'], schedule: ScheduleConfig, mode: QuantizeMode, seed: number): Promise<void> {
  const B = 64, S = c.sampleSize;
  const mnist = S === 28 && c.inChannels === 1;
  const rng = new Rng(seed).fork('export-verify-int8');
  const batch = mnist ? mnistCalibration(c, schedule, B, B, seed + 1)[0] : { x: rng.normals(B * S * S * c.inChannels), t: Float32Array.from({ length: B }, () => rng.int(schedule.timesteps)), labels: undefined };
  const labels = batch.labels ?? (c.numClasses > 0 ? Int32Array.from({ length: B }, (_, i) => i % (c.numClasses + 1)) : undefined);
  const f32 = await OnnxUNet.create(floatBytes, c, {});
  const q = await OnnxUNet.create(file, c, {}).catch(async (e) => { await f32.release(); throw e; });
  try {
    process.stdout.write(`${q.int8Line}\n`); // before the verdict: it says why a failure may be the CPU's
    const ref = await f32.run(batch.x, B, batch.t, labels), got = await q.run(batch.x, B, batch.t, labels);
    let max = 0, sum = 0, se = 0, ref2 = 0;
    for (let i = 0; i < ref.length; i++) {
      const d = Math.abs(ref[i] - got[i]);
      max = Math.max(max, d); sum += d; se += d * d; ref2 += ref[i] * ref[i];
    }
    const rel = Math.sqrt(se / ref2);
    const what = `max |int8 - float32| = ${max.toFixed(4)}, mean ${(sum / ref.length).toFixed(4)}, rms ${(100 * rel).toFixed(1)}% of the output's on ${B} ${mnist ? 'noisy MNIST digits' : 'random inputs'}`;
    if (!(rel < 0.1)) throw new DriftlabError(`verification failed: ${what} (tolerance 10%); try --quantize dynamic or keep more layers float32 with --keep-float`);
    process.stdout.write(`verified (${mode}): ${what}\n`);
  } finally {
    await f32.release();
    await q.release();
  }
}

/** max |onnx - tfjs| on 4 random inputs; fails above 1e-4 */
async function verify(file: string, c: UNetModel['config'], flat: Float32Array, backend: BackendName, seed: number): Promise<void> {
  const info = await initBackend(backend, { quiet: true });
  const unet = await OnnxUNet.create(file, c, {});
  const model = new UNetModel(c, 0);
  try {
    model.setFlat(flat);
    const rng = new Rng(seed).fork('export-verify');
    const B = 4, S = c.sampleSize;
    const x = rng.normals(B * S * S * c.inChannels);
    const t = Float32Array.from({ length: B }, () => rng.int(1000));
    const labels = c.numClasses > 0 ? Int32Array.from({ length: B }, (_, i) => i % (c.numClasses + 1)) : undefined;
    const ref = tf.tidy(() => model.forward(tf.tensor4d(x, [B, S, S, c.inChannels]), tf.tensor1d(t), labels && tf.tensor1d(labels, 'int32')).dataSync());
    const got = await unet.run(x, B, t, labels);
    let d = 0;
    for (let i = 0; i < ref.length; i++) d = Math.max(d, Math.abs(ref[i] - got[i]));
    if (!(d < 1e-4)) throw new DriftlabError(`verification failed: max |onnx - tfjs| = ${d.toExponential(2)} on a random batch (tolerance 1e-4)`);
    process.stdout.write(`verified: max |onnx - tfjs ${info.backend}| = ${d.toExponential(2)} on a random batch of ${B} (${unet.line.replace(/ \(.*/, '')})\n`);
  } finally {
    model.dispose();
    await unet.release();
  }
}

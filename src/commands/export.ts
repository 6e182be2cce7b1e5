/** driftlab export: a checkpoint as an ONNX graph (opset 17, dynamic batch) with its weights. */
import type { CommandModule } from 'yargs';
import * as tf from '@tensorflow/tfjs';
import { BackendName, initBackend } from '../backend.js';
import { loadCheckpoint } from '../diffusion/checkpoint.js';
import { UNetModel } from '../diffusion/model.js';
import { ONNX_OPSET, exportOnnx } from '../engine/export.js';
import { OnnxUNet } from '../engine/onnx-engine.js';
import { writeFileNoClobber } from '../io/atomic.js';
import { DriftlabError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { checkWritable } from './common.js';

export const exportCommand: CommandModule<any, any> = {
  command: 'export',
  describe: 'write a checkpoint as an ONNX model (NHWC x, t[, labels] -> out) for onnxruntime and other runtimes',
  builder: (y) => y
    .option('ckpt', { type: 'string', demandOption: true, describe: 'checkpoint folder' })
    .option('out', { type: 'string', demandOption: true, describe: 'the .onnx file to write' })
    .option('weights', { choices: ['ema', 'model'], default: 'ema', describe: 'which weights of the checkpoint' })
    .option('verify', { type: 'boolean', default: false, describe: 'run the file in onnxruntime-node and compare it with tfjs on a random batch' })
    .option('overwrite', { type: 'boolean', default: false, describe: 'replace an existing file' }),
  handler: async (a) => {
    checkWritable(a.out, a.overwrite);
    const ck = await loadCheckpoint(a.ckpt, { ema: a.weights === 'ema' });
    const flat = a.weights === 'ema' && ck.ema ? ck.ema : ck.params;
    const c = ck.config.model;
    const ex = exportOnnx(c, flat, {
      metadata: { 'driftlab.schedule': JSON.stringify(ck.config.schedule), 'driftlab.objective': JSON.stringify(ck.config.objective), 'driftlab.weights': a.weights },
    });
    await writeFileNoClobber(a.out, ex.bytes, { overwrite: a.overwrite });
    const S = c.sampleSize;
    const io = `x [batch,${S},${S},${c.inChannels}], t [batch]${c.numClasses > 0 ? ', labels [batch] int64' : ''} -> out [batch,${S},${S},${c.outChannels}]`;
    process.stdout.write(`${a.out}: ${(ex.bytes.length / 1e6).toFixed(1)} MB, ${ex.nodes} nodes, opset ${ONNX_OPSET}, ${io} (${a.weights} weights of ${a.ckpt})\n`);
    if (a.verify) await verify(a.out, c, flat, a.backend as BackendName, a.seed);
  },
};

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

/**
 * ONNX export: the protobuf writer/reader, the graph built from the model's own forward pass
 * (run through onnxruntime-node and compared with tfjs), dynamic batch, and clean refusals.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SPEC_UNET, type UNetConfig } from '../../src/diffusion/config.js';
import { getPreset } from '../../src/diffusion/presets.js';
import { unetApply, unetParamSpecs } from '../../src/diffusion/unet.js';
import { exportOnnx } from '../../src/engine/export.js';
import { OnnxUNet } from '../../src/engine/onnx-engine.js';
import { GVal, OnnxGraphBuilder, permuteData } from '../../src/engine/onnx-ops.js';
import { AttrType, DataType, ModelProto, decodeModel, encodeModel, readModel } from '../../src/engine/onnx-proto.js';
import { Rng } from '../../src/util/rng.js';
import { ensureWasm, maxAbsDiff, throwsDriftlab } from '../helpers/backend.js';
import { maxAbs, once, randomParams, requireOrt, tfjsForward } from './helpers.js';

const TINY = getPreset('mnist-tiny').model; // conditional, attention at 14x14 and in the middle
const SMALL = getPreset('mnist-small').model; // SPEC_UNET + 10 classes
const TINY_HEADS = { ...TINY, blockOutChannels: [8, 16], attentionHeads: 2 }; // multi-head path

const ready = once(async () => {
  await ensureWasm();
  await requireOrt();
});

test('onnxruntime-node loads (CI installs it; without it these tests fail)', async () => {
  await ready();
});

test('protobuf: a model with every field kind survives encode -> decode', () => {
  const m: ModelProto = {
    irVersion: 8, opsetImports: [{ domain: '', version: 17 }], producerName: 'driftlab', producerVersion: '0.1.0', docString: 'doc ✓',
    metadata: { a: '1', 'driftlab.model': '{"x":[1,2]}' },
    graph: {
      name: 'g',
      nodes: [
        { name: 'n0', opType: 'Softmax', domain: '', inputs: ['x'], outputs: ['y'], attributes: [{ name: 'axis', type: AttrType.INT, i: -1 }] },
        { name: 'n1', opType: 'Resize', domain: '', inputs: ['y', '', 's'], outputs: ['z'], attributes: [
          { name: 'mode', type: AttrType.STRING, s: 'nearest' }, { name: 'pads', type: AttrType.INTS, ints: [0, -3, 2 ** 40] },
          { name: 'epsilon', type: AttrType.FLOAT, f: 0.25 }, { name: 'fs', type: AttrType.FLOATS, floats: [1.5, -2] },
        ] },
      ],
      initializers: [{ name: 's', dims: [2, 2], dataType: DataType.FLOAT, rawData: new Uint8Array(16).fill(7) }],
      inputs: [{ name: 'x', elemType: DataType.FLOAT, dims: ['batch', 28, 28, 1] }],
      outputs: [{ name: 'z', elemType: DataType.FLOAT, dims: ['batch', 56, 56, 1] }],
    },
  };
  const back = decodeModel(encodeModel(m));
  assert.equal(back, m);
});

test('protobuf writer (protobufjs): the wire bytes of a small model, worked out by hand from the protobuf encoding rules', () => {
  const m: ModelProto = {
    irVersion: 8, opsetImports: [{ domain: '', version: 17 }], producerName: 'p', producerVersion: '', docString: '', metadata: {},
    graph: { name: 'g', nodes: [{ name: '', opType: 'Neg', domain: '', inputs: ['x'], outputs: ['y'], attributes: [{ name: 'a', type: AttrType.INT, i: -1 }] }], initializers: [], inputs: [], outputs: [] },
  };
  // AttributeProto: name=1 "a", i=3 varint -1 (10-byte two's complement), type=20 (key 160 = a0 01) varint 2
  const attr = [0x0a, 1, 0x61, 0x18, ...Array(9).fill(0xff), 0x01, 0xa0, 0x01, 0x02];
  // NodeProto: input=1 "x", output=2 "y", name=3 "", op_type=4 "Neg", attribute=5 (length-delimited); empty domain omitted
  const node = [0x0a, 1, 0x78, 0x12, 1, 0x79, 0x1a, 0, 0x22, 3, 0x4e, 0x65, 0x67, 0x2a, attr.length, ...attr];
  const graph = [0x0a, node.length, ...node, 0x12, 1, 0x67];
  // ModelProto: ir_version=1, producer_name=2, producer_version=3, graph=7, opset_import=8 {domain="", version=17}; empty doc_string omitted
  const want = [0x08, 8, 0x12, 1, 0x70, 0x1a, 0, 0x3a, graph.length, ...graph, 0x42, 4, 0x0a, 0, 0x10, 17];
  assert.equal([...encodeModel(m)], want);
});

test('protobuf reader: truncated, foreign and inconsistent files give one DriftlabError line', () => {
  const good = exportOnnx(TINY, randomParams(TINY, 1)).bytes;
  assert.ok(readModel(good, 'tiny.onnx').graph.nodes.length > 100);
  throwsDriftlab(() => readModel(good.subarray(0, good.length - 1000), 'cut.onnx'), /^cut\.onnx is not a valid ONNX model \(.*bytes.*\); re-create it/);
  throwsDriftlab(() => readModel(new TextEncoder().encode('{"not": "onnx"}'), 'json.onnx'), /json\.onnx is not a valid ONNX model/);
  throwsDriftlab(() => readModel(new Uint8Array(0), 'empty.onnx'), /empty\.onnx is not a valid ONNX model \(no graph\)/);
  const m = decodeModel(good);
  m.graph.initializers[0].rawData = m.graph.initializers[0].rawData.subarray(4);
  throwsDriftlab(() => readModel(encodeModel(m), 'short.onnx'), /short\.onnx is not a usable ONNX model \(initializer .* bytes of data for dims/);
});

test('permuteData reorders like a transpose', () => {
  const d = Float32Array.from({ length: 24 }, (_, i) => i); // [2,3,4]
  const p = permuteData(d, [2, 3, 4], [2, 0, 1]); // -> [4,2,3]
  for (let a = 0; a < 2; a++) for (let b = 0; b < 3; b++) for (let c = 0; c < 4; c++) assert.is(p[(c * 2 + a) * 3 + b], d[(a * 3 + b) * 4 + c]);
});

async function compare(cfg: UNetConfig, seed: number, B: number, label: string): Promise<void> {
  await ready();
  const vals = randomParams(cfg, seed);
  const unet = await OnnxUNet.create(exportOnnx(cfg, vals).bytes, cfg, { threads: 1 });
  try {
    const rng = new Rng(seed);
    const S = cfg.sampleSize;
    const x = rng.normals(B * S * S * cfg.inChannels);
    const t = Float32Array.from({ length: B }, (_, i) => (i === 0 ? 999 : i === 1 ? 0 : rng.uniform() * 1000)); // ends and fractions
    const labels = cfg.numClasses > 0 ? Int32Array.from({ length: B }, (_, i) => (i === 0 ? cfg.numClasses : rng.int(cfg.numClasses))) : undefined;
    const ref = tfjsForward(cfg, vals, x, t, labels);
    const got = await unet.run(x, B, t, labels);
    assert.ok(maxAbs(ref) > 0.1, `${label}: output not trivially small (${maxAbs(ref)})`);
    const d = maxAbsDiff(got, ref);
    assert.ok(d < 1e-4, `${label}: max |onnx - tfjs| = ${d}`);
  } finally {
    await unet.release();
  }
}

test('onnxruntime output = tfjs output: mnist-tiny (conditional, null class in the batch), random params', async () => {
  await compare(TINY, 3, 3, 'mnist-tiny');
});

test('onnxruntime output = tfjs output: SPEC_UNET (unconditional) and mnist-small (conditional)', async () => {
  await compare(SPEC_UNET, 4, 2, 'SPEC_UNET');
  await compare(SMALL, 5, 2, 'mnist-small');
});

test('onnxruntime output = tfjs output: multi-head attention', async () => {
  await compare(TINY_HEADS, 6, 2, 'tiny, 2 heads');
});

test('one graph, any batch size; absent labels mean the null class', async () => {
  await ready();
  const vals = randomParams(TINY, 7);
  const unet = await OnnxUNet.create(exportOnnx(TINY, vals).bytes, TINY, { threads: 1 });
  try {
    for (const B of [1, 5]) {
      const x = new Rng(B).normals(B * 784), t = new Float32Array(B).fill(250);
      const d = maxAbsDiff(await unet.run(x, B, t), tfjsForward(TINY, vals, x, t, new Int32Array(B).fill(10)));
      assert.ok(d < 1e-4, `B=${B}: ${d}`);
    }
  } finally {
    await unet.release();
  }
});

test('the file describes itself: inputs, output, dynamic batch, opset 17, config in metadata, weights as initializers', () => {
  const vals = randomParams(SMALL, 8);
  const m = decodeModel(exportOnnx(SMALL, vals).bytes);
  assert.equal(m.opsetImports, [{ domain: '', version: 17 }]);
  assert.equal(m.graph.inputs.map((i) => [i.name, i.elemType, i.dims]), [
    ['x', DataType.FLOAT, ['batch', 28, 28, 1]], ['t', DataType.FLOAT, ['batch']], ['labels', DataType.INT64, ['batch']],
  ]);
  assert.equal(m.graph.outputs.map((o) => [o.name, o.dims]), [['out', ['batch', 28, 28, 1]]]);
  assert.equal(JSON.parse(m.metadata['driftlab.model']), SMALL);
  // every parameter is in the file under its own name (conv weights as OIHW), holding its values
  const inits = new Map(m.graph.initializers.map((t) => [t.name, t]));
  for (const s of unetParamSpecs(SMALL)) assert.ok(inits.has(s.name), `initializer ${s.name}`);
  const w = inits.get('conv_in.weight')!;
  assert.equal(w.dims, [32, 1, 3, 3]);
  const src = vals.get('conv_in.weight')!; // [3,3,1,32]
  const onnxW = new DataView(w.rawData.buffer, w.rawData.byteOffset);
  for (const [o, ky, kx] of [[5, 1, 2], [31, 2, 0], [0, 0, 1]]) {
    assert.is(onnxW.getFloat32((((o * 1 + 0) * 3 + ky) * 3 + kx) * 4, true), src[((ky * 3 + kx) * 1 + 0) * 32 + o], `conv_in o=${o} ky=${ky} kx=${kx}`);
  }
  const nodes = m.graph.nodes.map((n) => n.opType);
  assert.is(nodes.filter((o) => o === 'Conv').length, 26);
  assert.ok(nodes.filter((o) => o === 'Transpose').length < 60, 'layout tracking keeps Transposes few');
});

test('ops the exporter cannot express are refused with one line naming the op', () => {
  const g = new OnnxGraphBuilder();
  const x = g.input('x', [-1, 28, 28, 1]);
  const table = g.param('table', [11, 4], new Float32Array(44));
  throwsDriftlab(() => g.embedding(table, undefined, 2), /^cannot export to ONNX: op 'embedding' without a labels input/);
  const w = g.param('w', [2, 2, 1, 4], new Float32Array(16)), b = g.param('b', [4], new Float32Array(4));
  throwsDriftlab(() => g.conv2d(x, w, b, 1, 0.5), /^cannot export to ONNX: op 'conv2d' with stride 1 and padding 0.5/);
  throwsDriftlab(() => g.reshape(x, [-1, -1, 28]), /^cannot export to ONNX: op 'reshape' with more than one inferred dimension/);
  throwsDriftlab(() => g.reshape(x, [28, 28]), /^cannot export to ONNX: op 'reshape' of \[-1,28,28,1\] to \[28,28\]/);
  // and through the model's own forward: a conditional U-Net traced without its labels input
  const P = new Map<string, GVal>(unetParamSpecs(TINY).map((s) => [s.name, g.param(s.name, s.shape, new Float32Array(s.shape.reduce((a, c) => a * c, 1)))]));
  throwsDriftlab(() => unetApply(g, P, TINY, x, g.input('t', [-1])), /^cannot export to ONNX: op 'embedding'/);
  throwsDriftlab(() => exportOnnx(TINY, new Float32Array(10)), /^cannot export: 10 parameter values, the config implies \d+/);
});

test.run();

/** driftlab serve: an HTTP endpoint that samples digits from a checkpoint. */
import type { CommandModule } from 'yargs';
import { initBackend, BackendName } from '../backend.js';
import { loadPipeline } from '../diffusion/pipeline.js';
import { ENGINE_CHOICES } from '../engine/select.js';
import { createServer } from '../serve/server.js';
import { DriftlabError } from '../util/errors.js';
import { positiveInt } from './common.js';
import { DEFAULT_IMAGE_CKPT } from './quickstart.js';

export const serveCommand: CommandModule<any, any> = {
  command: 'serve',
  describe: 'serve POST /generate (PNG grid or .npy) and GET /healthz on 127.0.0.1',
  builder: (y) => y
    .option('ckpt', { type: 'string', default: DEFAULT_IMAGE_CKPT, describe: 'checkpoint folder' })
    .option('port', { type: 'number', default: 8080 })
    .option('host', { type: 'string', default: '127.0.0.1', describe: 'bind address (loopback by default)' })
    .option('max-n', { type: 'number', default: 64, describe: 'largest n one request may ask for' })
    .option('queue', { type: 'number', default: 8, describe: 'requests that may wait; more get 503' })
    .option('quiet', { type: 'boolean', default: false, describe: 'no per-request log lines' })
    .option('engine', { choices: ENGINE_CHOICES, default: 'auto', describe: 'forward engine' })
    .option('threads', { type: 'number', describe: 'onnx intra-op threads (default: all cores)' })
    .option('onnx', { type: 'string', describe: "serve this file from 'driftlab export' (made from --ckpt, float32 or int8) instead of exporting in memory" }),
  handler: async (a) => {
    const port = Number(a.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new DriftlabError(`--port must be an integer in 0..65535, got ${a.port}`);
    const info = await initBackend(a.backend as BackendName);
    const p = await loadPipeline(a.ckpt, 'ema', { engine: a.engine, threads: a.threads, onnxFile: a.onnx });
    const log = (l: string) => { if (!a.quiet) process.stderr.write(`${new Date().toISOString()} ${l}\n`); };
    const server = createServer(p, { maxN: positiveInt('max-n', a.maxN), queue: Math.max(0, Math.floor(a.queue)), maxBodyBytes: 64 * 1024 }, log);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => reject(e.code === 'EADDRINUSE'
        ? new DriftlabError(`port ${port} on ${a.host} is already in use; pick another with --port`)
        : new DriftlabError(`cannot listen on ${a.host}:${port}: ${e.message}`)));
      server.listen(port, a.host, () => resolve());
    });
    const addr = server.address();
    const actual = typeof addr === 'object' && addr ? addr.port : port;
    if (p.engine.int8Line) process.stdout.write(`driftlab serve: ${p.engine.int8Line}\n`);
    process.stdout.write(`driftlab serve: http://${a.host}:${actual} (POST /generate, GET /healthz) on ${p.engine.name === 'onnx' ? 'onnxruntime' : info.backend}\n`);
    const shutdown = (sig: string) => {
      process.stderr.write(`driftlab serve: ${sig}, finishing in-flight requests\n`);
      server.close(() => { p.dispose(); process.exit(0); });
      server.closeIdleConnections?.();
      setTimeout(() => process.exit(0), 30_000).unref();
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  },
};

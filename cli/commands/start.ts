import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderPrompt, startGeneratorServer } from '../../eval/generator-server.js';
import { SHAPES_CHECKPOINT } from '../../eval/run.js';
import { buildIndex } from '../../indexer/build.js';
import { publish, wranglerTarget } from '../../indexer/publish.js';
import { convertCheckpoint } from '../../models/convert.js';
import { parse, positiveInt, type Command, type Io } from '../args.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const EXAMPLES = join(ROOT, 'examples');

export const start: Command = {
  name: 'start',
  summary: 'the demo: build the embedded shapes-world default and serve it with wrangler dev',
  usage: `nameonly start [--model <checkpoint-dir>] [--classes names.txt] [--port 8787] [--work .nameonly/default] [--check]
   (also: npm start)

With no arguments: converts the embedded shapes-clip (a small CLIP trained on a synthetic world
of coloured shapes — it knows nothing else), builds an index "shapes" of the eight shape names
with 16 support images per class generated from the names, publishes both to wrangler dev's local
R2, starts the Worker (wrangler dev, PUBLIC=true) and checks it with one request.
--model points it at a real HF CLIP checkpoint folder (with --classes; no generated support set).
--check stops after that first request (for tests).`,
  async run(argv, io) {
    const { values } = parse(argv, { model: { type: 'string' }, classes: { type: 'string' }, work: { type: 'string' }, port: { type: 'string' }, check: { type: 'boolean' } });
    const work = values.work ?? join('.nameonly', 'default');
    const checkpoint = values.model ?? SHAPES_CHECKPOINT;
    const isDefault = !values.model;
    io.err(isDefault ? 'model: shapes-clip (embedded default) — a small CLIP trained on a synthetic world of coloured shapes: it knows circle, square, triangle, star, cross, ring, heart, diamond in eight colours, nothing else.' : `model: ${checkpoint}`);
    const modelDir = join(work, 'model');
    convertCheckpoint(checkpoint, modelDir, io.err);
    const generator = isDefault ? await startGeneratorServer() : undefined;
    const indexDir = join(work, 'index');
    try {
      await buildIndex({
        classes: values.classes ?? join(EXAMPLES, 'shapes.txt'),
        model: modelDir,
        out: indexDir,
        name: 'shapes',
        templates: isDefault ? join(EXAMPLES, 'shapes-templates.txt') : undefined,
        generator: generator?.url,
        shots: 16,
        dedup: 0.95,
        susPrompts: 'photo',
        batch: 32,
        device: 'cpu',
        cacheDir: join(work, 'cache'),
        maxTuneQueries: 1024,
        log: io.err,
      });
    } finally {
      generator?.server.close();
    }
    const sample = join(work, 'sample.png');
    writeFileSync(sample, renderPrompt('A photo of a large red star.', 7, 64));
    const state = join(work, 'wrangler-state');
    io.err('publishing to the local R2 of wrangler dev...');
    await publish(indexDir, modelDir, wranglerTarget('nameonly', true, state), io.err);
    const port = positiveInt(values.port, '--port', 8787);
    const server = await serve(port, state, io);
    const url = `http://127.0.0.1:${port}`;
    try {
      const answer = await fetch(`${url}/v1/classify?top_k=3`, { method: 'POST', body: readFileSync(sample), headers: { 'content-type': 'image/png' } });
      const body = (await answer.json()) as { labels?: { label: string; score: number }[]; error?: { message: string } };
      if (!answer.ok || !body.labels) throw new Error(`the Worker answered ${answer.status}: ${body.error?.message}`);
      io.out(`
nameonly is serving the ${isDefault ? 'shapes-world default' : checkpoint} at ${url}  (page: ${url}/)
${isDefault ? 'The default model knows only a synthetic world of coloured shapes (circle, square, triangle, star,\ncross, ring, heart, diamond in eight colours); point it at a real CLIP with --model <checkpoint-dir>.\n' : ''}
  curl -s -X POST --data-binary @${sample} -H 'content-type: image/png' '${url}/v1/classify?top_k=3'
  -> ${body.labels.map((l) => `${l.label} ${(100 * l.score).toFixed(0)}%`).join(', ')}
  curl -s -X POST --data-binary @${sample} -H 'content-type: image/png' '${url}/v1/segment?format=json'
  curl -s ${url}/v1/health
${values.check ? '' : '\nCtrl-C stops it.'}`);
      if (!values.check) await new Promise<void>((resolve) => server.on('exit', () => resolve()));
      return 0;
    } finally {
      if (server.exitCode === null) server.kill('SIGTERM');
    }
  },
};

/** `wrangler dev` on the local R2 the index was published to; resolves once /v1/health answers. */
async function serve(port: number, persistTo: string, io: Io): Promise<ChildProcess> {
  // wrangler needs Node 22: the project's own (npm package "node"), whatever runs this command.
  const local = join(ROOT, 'node_modules/.bin/node');
  const node = existsSync(local) ? local : process.execPath;
  const args = [join(ROOT, 'node_modules/wrangler/bin/wrangler.js'), 'dev', '--local', '--ip', '127.0.0.1', '--port', String(port), '--persist-to', persistTo, '--var', 'PUBLIC:true', '--show-interactive-dev-session=false', '--log-level', 'warn'];
  io.err(`starting wrangler dev on port ${port}...`);
  const child = spawn(node, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  process.once('SIGINT', () => child.kill('SIGINT'));
  for (let i = 0; i < 240; i++) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited: ${stderr.trim().split('\n').slice(-5).join(' ')}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/v1/health`)).ok) return child;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  child.kill('SIGTERM');
  throw new Error(`wrangler dev did not answer on port ${port} within 2 minutes`);
}

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { basename, join, resolve } from 'node:path';
import { renderPrompt, startGeneratorServer } from '../../eval/generator-server.js';
import { SHAPES_CHECKPOINT } from '../../eval/run.js';
import { buildIndex } from '../../indexer/build.js';
import { publish, wranglerTarget } from '../../indexer/publish.js';
import { convertCheckpoint } from '../../models/convert.js';
import { parse, positiveInt, UsageError, type Command, type Io } from '../args.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const EXAMPLES = join(ROOT, 'examples');

export const start: Command = {
  name: 'start',
  summary: 'the demo: build the embedded shapes-world default and serve it with wrangler dev',
  usage: `nameonly start [--model <checkpoint-dir> --classes names.txt [--example image]] [--port 8787]
              [--work <dir>] [--check]
   (also: npm start)

With no arguments: converts the embedded shapes-clip (a small CLIP trained on a synthetic world
of coloured shapes — it knows nothing else), builds an index "shapes" of the eight shape names and a background class
with 16 support images per class generated from the names, publishes both to wrangler dev's local
R2, starts the Worker (wrangler dev, PUBLIC=true) and checks it with one request.
--model points it at a real HF CLIP checkpoint folder (with --classes; no generated support set;
the index is named after the class file, the work folder after the model: .nameonly/<model>);
--example is an image of yours to check it with. --check stops after that first request (tests).`,
  async run(argv, io) {
    const { values } = parse(argv, { model: { type: 'string' }, classes: { type: 'string' }, example: { type: 'string' }, work: { type: 'string' }, port: { type: 'string' }, check: { type: 'boolean' } });
    const isDefault = !values.model;
    if (!isDefault && !values.classes) throw new UsageError('--model needs --classes names.txt (the default model comes with its own eight shapes)');
    if (isDefault && values.classes) throw new UsageError('--classes goes with --model <checkpoint-dir>; build your own index of the default model with nameonly index --classes');
    if (values.example && !existsSync(values.example)) throw new UsageError(`--example ${values.example} does not exist`);
    const port = positiveInt(values.port, '--port', 8787);
    await ensurePortFree(port); // before minutes of building: another server must not answer for us
    const checkpoint = values.model ?? SHAPES_CHECKPOINT;
    const modelName = basename(resolve(checkpoint));
    // One work folder per model: serving another model never overwrites the demo's.
    const work = values.work ?? join('.nameonly', isDefault ? 'default' : modelName);
    const indexName = isDefault ? 'shapes' : basename(values.classes!).replace(/\.[^.]*$/, '');
    io.err(isDefault ? 'model: shapes-clip (embedded default) — a small CLIP trained on a synthetic world of coloured shapes: it knows circle, square, triangle, star, cross, ring, heart, diamond in eight colours, nothing else.' : `model: ${modelName} (${checkpoint}); index "${indexName}" from ${values.classes}`);
    const modelDir = join(work, 'model');
    convertCheckpoint(checkpoint, modelDir, io.err);
    const generator = isDefault ? await startGeneratorServer() : undefined;
    const indexDir = join(work, 'index');
    try {
      await buildIndex({
        classes: values.classes ?? join(EXAMPLES, 'shapes-segmentation.txt'), // the eight shapes and a background class
        model: modelDir,
        out: indexDir,
        name: indexName,
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
    // The default's own world has an example; another model is checked with the user's image, if any.
    let sample = values.example;
    if (isDefault) {
      sample = join(work, 'sample.png');
      writeFileSync(sample, renderPrompt('A photo of a large red star.', 7, 64));
    }
    const state = join(work, 'wrangler-state');
    io.err('publishing to the local R2 of wrangler dev...');
    await publish(indexDir, modelDir, wranglerTarget('nameonly', true, state), io.err);
    const server = await serve(port, state, indexName, io);
    const url = `http://127.0.0.1:${port}`;
    try {
      let example = `  curl -s -X POST --data-binary @<your image> -H 'content-type: image/jpeg' '${url}/v1/classify?top_k=3'`;
      if (sample) {
        const type = sample.endsWith('.png') ? 'image/png' : 'image/jpeg';
        const ask = async (query: string) => {
          const answer = await fetch(`${url}/v1/classify?${query}`, { method: 'POST', body: readFileSync(sample!), headers: { 'content-type': type } });
          const body = (await answer.json()) as { labels?: { label: string; score: number }[]; error?: { message: string } };
          if (!answer.ok || !body.labels) throw new Error(`the Worker answered ${answer.status}: ${body.error?.message}`);
          return `  curl -s -X POST --data-binary @${sample} -H 'content-type: ${type}' '${url}/v1/classify?${query}'
  -> ${body.labels.map((l) => `${l.label} ${(100 * l.score).toFixed(0)}%`).join(', ')}`;
        };
        // Labels given with the request go through the text Worker: checked here too.
        example = `${await ask('top_k=3')}
${await ask(isDefault ? 'labels=star,circle,heart&top_k=3' : 'labels=a%20photo,a%20drawing&top_k=2')}
  curl -s -X POST --data-binary @${sample} -H 'content-type: ${type}' '${url}/v1/segment?format=json'`;
      }
      io.out(`
nameonly is serving ${isDefault ? 'the shapes-world default' : `${modelName} with index "${indexName}"`} at ${url}  (page: ${url}/)
${isDefault ? 'The default model knows only a synthetic world of coloured shapes (circle, square, triangle, star,\ncross, ring, heart, diamond in eight colours); point it at a real CLIP with --model <checkpoint-dir>.\n' : ''}
${example}
  curl -s ${url}/v1/health
${values.check ? '' : '\nCtrl-C stops it.'}`);
      if (!values.check) await new Promise<void>((resolve) => server.on('exit', () => resolve()));
      return 0;
    } finally {
      if (server.exitCode === null) server.kill('SIGTERM');
    }
  },
};

/** Fails at once, naming the port, when another program listens on it. */
async function ensurePortFree(port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (e: NodeJS.ErrnoException) => reject(e.code === 'EADDRINUSE' ? new Error(`port ${port} is already in use by another program: stop it, or pass --port <a free port>`) : e));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
  });
}

/**
 * `wrangler dev` on the local R2 the index was published to. Resolves once /v1/health says the
 * model and index are served; fails at once when wrangler exits or the Worker refuses them.
 */
async function serve(port: number, persistTo: string, defaultIndex: string, io: Io): Promise<ChildProcess> {
  // wrangler needs Node 22: the project's own (npm package "node"), whatever runs this command.
  const local = join(ROOT, 'node_modules/.bin/node');
  const node = existsSync(local) ? local : process.execPath;
  // Both Workers, as `npm run dev`: the text Worker answers labels= through the service binding.
  const args = [join(ROOT, 'node_modules/wrangler/bin/wrangler.js'), 'dev', '-c', 'wrangler.toml', '-c', 'wrangler.text.toml', '--local', '--ip', '127.0.0.1', '--port', String(port), '--persist-to', resolve(persistTo), '--var', 'PUBLIC:true', '--var', `DEFAULT_INDEX:${defaultIndex}`, '--show-interactive-dev-session=false', '--log-level', 'warn'];
  io.err(`starting wrangler dev on port ${port}...`);
  const child = spawn(node, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  process.once('SIGINT', () => child.kill('SIGINT'));
  for (let i = 0; i < 240; i++) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited: ${stderr.trim().split('\n').slice(-5).join(' ')}`);
    let health: Response | undefined;
    try {
      health = await fetch(`http://127.0.0.1:${port}/v1/health`);
    } catch {
      // not listening yet
    }
    if (health?.ok) return child;
    if (health) {
      const reason = ((await health.json().catch(() => ({}))) as { reason?: string }).reason;
      child.kill('SIGTERM');
      throw new Error(`the Worker started but cannot serve: ${reason ?? `health answered ${health.status}`}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  child.kill('SIGTERM');
  throw new Error(`wrangler dev did not answer on port ${port} within 2 minutes`);
}

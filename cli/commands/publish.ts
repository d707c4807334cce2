import { publish, wranglerTarget } from '../../indexer/publish.js';
import { parse, UsageError, type Command } from '../args.js';
import { indexAndModel } from '../offline.js';

export const publishCommand: Command = {
  name: 'publish',
  summary: 'upload a model and an index to R2 (versioned prefix, then the current pointer)',
  usage: `nameonly publish <index-dir> [--model <model-dir>] [--bucket nameonly] [--local] [--persist-to <dir>]

Uploads the uint8 image encoder and model.json, then the index blobs and manifest under
indexes/<name>/<version>/, and last moves indexes/<name>/current, so a Worker never sees a
mix of two versions. --local targets wrangler dev's local R2 (wrangler r2 object put --local),
the store the project's \`wrangler dev\` reads, from whatever folder this runs. --model defaults to
the folder the index was built with; --bucket to wrangler.toml's (nameonly).`,
  async run(argv, io) {
    const { values, positionals } = parse(argv, { model: { type: 'string', short: 'm' }, bucket: { type: 'string' }, local: { type: 'boolean' }, 'persist-to': { type: 'string' } }, true);
    if (positionals.length !== 1) throw new UsageError('expected exactly one <index-dir>');
    const indexDir = positionals[0]!;
    const target = wranglerTarget(values.bucket ?? 'nameonly', Boolean(values.local), values['persist-to']);
    const model = values.model ?? indexAndModel(indexDir).model;
    const { name, version } = await publish(indexDir, model, target, io.err);
    io.out(JSON.stringify({ name, version }));
    return 0;
  },
};

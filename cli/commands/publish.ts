import { publish, wranglerTarget } from '../../indexer/publish.js';
import { parse, required, UsageError, type Command } from '../args.js';

export const publishCommand: Command = {
  name: 'publish',
  summary: 'upload a model and an index to R2 (versioned prefix, then the current pointer)',
  usage: `nameonly publish <index-dir> --model <model-dir> --bucket <r2-bucket> [--local] [--persist-to <dir>]

Uploads the uint8 image encoder and model.json, then the index blobs and manifest under
indexes/<name>/<version>/, and last moves indexes/<name>/current, so a Worker never sees a
mix of two versions. --local targets wrangler dev's local R2 (wrangler r2 object put --local).`,
  async run(argv, io) {
    const { values, positionals } = parse(argv, { model: { type: 'string', short: 'm' }, bucket: { type: 'string' }, local: { type: 'boolean' }, 'persist-to': { type: 'string' } }, true);
    if (positionals.length !== 1) throw new UsageError('expected exactly one <index-dir>');
    const target = wranglerTarget(required(values.bucket, '--bucket'), Boolean(values.local), values['persist-to']);
    const { name, version } = await publish(positionals[0]!, required(values.model, '--model'), target, io.err);
    io.out(JSON.stringify({ name, version }));
    return 0;
  },
};

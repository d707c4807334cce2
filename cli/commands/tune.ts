import { prepareSupport } from '../../core/scoring/tipx.js';
import { GRIDS, tuneHyperparameters } from '../../core/scoring/tune.js';
import { parse, positiveInt, required, type Command } from '../args.js';
import { labelsOf, patchesOf, readJsonFile, unitRows } from '../feature-input.js';

export const tune: Command = {
  name: 'tune',
  summary: 'choose CALIP / TIP-X hyperparameters from a support set alone (leave-one-out)',
  usage: `nameonly tune --input <support.json> [--max-queries 1024]

support.json: { "text_classifier": C×D, "support_features": M×D, "support_labels": [M],
  "support_patch_embeds"?: M×HW×D }
Prints the chosen hyperparameters of each method with its leave-one-out accuracy.
Grids: ${Object.entries(GRIDS).map(([k, v]) => `${k} ${v.join('/')}`).join('; ')}.`,
  async run(argv, io) {
    const { values } = parse(argv, { input: { type: 'string', short: 'i' }, 'max-queries': { type: 'string' } });
    const input = readJsonFile(required(values.input, '--input'));
    const W = unitRows(input.text_classifier, 'text_classifier');
    const F = unitRows(input.support_features, 'support_features', W.cols);
    const labels = labelsOf(input.support_labels, 'support_labels', F.rows, W.rows);
    const supportPatches = input.support_patch_embeds === undefined ? undefined : patchesOf(input.support_patch_embeds, 'support_patch_embeds', F.rows, W.cols);
    const started = Date.now();
    const result = await tuneHyperparameters(W, prepareSupport(F, labels, W), { supportPatches, maxQueries: positiveInt(values['max-queries'], '--max-queries', 1024) });
    io.err(`tuned on ${result.queries} leave-one-out queries in ${Date.now() - started} ms`);
    io.out(JSON.stringify(result, null, 2));
    return 0;
  },
};

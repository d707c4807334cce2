import { DEFAULT_PARAMS, METHODS, scoreImage, type HyperParams, type Method } from '../../core/scoring/methods.js';
import { prepareSupport } from '../../core/scoring/tipx.js';
import { parse, required, UsageError, type Command } from '../args.js';
import { InputError, labelsOf, patchesOf, readJsonFile, unitRows } from '../feature-input.js';

const PARAM_KEYS = ['beta2', 'beta3', 'alpha', 'beta', 'gamma'] as const;

export const score: Command = {
  name: 'score',
  summary: 'score feature dumps with CLIP, CALIP, TIP-X or the combined method (no model needed)',
  usage: `nameonly score --method clip|calip|tipx|combined --input <features.json>

features.json: { "image_embeds": N×D, "patch_embeds"?: N×HW×D, "text_classifier": C×D,
  "support_features"?: M×D, "support_labels"?: [M], "params"?: {beta2,beta3,alpha,beta,gamma} }
Features are used as given and L2-normalised here. Missing params take the defaults
(CALIP β2 = 1.12, β3 = 0.02; α = γ = 0). Prints { "logits": N×C } (logit scale 100).`,
  async run(argv, io) {
    const { values } = parse(argv, { method: { type: 'string' }, input: { type: 'string', short: 'i' } });
    const method = required(values.method, '--method') as Method;
    if (!METHODS.includes(method)) throw new UsageError(`--method must be one of ${METHODS.join(', ')}`);
    const input = readJsonFile(required(values.input, '--input'));
    const W = unitRows(input.text_classifier, 'text_classifier');
    const images = unitRows(input.image_embeds, 'image_embeds', W.cols);
    const patches = input.patch_embeds === undefined ? undefined : patchesOf(input.patch_embeds, 'patch_embeds', images.rows, W.cols);
    let support = null;
    if (input.support_features !== undefined) {
      const F = unitRows(input.support_features, 'support_features', W.cols);
      support = prepareSupport(F, labelsOf(input.support_labels, 'support_labels', F.rows, W.rows), W);
    }
    const params: HyperParams = { ...DEFAULT_PARAMS };
    const given = (input.params ?? {}) as Record<string, unknown>;
    for (const key of PARAM_KEYS) {
      if (given[key] === undefined) continue;
      if (typeof given[key] !== 'number' || !Number.isFinite(given[key])) throw new InputError(`params.${key} must be a number`);
      params[key] = given[key];
    }
    if (given.tau !== undefined && given.tau !== 0.5) throw new InputError('params.tau: only the SuS-X value 0.5 is supported');
    const logits: number[][] = [];
    for (let i = 0; i < images.rows; i++) {
      const embed = images.data.subarray(i * W.cols, (i + 1) * W.cols);
      try {
        logits.push(Array.from(scoreImage(method, { embed, patches: patches?.[i] }, W, support, params)));
      } catch (e) {
        throw new InputError((e as Error).message);
      }
    }
    io.out(JSON.stringify({ logits }));
    return 0;
  },
};

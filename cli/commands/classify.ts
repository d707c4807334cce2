import { Progress } from '../../indexer/progress.js';
import { NONE_OF_THESE, REJECT_PATTERN, rejectOption } from '../../core/pipeline.js';
import { METHODS, type Method } from '../../core/scoring/methods.js';
import { parse, positiveInt, UsageError, type Command } from '../args.js';
import { readFileSync } from 'node:fs';
import type { Pipeline } from '../../core/pipeline.js';
import { splitLabels } from '../../core/request-labels.js';
import { defaultModel } from '../default-model.js';
import { imageFiles, labelsPipeline, openIndex, readImage } from '../offline.js';

const CHOICES: readonly string[] = ['auto', ...METHODS];

function methodOption(value: string | undefined): Method | 'auto' {
  const method = value ?? 'auto';
  if (!CHOICES.includes(method)) throw new UsageError(`--method must be one of ${CHOICES.join(', ')}`);
  return method as Method | 'auto';
}

/** The index's pipeline, with --labels added; --labels alone: those labels on --model (default the embedded model). */
async function openPipeline(values: { index?: string; model?: string; labels?: string; templates?: string }, log: (line: string) => void): Promise<{ pipeline: Pipeline; truncated: string[] }> {
  if (values.labels === undefined) return { pipeline: (await openIndex(values.index!, values.model)).pipeline, truncated: [] };
  const opened = values.index ? await openIndex(values.index, values.model) : { modelDir: values.model ?? defaultModel(log) };
  const templates = values.templates === undefined ? undefined : readFileSync(values.templates, 'utf8').split('\n').map((l) => l.trim()).filter(Boolean);
  return labelsPipeline(splitLabels(values.labels), templates, opened);
}

export const classify: Command = {
  name: 'classify',
  summary: 'classify images offline with an index (the Worker’s pipeline, no server)',
  usage: `nameonly classify --index <index-dir> [--model <model-dir>] [--method auto|clip|calip|tipx|combined]
                  [--labels a,b,c] [--templates <file>] [--top-k 5] [--reject auto|off|p]
                  [--format json|table] <image|folder>...
nameonly classify --labels a,b,c [--model <model-dir>] ... <image|folder>...

--labels: comma-separated labels scored as zero-shot classes, as the Worker's labels=: alone
(no --index: the model of --model, default the embedded shapes-clip), or added to the index's
classes. --templates: a file with one template per line, each with {} (default "a photo of a {}.").

Every image (folders recursively; JPEG and PNG) gets one line: JSON
{"file","answer","labels":[{"label","score","logit"}],"method","calibrated","reject_below","timings_ms"}
or, with --format table, a line for people. Scores are calibrated probabilities (the index's
temperature for the method, fitted on its support set); "answer" is "none of these" when the top
one is under --reject (auto: the index's threshold; off; or a probability). auto for --method
is what the index chose: CLIP unless another method's leave-one-out gain over it is beyond noise.
The model is the one the index was built with (its folder is recorded in the index); --model only
when it has moved. An image that cannot be decoded is reported on its line
({"file","error"}) and the run goes on; the exit code is then 1.`,
  async run(argv, io) {
    const { values, positionals } = parse(argv, { index: { type: 'string' }, model: { type: 'string' }, method: { type: 'string' }, 'top-k': { type: 'string' }, format: { type: 'string' }, reject: { type: 'string' }, labels: { type: 'string' }, templates: { type: 'string' } }, true);
    const reject = values.reject ?? 'auto';
    if (!new RegExp(REJECT_PATTERN).test(reject)) throw new UsageError('--reject must be auto, off or a probability from 0 to 1');
    if (!values.index && values.labels === undefined) throw new UsageError('--index or --labels is required');
    if (values.templates !== undefined && values.labels === undefined) throw new UsageError('--templates needs --labels');
    if (positionals.length === 0) throw new UsageError('give at least one image or folder');
    const format = values.format ?? 'json';
    if (format !== 'json' && format !== 'table') throw new UsageError('--format must be json or table');
    const method = methodOption(values.method);
    const topK = positiveInt(values['top-k'], '--top-k', 5);
    const files = imageFiles(positionals);
    if (files.length === 0) throw new UsageError(`no JPEG or PNG images in ${positionals.join(', ')}`);
    const { pipeline, truncated } = await openPipeline(values, io.err);
    if (truncated.length) io.err(`cut to CLIP's 77 tokens: ${truncated.join(', ')}`);
    const resolved = pipeline.resolveMethod(method);
    const progress = files.length > 1 ? new Progress('classifying', files.length, 'images') : undefined;
    let failed = 0;
    for (const file of files) {
      const read = readImage(file);
      if ('error' in read) {
        failed++;
        io.out(format === 'json' ? JSON.stringify({ file, error: read.error }) : `${file}\tERROR ${read.error}`);
      } else {
        const started = Date.now();
        const timings: { preprocess?: number; encode?: number } = {};
        const [features] = await pipeline.features([read.image], timings);
        const t = Date.now();
        const ranked = pipeline.rank(await pipeline.score(features!, resolved), resolved, topK, rejectOption(reject));
        const timingsMs = { ...timings, score: Date.now() - t, total: Date.now() - started };
        io.out(
          format === 'json'
            ? JSON.stringify({ file, answer: ranked.answer, labels: ranked.labels, method: resolved, calibrated: ranked.calibrated, reject_below: ranked.rejectBelow, timings_ms: timingsMs })
            : `${file}\t${ranked.answer === NONE_OF_THESE ? 'none of these — ' : ''}${ranked.labels.map((l) => `${l.label} ${(100 * l.score).toFixed(1)}%`).join('  ')}`,
        );
      }
      progress?.tick();
    }
    progress?.finish();
    if (failed) io.err(`${failed} of ${files.length} images could not be read`);
    return failed ? 1 : 0;
  },
};

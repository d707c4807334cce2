import { writeFileSync } from 'node:fs';
import { ATTENTIONS, type Attention } from '../../core/encoders.js';
import { labelPng, overlayPng, palette, runLengths } from '../../core/label-map.js';
import { SegmentChoiceError } from '../../core/pipeline.js';
import { PAMR_DEFAULTS } from '../../core/scoring/pamr.js';
import { SEGMENT_PROB_THRESHOLD } from '../../core/scoring/segment.js';
import { parse, positiveInt, UsageError, type Command } from '../args.js';
import { openIndex, readImage } from '../offline.js';

function fraction(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const x = Number(value);
  if (value.trim() === '' || !(x >= 0 && x <= 1)) throw new UsageError(`${flag} must be a number from 0 to 1, got "${value}"`);
  return x;
}

export const segment: Command = {
  name: 'segment',
  summary: 'segment an image offline with an index (per-pixel classes, SCLIP’s CSA)',
  usage: `nameonly segment --index <index-dir> [--model <model-dir>] <image> [--out mask.png]
                 [--overlay overlay.png] [--format png|json|rle] [--size <short side>]
                 [--attention csa|naclip|clearclip|vanilla] [--pamr [--steps 10]]
                 [--prob-thd p] [--area-thd a]

png (default): --out gets the label map as a palette PNG (pixel value = class index); the legend
(class, colour, share of the image) is printed. json / rle: the answer the Worker gives
({"width","height","legend","labels"|"rle"}) goes to --out, or to stdout without it.
--overlay writes the image with the class colours blended over it. --size: the short side the
image is resized to before the sliding windows (default 1.5 × the model input).
--attention: the last block's attention for the patch features (default csa, SCLIP); --pamr:
refine the class maps with PAMR (SCLIP's recipe, dilations 8 and 16); --prob-thd / --area-thd:
SCLIP's thresholds, sending unsure pixels or small classes to the index's "background" class
(prob-thd defaults to ${SEGMENT_PROB_THRESHOLD} when the index has one).`,
  async run(argv, io) {
    const { values, positionals } = parse(argv, {
      index: { type: 'string' }, model: { type: 'string' }, out: { type: 'string' }, overlay: { type: 'string' }, format: { type: 'string' }, size: { type: 'string' },
      attention: { type: 'string' }, pamr: { type: 'boolean' }, steps: { type: 'string' }, 'prob-thd': { type: 'string' }, 'area-thd': { type: 'string' },
    }, true);
    if (!values.index) throw new UsageError('--index is required');
    if (positionals.length !== 1) throw new UsageError('give one image');
    const format = values.format ?? 'png';
    if (format !== 'png' && format !== 'json' && format !== 'rle') throw new UsageError('--format must be png, json or rle');
    if (format === 'png' && !values.out && !values.overlay) throw new UsageError('--format png needs --out mask.png (or --overlay overlay.png)');
    const read = readImage(positionals[0]!);
    if ('error' in read) throw new Error(read.error);
    const { image } = read;
    const { pipeline } = await openIndex(values.index, values.model);
    const shortSide = values.size === undefined ? undefined : positiveInt(values.size, '--size', 0);
    if (values.attention !== undefined && !(ATTENTIONS as readonly string[]).includes(values.attention)) throw new UsageError(`--attention must be one of ${ATTENTIONS.join(', ')}`);
    if (values.steps !== undefined && !values.pamr) throw new UsageError('--steps goes with --pamr');
    let choices;
    try {
      choices = pipeline.segmentChoices({
        attention: values.attention as Attention | undefined,
        pamrSteps: values.pamr ? positiveInt(values.steps, '--steps', PAMR_DEFAULTS.steps) : undefined,
        probThreshold: fraction(values['prob-thd'], '--prob-thd'),
        areaThreshold: fraction(values['area-thd'], '--area-thd'),
      });
    } catch (e) {
      if (e instanceof SegmentChoiceError) throw new UsageError(e.message);
      throw e;
    }
    const started = Date.now();
    const labels = await pipeline.segment(image, { shortSide, ...choices });
    const segmentMs = Date.now() - started;
    const names = pipeline.index.manifest.classes.map((c) => c.name);
    const colours = palette(names);
    const legend = names.map((label, index) => ({ index, label, color: colours[index]! }));
    if (values.overlay) writeFileSync(values.overlay, overlayPng(image, labels, colours));
    if (format === 'png') {
      if (values.out) writeFileSync(values.out, labelPng(labels, image.width, image.height, colours));
      const counts = new Array<number>(names.length).fill(0);
      for (const c of labels) counts[c]!++;
      for (const l of legend.filter((l) => counts[l.index]! > 0).sort((a, b) => counts[b.index]! - counts[a.index]!)) {
        const hex = '#' + l.color.map((v) => v.toString(16).padStart(2, '0')).join('');
        io.out(`${String(l.index).padStart(3)}  ${hex}  ${((100 * counts[l.index]!) / labels.length).toFixed(1).padStart(5)}%  ${l.label}`);
      }
      io.err(`segmented ${image.width}×${image.height} into ${names.length} classes in ${segmentMs} ms${values.out ? `: ${values.out}` : ''}${values.overlay ? `, overlay ${values.overlay}` : ''}`);
      return 0;
    }
    const answer = { width: image.width, height: image.height, legend, attention: choices.attention, timings_ms: { segment: segmentMs }, ...(format === 'rle' ? { rle: runLengths(labels) } : { labels: Array.from(labels) }) };
    if (values.out) writeFileSync(values.out, JSON.stringify(answer) + '\n');
    else io.out(JSON.stringify(answer));
    return 0;
  },
};

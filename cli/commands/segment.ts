import { writeFileSync } from 'node:fs';
import { labelPng, overlayPng, palette, runLengths } from '../../core/label-map.js';
import { parse, positiveInt, UsageError, type Command } from '../args.js';
import { openIndex, readImage } from '../offline.js';

export const segment: Command = {
  name: 'segment',
  summary: 'segment an image offline with an index (per-pixel classes, SCLIP’s CSA)',
  usage: `nameonly segment --index <index-dir> [--model <model-dir>] <image> [--out mask.png]
                 [--overlay overlay.png] [--format png|json|rle] [--size <short side>]

png (default): --out gets the label map as a palette PNG (pixel value = class index); the legend
(class, colour, share of the image) is printed. json / rle: the answer the Worker gives
({"width","height","legend","labels"|"rle"}) goes to --out, or to stdout without it.
--overlay writes the image with the class colours blended over it. --size: the short side the
image is resized to before the sliding windows (default 1.5 × the model input).`,
  async run(argv, io) {
    const { values, positionals } = parse(argv, { index: { type: 'string' }, model: { type: 'string' }, out: { type: 'string' }, overlay: { type: 'string' }, format: { type: 'string' }, size: { type: 'string' } }, true);
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
    const started = Date.now();
    const labels = await pipeline.segment(image, { shortSide });
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
    const answer = { width: image.width, height: image.height, legend, timings_ms: { segment: segmentMs }, ...(format === 'rle' ? { rle: runLengths(labels) } : { labels: Array.from(labels) }) };
    if (values.out) writeFileSync(values.out, JSON.stringify(answer) + '\n');
    else io.out(JSON.stringify(answer));
    return 0;
  },
};

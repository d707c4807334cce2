import { readFileSync } from 'node:fs';
import { decodeImage } from '../../core/decode.js';
import { preprocess } from '../../core/image.js';
import { openImageEncoder, openTextEncoder, openTokenizer, type Runtime } from '../../models/load-model.js';
import { parse, required, UsageError, type Command } from '../args.js';

export const embed: Command = {
  name: 'embed',
  summary: 'print image and text embeddings of a converted model as JSON',
  usage: `nameonly embed --model <model-dir> [--image a.jpg ...] [--text "a dog" ...]
                [--runtime node|wasm|engine] [--quantized] [--patches]

--runtime engine: the image tower on the int8 engine the Worker runs (texts on onnxruntime-node).
--quantized: onnxruntime's uint8 image graph. Prints {"images":[{"file","image_embeds"[,"patch_embeds","csa_patch_embeds"]}],
"texts":[{"text","text_embeds"}]}; embeddings are not normalised.`,
  async run(argv, io) {
    const { values } = parse(argv, {
      model: { type: 'string', short: 'm' },
      image: { type: 'string', multiple: true },
      text: { type: 'string', multiple: true },
      runtime: { type: 'string' },
      quantized: { type: 'boolean' },
      patches: { type: 'boolean' },
    });
    const modelDir = required(values.model, '--model');
    const runtime = (values.runtime ?? 'node') as Runtime;
    if (runtime !== 'node' && runtime !== 'wasm' && runtime !== 'engine') throw new UsageError('--runtime must be node, wasm or engine');
    if (!values.image?.length && !values.text?.length) throw new UsageError('give at least one --image or --text');
    const images = [];
    if (values.image?.length) {
      const encoder = await openImageEncoder(modelDir, { runtime, quantized: values.quantized });
      const { embedDim: D, grid } = encoder.info;
      for (const file of values.image) {
        const pixels = preprocess(decodeImage(readFileSync(file)), encoder.info.preprocess);
        const out = await encoder.encode(pixels);
        const rows = (a: Float32Array) => Array.from({ length: grid * grid }, (_, i) => Array.from(a.subarray(i * D, (i + 1) * D)));
        images.push({
          file,
          image_embeds: Array.from(out.imageEmbeds!),
          ...(values.patches ? { patch_embeds: rows(out.patchEmbeds!), csa_patch_embeds: rows(out.csaPatchEmbeds!) } : {}),
        });
      }
    }
    const texts: { text: string; text_embeds: number[] }[] = [];
    if (values.text?.length) {
      const tokenizer = openTokenizer(modelDir);
      const encoder = await openTextEncoder(modelDir, runtime === 'engine' ? 'node' : runtime);
      const embeds = await encoder.encode(values.text.map((t) => tokenizer.tokenize(t)));
      const D = encoder.info.embedDim;
      values.text.forEach((text, i) => texts.push({ text, text_embeds: Array.from(embeds.subarray(i * D, (i + 1) * D)) }));
    }
    io.out(JSON.stringify({ images, texts }));
    return 0;
  },
};

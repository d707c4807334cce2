import { convertCheckpoint } from '../../models/convert.js';
import { parse, required, UsageError, type Command } from '../args.js';

export const convert: Command = {
  name: 'convert',
  summary: 'turn a Hugging Face CLIP checkpoint folder into the ONNX model folder',
  usage: `nameonly convert <checkpoint-dir> --out <model-dir>

Reads config.json, model.safetensors (F32/F16/BF16), tokenizer files and
preprocessor_config.json; writes image_encoder.onnx (fp32: image_embeds,
patch_embeds, csa_patch_embeds), image_encoder_uint8.onnx (the edge encoder),
text_encoder.onnx, vocab.json, merges.txt and model.json. Prints the Worker
memory estimate. The output folder is replaced atomically; nothing partial is left.`,
  async run(argv, io) {
    const { values, positionals } = parse(argv, { out: { type: 'string', short: 'o' } }, true);
    if (positionals.length !== 1) throw new UsageError('expected exactly one <checkpoint-dir>');
    const { info, outDir } = convertCheckpoint(positionals[0]!, required(values.out, '--out'), io.err);
    io.out(JSON.stringify({ out: outDir, name: info.name, embedDim: info.embedDim, workerMemory: info.workerMemory }));
    return 0;
  },
};

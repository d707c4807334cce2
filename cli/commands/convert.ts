import { convertCheckpoint } from '../../models/convert.js';
import { parse, required, UsageError, type Command } from '../args.js';

export const convert: Command = {
  name: 'convert',
  summary: 'turn a Hugging Face CLIP checkpoint folder into the ONNX model folder',
  usage: `nameonly convert <checkpoint-dir> --out <model-dir> [--image-runtime engine|onnxruntime]

Reads config.json, model.safetensors (F32/F16/BF16), tokenizer files and
preprocessor_config.json; writes image_encoder_int8.bin (the int8 engine's
weights: the Worker's image tower), image_encoder.onnx (fp32: image_embeds,
patch_embeds, csa_patch_embeds), image_encoder_uint8.onnx (onnxruntime-web's),
text_encoder.onnx, vocab.json, merges.txt and model.json, which records the
engine's exact memory and whether the model fits a Worker (and why not).
--image-runtime: the Worker's image tower for this model (default engine).
--out must be a new or empty folder, or one convert wrote before (it is then
replaced atomically; nothing partial is left); never the checkpoint itself.`,
  async run(argv, io) {
    const { values, positionals } = parse(argv, { out: { type: 'string', short: 'o' }, 'image-runtime': { type: 'string' } }, true);
    if (positionals.length !== 1) throw new UsageError('expected exactly one <checkpoint-dir>');
    const imageRuntime = values['image-runtime'] ?? 'engine';
    if (imageRuntime !== 'engine' && imageRuntime !== 'onnxruntime') throw new UsageError('--image-runtime must be engine or onnxruntime');
    const { info, outDir } = convertCheckpoint(positionals[0]!, required(values.out, '--out'), io.err, { imageRuntime });
    io.out(JSON.stringify({ out: outDir, name: info.name, embedDim: info.embedDim, workerMemory: info.workerMemory }));
    return 0;
  },
};

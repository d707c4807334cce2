// The offline half: an index folder and its model opened into the same Pipeline the Worker
// serves (the model's own image runtime: the int8 engine or onnxruntime's uint8 graph), and the
// images a command was given, found and decoded.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { decodeImage, ImageDecodeError } from '../core/decode.js';
import type { RgbImage } from '../core/image.js';
import { DATA_FILE, loadIndex, type IndexManifest } from '../core/index-format.js';
import { Pipeline } from '../core/pipeline.js';
import { checkLabels, DEFAULT_MAX_LABELS, embedLabels, LabelError, labelsOnlyIndex } from '../core/request-labels.js';
import { openTextEngine } from '../engine/node.js';
import { modelJsonSha256, openImageEncoder, openTokenizer, readModelInfo } from '../models/load-model.js';
import { UsageError } from './args.js';

export interface OpenedIndex {
  pipeline: Pipeline;
  modelDir: string;
}

/** An index folder's manifest and its model folder: `modelDir` when given, else the one it records. */
export function indexAndModel(indexDir: string, modelDir?: string): { manifest: IndexManifest; model: string } {
  const manifestFile = join(indexDir, 'manifest.json');
  if (!existsSync(manifestFile)) throw new UsageError(`${indexDir} is not an index folder (no manifest.json); build one with nameonly index`);
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as IndexManifest;
  const model = modelDir ?? manifest.model?.path;
  if (!model) throw new UsageError(`index ${indexDir} does not record where its model is: pass --model <model-dir>`);
  if (!existsSync(join(model, 'model.json'))) {
    throw new UsageError(modelDir ? `${model} is not a converted model folder (no model.json)` : `the index's model is no longer at ${model}: pass --model <model-dir>`);
  }
  return { manifest, model };
}

/**
 * The index at `indexDir` with its model: `modelDir` when given, else where the index was built
 * from (the manifest records it). A model other than the one the index was built for is refused.
 */
export async function openIndex(indexDir: string, modelDir?: string): Promise<OpenedIndex> {
  const { manifest, model } = indexAndModel(indexDir, modelDir);
  const sha = modelJsonSha256(model);
  if (sha !== manifest.model.modelJsonSha256) throw new Error(`index ${manifest.name} was built for model ${manifest.model.name} (model.json sha256 ${manifest.model.modelJsonSha256.slice(0, 12)}…), not for the model at ${model} (${sha.slice(0, 12)}…)`);
  const index = await loadIndex(manifest, readFileSync(join(indexDir, DATA_FILE)));
  return { pipeline: new Pipeline(await workerImageTower(model), index), modelDir: resolve(model) };
}

/** What the Worker runs for this model: the same numbers offline and at the edge. */
function workerImageTower(modelDir: string) {
  const info = readModelInfo(modelDir);
  return openImageEncoder(modelDir, info.imageRuntime === 'engine' ? { runtime: 'engine' } : { runtime: 'wasm', quantized: true });
}

/**
 * Labels given on the command line, as the Worker serves them: embedded by the text tower on the
 * int8 engine (the text Worker's), and scored alone (`index` absent: the model at `modelDir`) or
 * added to the index's classes. Bad labels are usage errors naming the label.
 */
export async function labelsPipeline(labels: string[], templates: string[] | undefined, opened: { pipeline?: Pipeline; modelDir: string }, maxLabels = DEFAULT_MAX_LABELS): Promise<{ pipeline: Pipeline; truncated: string[] }> {
  const info = readModelInfo(opened.modelDir);
  let checked;
  try {
    checked = checkLabels(labels, templates, maxLabels, opened.pipeline?.index.manifest.classes.map((c) => c.name));
  } catch (e) {
    if (e instanceof LabelError) throw new UsageError(e.message);
    throw e;
  }
  const text = await openTextEngine(opened.modelDir, info);
  const { W, truncated } = embedLabels((texts) => text.encodeMany(texts), openTokenizer(opened.modelDir), info, checked.labels, checked.templates);
  const sha = modelJsonSha256(opened.modelDir);
  const pipeline = opened.pipeline
    ? opened.pipeline.withLabels(checked.labels, W)
    : new Pipeline(await workerImageTower(opened.modelDir), labelsOnlyIndex(checked.labels, W, { name: info.name, modelJsonSha256: sha }));
  return { pipeline, truncated: checked.labels.filter((_, i) => truncated[i]) };
}

const IMAGE_FILE = /\.(jpe?g|png|webp)$/i;

/** Files given, and image files in the folders given (recursively, sorted). */
export function imageFiles(paths: string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (IMAGE_FILE.test(entry.name)) out.push(path);
    }
  };
  for (const path of paths) {
    if (!existsSync(path)) throw new UsageError(`${path} does not exist`);
    if (statSync(path).isDirectory()) walk(path);
    else out.push(path);
  }
  return out;
}

/** A file's image, or why it cannot be read (the command reports it and goes on). */
export function readImage(file: string): { image: RgbImage } | { error: string } {
  try {
    return { image: decodeImage(readFileSync(file)) };
  } catch (e) {
    if (e instanceof ImageDecodeError) return { error: e.message };
    return { error: `cannot read ${file}: ${(e as Error).message}` };
  }
}

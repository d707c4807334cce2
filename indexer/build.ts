// `nameonly index`: class names -> text classifier, SuS support set, TIP-X caches,
// name-only hyperparameters -> a versioned index artifact.
import type { ModelInfo } from '../core/model-info.js';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ImageDecodeError } from '../core/decode.js';
import type { IndexClass, IndexManifest, SupportSource } from '../core/index-format.js';
import { matrix, normalizeRows, type Matrix } from '../core/linalg.js';

import { fillTemplate, textClassifier } from '../core/scoring/classifier.js';
import { DEFAULT_HYPERPARAMETERS, METHODS } from '../core/scoring/methods.js';
import { prepareSupport } from '../core/scoring/tipx.js';
import { GUARD_Z, tuneHyperparameters } from '../core/scoring/tune.js';
import { calibrate } from './calibrate.js';
import { outOfClassProbes } from './probes.js';
import IMAGENET from '../core/assets/imagenet-prompts.json' with { type: 'json' };
import { Embedder, type Device, type ImageRuntimeChoice } from './embedder.js';
import { EmbeddingCache } from './embedding-cache.js';
import { GenerationCache, generatorFor, seedFor } from './generator.js';
import { readClassList, readDescriptions, readTemplates } from './inputs.js';
import { embedPool, listPool } from './pool.js';
import { nativeGemm } from './native-gemm.js';
import { Progress } from './progress.js';
import { retrieve, VectorIndex } from './retrieve.js';
import { listShots } from './shots.js';
import { writeIndex } from './write-index.js';

export const DEFAULT_TEMPLATES: string[] = IMAGENET.templates;
/** SuS-X's "photo" prompt for retrieval and generation. */
export const SUS_PHOTO_PROMPT = 'A photo of a {}.';

export interface BuildOptions {
  classes: string;
  model: string;
  out: string;
  name?: string;
  templates?: string;
  descriptions?: string;
  pool?: string;
  generator?: string;
  shotsDir?: string;
  shots: number;
  dedup: number;
  susPrompts: 'photo' | 'descriptions';
  batch: number;
  device: Device;
  /** The image tower: the int8 engine (default; the Worker's numerics) or onnxruntime-node fp32. */
  imageRuntime?: ImageRuntimeChoice;
  cacheDir: string;
  generationSize?: number;
  maxTuneQueries: number;
  log: (line: string) => void;
  /** Progress bars on stderr (default true). */
  progress?: boolean;
}

interface SupportItem {
  label: number;
  bytes: Uint8Array;
  source: SupportSource;
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

export interface BuildResult {
  manifest: IndexManifest;
  dir: string;
  bytes: number;
  skipped: { path: string; reason: string }[];
  shortfall: { name: string; got: number }[];
  timings: Record<string, number>;
}

export async function buildIndex(o: BuildOptions): Promise<BuildResult> {
  const timings: Record<string, number> = {};
  const timed = async <T>(stage: string, fn: () => Promise<T> | T): Promise<T> => {
    const t = Date.now();
    const r = await fn();
    timings[stage] = (Date.now() - t) / 1000;
    return r;
  };
  const stream = o.progress === false ? null : process.stderr;
  const classes = readClassList(o.classes);
  const templates = o.templates ? readTemplates(o.templates) : DEFAULT_TEMPLATES;
  const descriptions = o.descriptions ? readDescriptions(o.descriptions, classes) : new Map<number, string[]>();
  if (o.susPrompts === 'descriptions' && descriptions.size < classes.length) throw new Error('--sus-prompts descriptions needs --descriptions for every class');
  const embedder = await Embedder.open(o.model, o.device, o.log, o.imageRuntime);
  const C = classes.length, D = embedder.info.embedDim;
  o.log(`${C} classes, ${templates.length} templates, model ${embedder.info.name} (${D}-d), images on ${embedder.imageRuntime === 'engine' ? 'the int8 engine' : `onnxruntime (${embedder.device})`}`);

  try {
    // Text classifier (all names × templates + descriptions), segmentation queries (one per
    // name, template-averaged) and the SuS prompt of each class, in one batch of prompts.
    const { W, queries, queryClass, susQueries } = await timed('text', async () => {
      const names = classes.flatMap((c, label) => [c.name, ...c.synonyms].map((n) => ({ n, label })));
      const T = templates.length;
      const descTexts = classes.map((_, i) => descriptions.get(i) ?? []);
      const texts = [...names.flatMap(({ n }) => templates.map((t) => fillTemplate(t, n))), ...descTexts.flat(), ...classes.map((c) => fillTemplate(SUS_PHOTO_PROMPT, c.name))];
      const progress = new Progress('encoding prompts', texts.length, 'prompts', stream);
      const embeds = await embedder.embedTexts(texts, Math.max(8, o.batch), (n) => progress.tick(n));
      progress.finish();
      const rows = (start: number, count: number) => embeds.data.subarray(start * D, (start + count) * D);
      const descStart = names.length * T;
      const descOffset = descTexts.map((_, i) => descTexts.slice(0, i).reduce((a, d) => a + d.length, 0));
      // Per class: the template rows of its names, then its descriptions.
      const parts: Float32Array[] = [];
      const counts = classes.map((c, i) => {
        const first = names.findIndex((x) => x.label === i);
        parts.push(rows(first * T, (1 + c.synonyms.length) * T), rows(descStart + descOffset[i]!, descTexts[i]!.length));
        return (1 + c.synonyms.length) * T + descTexts[i]!.length;
      });
      const concat = (arrays: Float32Array[]) => {
        const out = new Float32Array(arrays.reduce((a, x) => a + x.length, 0));
        arrays.reduce((at, x) => (out.set(x, at), at + x.length), 0);
        return out;
      };
      const W = textClassifier(matrix(concat(parts), counts.reduce((a, b) => a + b, 0), D), counts);
      const queries = textClassifier(matrix(embeds.data.slice(0, names.length * T * D), names.length * T, D), names.map(() => T));
      const nDesc = descOffset.length ? descOffset[descOffset.length - 1]! + descTexts[descTexts.length - 1]!.length : 0;
      const susQueries =
        o.susPrompts === 'descriptions'
          ? textClassifier(matrix(embeds.data.slice(descStart * D, (descStart + nDesc) * D), nDesc, D), descTexts.map((d) => d.length)) // mean of the class's descriptions
          : normalizeRows(matrix(embeds.data.slice((descStart + nDesc) * D, (descStart + nDesc + C) * D), C, D));
      return { W, queries, queryClass: Int32Array.from(names, (x) => x.label), susQueries };
    });

    // Support set: any mix of pool retrieval, generation and user shots.
    const items: SupportItem[] = [];
    const skipped: BuildResult['skipped'] = [];
    const shortfall: BuildResult['shortfall'] = [];
    if (o.pool) {
      await timed('pool', async () => {
        const paths = listPool(o.pool!);
        const cache = new EmbeddingCache(join(o.cacheDir, 'embeddings', `${embedder.modelJsonSha256.slice(0, 16)}-${embedder.imageRuntime}`), D);
        const pool = await embedPool(paths, embedder, cache, o.batch, stream);
        skipped.push(...pool.skipped);
        o.log(`pool: ${pool.paths.length} images (${pool.fromCache} from cache, ${pool.skipped.length} skipped)`);
        if (pool.paths.length === 0) throw new Error(`pool ${o.pool}: no image could be read`);
        const t = Date.now();
        const index = new VectorIndex(pool.embeds);
        const found = retrieve(index, susQueries, { shots: o.shots, dedupThreshold: o.dedup });
        o.log(`retrieval: HNSW over ${pool.paths.length} images built and searched in ${((Date.now() - t) / 1000).toFixed(1)}s (${found.rounds} round${found.rounds > 1 ? 's' : ''})`);
        found.perClass.forEach((rows, label) => {
          for (const r of rows) items.push({ label, bytes: readFileSync(pool.paths[r]!), source: { kind: 'pool', path: pool.paths[r]!, sha256: pool.sha256[r]! } });
        });
      });
    }
    if (o.generator) {
      await timed('generation', async () => {
        const generator = generatorFor(o.generator!);
        const cache = new GenerationCache(join(o.cacheDir, 'generated'));
        const size = o.generationSize ?? embedder.info.imageSize;
        const progress = new Progress('generating support images', C * o.shots, 'images', stream);
        let fresh = 0;
        for (let label = 0; label < C; label++) {
          const prompts = o.susPrompts === 'descriptions' ? descriptions.get(label)! : [fillTemplate(SUS_PHOTO_PROMPT, classes[label]!.name)];
          for (let k = 0; k < o.shots; k++) {
            const prompt = prompts[k % prompts.length]!;
            const seed = seedFor(prompt, k);
            const { bytes, cached } = await cache.get(generator, { prompt, seed, width: size, height: size });
            if (!cached) fresh++;
            items.push({ label, bytes, source: { kind: 'generated', prompt, seed, generator: generator.name, sha256: sha256(bytes) } });
            progress.tick();
          }
        }
        progress.finish();
        o.log(`generation: ${C * o.shots} images (${C * o.shots - fresh} from cache) from ${generator.name}`);
      });
    }
    if (o.shotsDir) {
      for (const { label, path } of listShots(o.shotsDir, classes)) {
        const bytes = readFileSync(path);
        items.push({ label, bytes, source: { kind: 'shots', path: resolve(path), sha256: sha256(bytes) } });
      }
    }

    let support: { features: Matrix; labels: Int32Array; logNorm: Float32Array } | null = null;
    let manifestSupport: IndexManifest['support'] = null;
    let hyperparameters: IndexManifest['hyperparameters'] = DEFAULT_HYPERPARAMETERS;
    if (items.length > 0) {
      const embedded = await timed('support', async () => {
        const progress = new Progress('encoding support images', items.length, 'images', stream);
        const kept: SupportItem[] = [];
        const features: number[] = [];
        const patches: Matrix[] = [];
        const take = (item: SupportItem, out: { embeds: Matrix; patches: Matrix[] }, k: number) => {
          kept.push(item);
          features.push(...out.embeds.data.subarray(k * D, (k + 1) * D));
          patches.push(out.patches[k]!);
        };
        for (let i = 0; i < items.length; i += o.batch) {
          const chunk = items.slice(i, i + o.batch);
          try {
            const out = await embedder.embedImages(chunk.map((c) => c.bytes), true);
            chunk.forEach((item, k) => take(item, out, k));
          } catch {
            // A bad image must not sink its batch: one by one, reporting the ones that fail.
            for (const item of chunk) {
              try {
                take(item, await embedder.embedImages([item.bytes], true), 0);
              } catch (e) {
                if (!(e instanceof ImageDecodeError)) throw e;
                skipped.push({ path: 'path' in item.source ? item.source.path : `generated "${item.source.prompt}" seed ${item.source.seed}`, reason: e.message });
              }
            }
          }
          progress.tick(chunk.length);
        }
        progress.finish();
        return { kept, features: matrix(Float32Array.from(features), kept.length, D), patches };
      });
      if (embedded.kept.length === 0) throw new Error('no support image could be decoded');
      const labels = Int32Array.from(embedded.kept, (k) => k.label);
      const prepared = prepareSupport(embedded.features, labels, W);
      const tuned = await timed('tuning', async () => {
        o.log(`tuning hyperparameters by leave-one-out over ${Math.min(labels.length, o.maxTuneQueries)} support images...`);
        return tuneHyperparameters(W, prepared, { supportPatches: embedded.patches, maxQueries: o.maxTuneQueries, gemm: await nativeGemm() });
      });
      const verdicts = Object.entries(tuned.guard).flatMap(([m, g]) => (g ? [`${m} ${g.kept === 'tuned' ? 'tuned' : 'kept the reference values'} (z ${g.z.toFixed(1)})`] : []));
      o.log(`tuner guard (a tuned point must beat the reference values by z >= ${GUARD_Z}): ${verdicts.join(', ')}`);
      const perClass = classes.map((_, i) => labels.filter((l) => l === i).length);
      perClass.forEach((got, i) => {
        const wanted = (o.pool ? o.shots : 0) + (o.generator ? o.shots : 0);
        if (wanted > 0 && got < wanted) shortfall.push({ name: classes[i]!.name, got });
      });
      support = { features: embedded.features, labels, logNorm: prepared.logNorm };
      manifestSupport = { sources: embedded.kept.map((k) => ({ ...k.source, label: k.label })), perClass, requestedPerClass: o.shots };
      const strip = <T extends { looAccuracy: number }>({ looAccuracy: _, ...rest }: T) => rest;
      const params = { calip: { beta2: tuned.calip.beta2, beta3: tuned.calip.beta3 }, tipx: strip(tuned.tipx), combined: strip(tuned.combined) };
      const calibration = await timed('calibration', async () => {
        const probes = await embedder.embedImages(outOfClassProbes(embedder.info.imageSize), true);
        return calibrate(tuned, W, prepared, params, probes);
      });
      o.log(`calibration (leave-one-out NLL, before → after): ${METHODS.map((m) => `${m} T=${calibration[m].temperature.toFixed(3)} ${calibration[m].nllBefore.toFixed(2)} → ${calibration[m].nllAfter.toFixed(2)}`).join(', ')}`);
      hyperparameters = {
        source: 'leave-one-out',
        params,
        looAccuracy: { clip: tuned.clip.looAccuracy, calip: tuned.calip.looAccuracy, tipx: tuned.tipx.looAccuracy, combined: tuned.combined.looAccuracy, queries: tuned.queries },
        auto: tuned.auto,
        calibration,
      };
    }

    const written = await timed('write', () =>
      writeIndex(
        o.out,
        {
          name: o.name,
          model: { name: embedder.info.name, modelJsonSha256: embedder.modelJsonSha256, embedDim: D, path: resolve(o.model) },
          classes: classes as IndexClass[],
          prompts: { templates, descriptions: [...descriptions.values()].reduce((a, d) => a + d.length, 0) },
          counts: { classes: C, queries: queries.rows, support: support?.labels.length ?? 0 },
          support: manifestSupport,
          hyperparameters,
        },
        { textClassifier: W, queries, queryClass, support },
      ),
    );
    printSummary(o.log, written.manifest, written.bytes, embedder.info, skipped, shortfall, timings);
    return { ...written, skipped, shortfall, timings };
  } finally {
    await embedder.close();
  }
}

function printSummary(log: (l: string) => void, m: IndexManifest, bytes: number, model: ModelInfo, skipped: BuildResult['skipped'], shortfall: BuildResult['shortfall'], timings: Record<string, number>): void {
  const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MB`;
  log(`\nindex ${m.name} ${m.version}: ${m.counts.classes} classes, ${m.counts.queries} segmentation queries, ${m.counts.support} support images`);
  for (const s of skipped) log(`  skipped ${s.path}: ${s.reason}`);
  if (shortfall.length) log(`  ${shortfall.length} class(es) got fewer support images than asked: ${shortfall.slice(0, 10).map((s) => `${s.name} (${s.got})`).join(', ')}${shortfall.length > 10 ? ', ...' : ''}`);
  const h = m.hyperparameters;
  log(`  hyperparameters (${h.source}): ${JSON.stringify(h.params.combined)}`);
  if (h.looAccuracy) log(`  leave-one-out accuracy: clip ${h.looAccuracy.clip.toFixed(3)}, calip ${h.looAccuracy.calip.toFixed(3)}, tipx ${h.looAccuracy.tipx.toFixed(3)}, combined ${h.looAccuracy.combined.toFixed(3)} (${h.looAccuracy.queries} queries)`);
  // In the Worker: support features as halves (engine) or float32 (onnxruntime), lse, labels and
  // weights per support image, classifier and queries as float32.
  const featureBytes = model.imageRuntime === 'engine' ? 2 : 4;
  const decoded = m.counts.support * (featureBytes * m.model.embedDim + 12) + 4 * (m.counts.classes + m.counts.queries) * m.model.embedDim;
  const modelBytes = model.workerMemory.totalBytes;
  log(`  index size ${mb(bytes)}; Worker memory: model ${mb(modelBytes)} + index ${mb(decoded)} = ${mb(modelBytes + decoded)} of 128 MB${modelBytes + decoded > model.workerMemory.limitBytes ? ' — DOES NOT FIT' : ''}`);
  log(`  timings: ${Object.entries(timings).map(([k, v]) => `${k} ${v.toFixed(1)}s`).join(', ')}`);
}

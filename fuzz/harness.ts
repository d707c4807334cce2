// One hostile image through what the Worker does with it: the work estimate from its header
// (refused over the budget), decode, classify preprocessing and encoding, segmentation. Reports
// the outcome, the time and the memory it allocated, to check against the estimate.
import { decodeImage, ImageDecodeError } from '../core/decode.js';
import { WorkBudgetError, type Pipeline } from '../core/pipeline.js';
import { admissionHeader, classifyWork, decodedHeader, segmentWork, type ImageHeader } from '../core/work-budget.js';

export interface FuzzLimits {
  maxPixels: number;
  maxDecodeMB: number;
  requestBytes: number;
  maxWindows: number;
}

/** The Worker's defaults (wrangler.toml). */
export const WORKER_LIMITS: FuzzLimits = { maxPixels: 16_000_000, maxDecodeMB: 48, requestBytes: 64 * 2 ** 20, maxWindows: 64 };

export type Outcome = 'answered' | 'over budget' | 'undecodable' | 'unsupported' | 'too large to decode' | 'too many windows';

export interface FuzzResult {
  outcome: Outcome;
  ms: number;
  /** Growth of the process's ArrayBuffer memory over the input (garbage not yet collected included). */
  allocatedBytes: number;
  /** What the header said the work would take at its peak (classify and segment). */
  estimateBytes?: number;
  /** ... and all it would allocate if nothing were collected: the bound for allocatedBytes. */
  allocationBound?: number;
}

/** Both routes' work: the image is classified and segmented. */
function workEstimate(pipeline: Pipeline, header: ImageHeader): { bytes: number; allocatedBytes: number } {
  const model = pipeline.encoder.info;
  const classify = classifyWork(header, model), segment = segmentWork(header, model, { queries: pipeline.index.queries.rows, format: 'json' });
  return { bytes: classify.bytes + segment.bytes, allocatedBytes: classify.allocatedBytes + segment.allocatedBytes };
}

export async function runHostileImage(pipeline: Pipeline, bytes: Uint8Array, limits: FuzzLimits = WORKER_LIMITS): Promise<FuzzResult> {
  const started = performance.now();
  const before = process.memoryUsage().arrayBuffers;
  let estimate: { bytes: number; allocatedBytes: number } | undefined;
  const done = (outcome: Outcome): FuzzResult => ({ outcome, ms: performance.now() - started, allocatedBytes: process.memoryUsage().arrayBuffers - before, estimateBytes: estimate?.bytes, allocationBound: estimate?.allocatedBytes });
  const header = admissionHeader(bytes, limits.maxPixels);
  if (header) {
    estimate = workEstimate(pipeline, header);
    if (estimate.bytes > limits.requestBytes) return done('over budget');
  }
  let image;
  try {
    image = decodeImage(bytes, { maxPixels: limits.maxPixels, maxDecodeMB: limits.maxDecodeMB });
  } catch (e) {
    if (!(e instanceof ImageDecodeError)) throw e;
    return done(e.code === 'unsupported_media_type' ? 'unsupported' : e.code === 'too_large' ? 'too large to decode' : 'undecodable');
  }
  if (estimate === undefined) {
    // The header walk failed where the decoder did not (a damaged JPEG it resynchronised): the
    // Worker admits the rest of the work from the decoded size, as here.
    estimate = workEstimate(pipeline, decodedHeader(image));
    if (estimate.bytes > limits.requestBytes) return done('over budget');
  }
  await pipeline.features([image]);
  try {
    await pipeline.segment(image, { maxWindows: limits.maxWindows });
  } catch (e) {
    if (!(e instanceof WorkBudgetError)) throw e;
    return done('too many windows');
  }
  return done('answered');
}

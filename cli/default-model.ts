// The embedded default model (shapes-clip), converted once into the working folder's cache.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SHAPES_CHECKPOINT } from '../eval/run.js';
import { convertCheckpoint } from '../models/convert.js';

export const DEFAULT_MODEL_DIR = join('.nameonly', 'models', 'shapes-clip');
export const SHAPES_TEMPLATES = new URL('../examples/shapes-templates.txt', import.meta.url).pathname;

/** The converted default model's folder; converts it the first time (convert writes atomically). */
export function defaultModel(log: (line: string) => void): string {
  if (!existsSync(join(DEFAULT_MODEL_DIR, 'model.json'))) {
    log(`converting the embedded default model shapes-clip into ${DEFAULT_MODEL_DIR} (once)...`);
    convertCheckpoint(SHAPES_CHECKPOINT, DEFAULT_MODEL_DIR, log);
  }
  return DEFAULT_MODEL_DIR;
}

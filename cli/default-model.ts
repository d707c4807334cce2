// The embedded default model (shapes-clip), converted once into the working folder's cache.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SHAPES_CHECKPOINT } from '../eval/run.js';
import { convertCheckpoint } from '../models/convert.js';
import { readModelInfo } from '../models/load-model.js';

export const DEFAULT_MODEL_DIR = join('.nameonly', 'models', 'shapes-clip');
export const SHAPES_TEMPLATES = new URL('../examples/shapes-templates.txt', import.meta.url).pathname;

/** Whether the cached conversion lacks what this version writes (the text tower on the engine). */
function outdated(): boolean {
  try {
    return !readModelInfo(DEFAULT_MODEL_DIR).textEngine;
  } catch {
    return true;
  }
}

/** The converted default model's folder; converts it the first time, and again after an upgrade (convert writes atomically). */
export function defaultModel(log: (line: string) => void): string {
  if (!existsSync(join(DEFAULT_MODEL_DIR, 'model.json'))) {
    log(`converting the embedded default model shapes-clip into ${DEFAULT_MODEL_DIR} (once)...`);
    convertCheckpoint(SHAPES_CHECKPOINT, DEFAULT_MODEL_DIR, log);
  } else if (outdated()) {
    log(`the conversion in ${DEFAULT_MODEL_DIR} is from an older version (no text tower on the engine): converting again; indexes built on it must be built again`);
    convertCheckpoint(SHAPES_CHECKPOINT, DEFAULT_MODEL_DIR, log);
  }
  return DEFAULT_MODEL_DIR;
}

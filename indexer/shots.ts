// User shots (training-free few-shot, TIP-X's few-shot mode): one sub-folder per class.
import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { IndexClass } from '../core/index-format.js';
import { InputFileError } from './inputs.js';

export function listShots(dir: string, classes: IndexClass[]): { label: number; path: string }[] {
  try {
    if (!statSync(dir).isDirectory()) throw new Error();
  } catch {
    throw new InputFileError(`--shots-dir ${dir} is not a folder`);
  }
  const byName = new Map(classes.flatMap((c, i) => [c.name, ...c.synonyms].map((n) => [n.toLowerCase(), i] as const)));
  const out: { label: number; path: string }[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (!entry.isDirectory()) continue;
    const label = byName.get(entry.name.toLowerCase().replace(/[_-]+/g, ' '));
    if (label === undefined) throw new InputFileError(`--shots-dir: folder "${entry.name}" does not name a class in the class list`);
    for (const file of readdirSync(join(dir, entry.name)).sort()) {
      if (['.jpg', '.jpeg', '.png'].includes(extname(file).toLowerCase())) out.push({ label, path: join(dir, entry.name, file) });
    }
  }
  if (out.length === 0) throw new InputFileError(`--shots-dir ${dir} has no images in class folders`);
  return out;
}

// A user's labelled images: a sub-folder per class (matched to the index's class names or
// synonyms, case-insensitively) or a CSV of file,label; masks in a folder that mirrors them.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import type { IndexClass } from '../core/index-format.js';
import { UsageError } from './args.js';
import { imageFiles } from './offline.js';

const key = (name: string) => name.trim().toLowerCase().replace(/[_-]+/g, ' ').replace(/\s+/g, ' ');

function classLookup(classes: IndexClass[]): (name: string) => number | undefined {
  const byName = new Map<string, number>();
  classes.forEach((c, k) => [c.name, ...c.synonyms].forEach((n) => byName.has(key(n)) || byName.set(key(n), k)));
  return (name) => byName.get(key(name));
}

export interface LabelledFile {
  file: string;
  label: number;
  /** Its mask, when a masks folder was given. */
  mask?: string;
}

export function labelledFiles(options: { images?: string; labels?: string; masks?: string }, classes: IndexClass[]): LabelledFile[] {
  const lookup = classLookup(classes);
  const known = classes.map((c) => c.name).join(', ');
  let files: LabelledFile[] = [];
  if (options.labels) {
    const base = options.images ?? dirname(options.labels);
    const rows = readFileSync(options.labels, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    if (rows[0] && /^file\s*,\s*label$/i.test(rows[0])) rows.shift();
    files = rows.map((row, i) => {
      const comma = row.lastIndexOf(',');
      if (comma < 0) throw new UsageError(`${options.labels}:${i + 1}: expected "file,label"`);
      const [file, name] = [row.slice(0, comma).trim(), row.slice(comma + 1).trim()];
      const label = lookup(name);
      if (label === undefined) throw new UsageError(`${options.labels}:${i + 1}: "${name}" is none of the index's classes (${known})`);
      return { file: resolve(base, file), label };
    });
  } else if (options.images) {
    if (!existsSync(options.images) || !statSync(options.images).isDirectory()) throw new UsageError(`${options.images} is not a folder`);
    const folders = readdirSync(options.images, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
    const unknown = folders.filter((f) => lookup(f) === undefined);
    if (unknown.length) throw new UsageError(`folders ${unknown.map((u) => `"${u}"`).join(', ')} match none of the index's classes (${known}); rename them, or give --labels file.csv`);
    if (folders.length === 0) throw new UsageError(`${options.images} has no sub-folders: put each class's images in a folder named after it, or give --labels file.csv`);
    files = folders.flatMap((folder) => imageFiles([join(options.images!, folder)]).map((file) => ({ file, label: lookup(folder)! })));
  } else {
    throw new UsageError('give --images <folder> (a sub-folder per class) or --labels file.csv');
  }
  if (files.length === 0) throw new UsageError('no labelled JPEG or PNG images found');
  if (options.masks) {
    const root = options.images ?? dirname(options.labels!);
    for (const f of files) {
      const mask = join(options.masks, relative(root, f.file)).replace(/\.(jpe?g|webp)$/i, '.png');
      if (!existsSync(mask)) throw new UsageError(`no mask for ${f.file} (looked for ${mask}): the masks folder mirrors the images folder, one PNG per image`);
      f.mask = mask;
    }
  }
  return files;
}

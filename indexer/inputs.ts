// Parsing the indexer's text inputs: class list, templates, CuPL-style descriptions.
import { readFileSync } from 'node:fs';
import type { IndexClass } from '../core/index-format.js';

export class InputFileError extends Error {}

export const MAX_NAME_LENGTH = 100;

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new InputFileError(`cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** One class per line; `name | synonym | synonym`; blank lines and # comments ignored. */
export function parseClassList(text: string, source = 'classes'): IndexClass[] {
  const classes: IndexClass[] = [];
  const seen = new Map<string, number>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) return;
    const names = line.split('|').map((n) => n.trim().replace(/\s+/g, ' '));
    names.forEach((name) => {
      if (!name) throw new InputFileError(`${source}:${i + 1}: empty class name`);
      if (name.length > MAX_NAME_LENGTH) throw new InputFileError(`${source}:${i + 1}: name "${name.slice(0, 30)}..." is longer than ${MAX_NAME_LENGTH} characters`);
      const key = name.toLowerCase();
      if (seen.has(key)) throw new InputFileError(`${source}:${i + 1}: "${name}" already appears on line ${seen.get(key)}`);
      seen.set(key, i + 1);
    });
    classes.push({ name: names[0]!, synonyms: names.slice(1) });
  });
  if (classes.length < 2) throw new InputFileError(`${source}: need at least two classes, found ${classes.length}`);
  return classes;
}

export function readClassList(path: string): IndexClass[] {
  return parseClassList(readText(path, 'class list'), path);
}

/** One template per line, each with `{}` where the class name goes. */
export function readTemplates(path: string): string[] {
  const templates = readText(path, 'templates file')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  templates.forEach((t, i) => {
    if (!t.includes('{}')) throw new InputFileError(`${path}: template ${i + 1} "${t}" has no {} for the class name`);
  });
  if (templates.length === 0) throw new InputFileError(`${path}: no templates`);
  return templates;
}

/** CuPL style: { "class name": ["sentence", ...] }; every key must be a class. */
export function readDescriptions(path: string, classes: IndexClass[]): Map<number, string[]> {
  let value: unknown;
  try {
    value = JSON.parse(readText(path, 'descriptions file'));
  } catch (e) {
    if (e instanceof InputFileError) throw e;
    throw new InputFileError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new InputFileError(`${path}: expected an object of class name -> sentences`);
  const byName = new Map(classes.flatMap((c, i) => [c.name, ...c.synonyms].map((n) => [n.toLowerCase(), i] as const)));
  const out = new Map<number, string[]>();
  for (const [name, sentences] of Object.entries(value)) {
    const index = byName.get(name.toLowerCase());
    if (index === undefined) throw new InputFileError(`${path}: "${name}" is not in the class list`);
    if (!Array.isArray(sentences) || !sentences.every((s) => typeof s === 'string' && s.trim())) throw new InputFileError(`${path}: "${name}" must map to a list of sentences`);
    out.set(index, [...(out.get(index) ?? []), ...sentences]);
  }
  return out;
}

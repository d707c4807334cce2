// Object keys of models and indexes in R2, shared by `nameonly publish` and the Worker:
//   models/<model-id>/model.json, models/<model-id>/<encoder file>   (model-id: sha256(model.json)[:16])
//   indexes/<name>/<version>/manifest.json, indexes/<name>/<version>/data.bin
//   indexes/<name>/current   (text: "<version> <sha256 of its manifest.json>", written last; the
//                             manifest's hash lives here so that every byte of an index is hashed)
export const modelId = (modelJsonSha256: string) => modelJsonSha256.slice(0, 16);
export const modelKey = (modelJsonSha256: string, file: string) => `models/${modelId(modelJsonSha256)}/${file}`;
export const indexKey = (name: string, version: string, file: string) => `indexes/${name}/${version}/${file}`;
export const currentKey = (name: string) => `indexes/${name}/current`;

export const currentPointer = (version: string, manifestSha256: string) => `${version} ${manifestSha256}`;

/** `current`'s text; an older pointer holds the version alone (its manifest is then unchecked). */
export function parseCurrentPointer(text: string): { version: string; manifestSha256?: string } {
  const [version = '', manifestSha256] = text.trim().split(/\s+/);
  return { version, manifestSha256 };
}

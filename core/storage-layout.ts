// Object keys of models and indexes in R2, shared by `nameonly publish` and the Worker:
//   models/<model-id>/model.json, models/<model-id>/<encoder file>   (model-id: sha256(model.json)[:16])
//   indexes/<name>/<version>/manifest.json, indexes/<name>/<version>/data.bin
//   indexes/<name>/current   (text: the live version; written last)
export const modelId = (modelJsonSha256: string) => modelJsonSha256.slice(0, 16);
export const modelKey = (modelJsonSha256: string, file: string) => `models/${modelId(modelJsonSha256)}/${file}`;
export const indexKey = (name: string, version: string, file: string) => `indexes/${name}/${version}/${file}`;
export const currentKey = (name: string) => `indexes/${name}/current`;

// Labels given at request time (labels=): the checks and the classifier they build (pure), and
// both Workers in workerd: the image Worker asking the text Worker through its service binding,
// against the offline CLI on the same image and labels.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { modelKey } from '../core/storage-layout.js';
import { modelJsonSha256, readModelInfo } from '../models/load-model.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLabels, DEFAULT_LABEL_TEMPLATES, labelsOnlyIndex, LabelError, splitLabels, withRequestLabels } from '../core/request-labels.js';
import { matrix, matVec } from '../core/linalg.js';
import { scoreImage, DEFAULT_PARAMS } from '../core/scoring/methods.js';
import { prepareSupport } from '../core/scoring/tipx.js';
import { LOGIT_SCALE } from '../core/scoring/zeroshot.js';
import { renderPrompt } from '../eval/generator-server.js';
import { main } from '../cli/main.js';
import { randomUnitRows, tempDir, tinyModel } from './helpers.js';
import { startWorker, syntheticIndex, type WorkerHandle } from './worker-harness.js';

describe('request labels: checks before any work', () => {
  it('trims, keeps order, defaults the template; refuses empty, repeated (any case, or a class of the index), too many, too long; names the label', () => {
    expect(checkLabels(splitLabels(' cat, dog ,bird'), undefined, 100)).toEqual({ labels: ['cat', 'dog', 'bird'], templates: DEFAULT_LABEL_TEMPLATES });
    const refused = (labels: unknown, templates?: unknown, max = 3, classes: string[] = []) => {
      try {
        checkLabels(labels, templates, max, classes);
      } catch (e) {
        expect(e).toBeInstanceOf(LabelError);
        return (e as LabelError).message;
      }
      throw new Error('accepted');
    };
    expect(refused(['cat', ''])).toMatch(/label 2 of 2 is empty/);
    expect(refused(['Cat', 'dog', 'cat '])).toMatch(/"cat" is given twice/);
    expect(refused(['star', 'dog'], undefined, 3, ['Star'])).toMatch(/"star" is given twice \(the same as a class of the index\)/);
    expect(refused(['a', 'b', 'c', 'd'])).toMatch(/4 labels, over the limit of 3/);
    expect(refused(['x'.repeat(301)])).toMatch(/301 characters/);
    expect(refused([])).toMatch(/at least one/);
    expect(refused('cat')).toMatch(/list of strings/);
    expect(refused(['cat'], ['a photo'])).toMatch(/no \{\} for the label/);
    expect(refused(['cat'], new Array(17).fill('{}'))).toMatch(/17 templates/);
    expect(() => checkLabels(Array.from({ length: 100 }, (_, i) => `l${i}`), ['a {}', 'b {}', 'c {}', 'd {}'], 100)).not.toThrow();
    expect(refused(Array.from({ length: 100 }, (_, i) => `l${i}`), ['a {}', 'b {}', 'c {}', 'd {}', 'e {}'], 100)).toMatch(/500 prompts to embed, over the limit of 400/);
  });

  it('labels added to an index: its rows then theirs, a query and a class each, its support set kept, no calibration', () => {
    const W = randomUnitRows(3, 8, 1), extra = randomUnitRows(2, 8, 2);
    const F = randomUnitRows(6, 8, 3), labels = Int32Array.of(0, 0, 1, 1, 2, 2);
    const base = labelsOnlyIndex(['a', 'b', 'c'], W, { name: 'm', modelJsonSha256: '0'.repeat(64) });
    const index = { ...base, support: prepareSupport(F, labels, W) };
    index.manifest.hyperparameters = { ...index.manifest.hyperparameters, calibration: {} as never };
    const out = withRequestLabels(index, ['x', 'y'], extra);
    expect(out.manifest.classes.map((c) => c.name)).toEqual(['a', 'b', 'c', 'x', 'y']);
    expect(out.textClassifier.rows).toBe(5);
    expect(out.textClassifier.data.subarray(24)).toEqual(extra.data);
    expect(Array.from(out.queryClass)).toEqual([0, 1, 2, 3, 4]);
    expect(out.support).toBe(index.support);
    expect(out.manifest.hyperparameters.calibration).toBeUndefined();

    // TIP-X's terms reach the index's classes only: the added ones keep their CLIP logit, and the
    // index's classes get exactly what TIP-X gives over the index alone.
    const f = randomUnitRows(1, 8, 4).data;
    const params = { ...DEFAULT_PARAMS, alpha: 1, gamma: 0.5 };
    const union = scoreImage('tipx', { embed: f }, out.textClassifier, out.support, params);
    const alone = scoreImage('tipx', { embed: f }, W, index.support, params);
    const clip = matVec(out.textClassifier, f);
    for (let c = 0; c < 3; c++) expect(union[c]).toBeCloseTo(alone[c]!, 5);
    for (let c = 3; c < 5; c++) expect(union[c]).toBeCloseTo(LOGIT_SCALE * clip[c]!, 5);
    expect(union[0]).not.toBeCloseTo(LOGIT_SCALE * clip[0]!, 3); // the terms do reach the index's classes
    expect(matrix(out.queries.data, 5, 8).rows).toBe(5);
  });
});

const { modelDir } = tinyModel('tiny-p16');
const image = renderPrompt('a red star', 1, 64);
const LABELS = ['receipt', 'invoice', 'menu'];

type Answer = { answer: string; labels: { label: string; score: number; logit: number }[]; method: string; index: unknown; request_labels?: { count: number; cache: { isolate: number; shared: number; encoded: number }; truncated: string[]; note?: string }; timings_ms: { text?: number }; legend?: { label: string }[]; error?: { code: string; message: string } };

const post = async (w: WorkerHandle, path: string, body: BodyInit = image as BodyInit, type = 'image/png') => {
  const r = await w.fetch(path, { method: 'POST', body, headers: { 'content-type': type } });
  return { status: r.status, body: (await r.json()) as Answer };
};

/** multipart/form-data with the image and text fields, built by hand (Node's FormData does not cross into Miniflare). */
function multipart(fields: Record<string, string>): { body: Uint8Array; type: string } {
  const boundary = 'labels-boundary';
  const text = (t: string) => new TextEncoder().encode(t);
  const parts = [text(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\nContent-Type: image/png\r\n\r\n`), image, text('\r\n')];
  for (const [name, value] of Object.entries(fields)) parts.push(text(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  parts.push(text(`--${boundary}--\r\n`));
  return { body: Uint8Array.from(parts.flatMap((p) => [...p])), type: `multipart/form-data; boundary=${boundary}` };
}

describe('labels= with the text Worker behind a service binding (workerd, both Workers)', () => {
  let worker: WorkerHandle;
  const r2 = tempDir('labels-r2');
  const indexDir = syntheticIndex(modelDir, 4, 2);

  beforeAll(async () => {
    worker = await startWorker({ DEFAULT_INDEX: 'bench', MAX_LABELS: '5' }, false, false, r2, 'bound');
    await worker.publish(indexDir, modelDir);
  }, 120_000);
  afterAll(async () => worker?.dispose());

  it('labels alone equal the offline CLI on the same image and labels (logits within 1e-3), for CLIP and CALIP; the query, a JSON body and a multipart body agree', async () => {
    const file = join(tempDir('labels-img'), 'star.png');
    writeFileSync(file, image);
    for (const method of ['clip', 'calip']) {
      const online = await post(worker, `/v1/classify?labels=${LABELS.join(',')}&method=${method}&top_k=3`);
      expect(online.status).toBe(200);
      expect(online.body.index).toBeNull();
      expect(online.body.request_labels).toMatchObject({ count: 3, truncated: [] });
      const lines: string[] = [];
      expect(await main(['classify', '--labels', LABELS.join(','), '--model', modelDir, '--method', method, '--top-k', '3', file], { out: (l) => lines.push(l), err: () => {} })).toBe(0);
      const offline = JSON.parse(lines[0]!) as Answer;
      expect(online.body.labels.map((l) => l.label)).toEqual(offline.labels.map((l) => l.label));
      online.body.labels.forEach((l, i) => expect(Math.abs(l.logit - offline.labels[i]!.logit)).toBeLessThanOrEqual(1e-3));
      const json = await post(worker, `/v1/classify?method=${method}&top_k=3`, JSON.stringify({ image: Buffer.from(image).toString('base64'), labels: LABELS }), 'application/json');
      const form = multipart({ labels: JSON.stringify(LABELS) });
      const viaForm = await post(worker, `/v1/classify?method=${method}&top_k=3`, form.body as BodyInit, form.type);
      for (const other of [json, viaForm]) {
        expect(other.status).toBe(200);
        expect(other.body.labels).toEqual(online.body.labels);
      }
    }
  });

  it('a repeated label costs nothing: the isolate has it; a fresh pair of Workers on the same bucket finds it in the shared cache', async () => {
    const labels = 'stapler,kettle';
    const first = await post(worker, `/v1/classify?labels=${labels}`);
    expect(first.body.request_labels!.cache).toEqual({ isolate: 0, shared: 0, encoded: 2 });
    expect(first.body.timings_ms.text).toBeGreaterThanOrEqual(0);
    const second = await post(worker, `/v1/classify?labels=${labels}`);
    expect(second.body.request_labels!.cache).toEqual({ isolate: 2, shared: 0, encoded: 0 });
    expect(second.body.labels).toEqual(first.body.labels);
    // Another template set is another key.
    const templated = await post(worker, '/v1/classify', JSON.stringify({ image: Buffer.from(image).toString('base64'), labels: ['stapler', 'kettle'], templates: ['a drawing of a {}.'] }), 'application/json');
    expect(templated.body.request_labels!.cache.encoded).toBe(2);
    const fresh = await startWorker({ DEFAULT_INDEX: 'bench' }, false, false, r2, 'bound');
    try {
      const third = await post(fresh, `/v1/classify?labels=${labels}`);
      expect(third.body.request_labels!.cache).toEqual({ isolate: 0, shared: 2, encoded: 0 });
      expect(third.body.labels).toEqual(first.body.labels);
    } finally {
      await fresh.dispose();
    }
  });

  it('every bad label is a 422 naming it; a label over 77 tokens is cut and named', async () => {
    const cases: [string, RegExp][] = [
      ['/v1/classify?labels=cat,,dog', /label 2 of 3 is empty/],
      ['/v1/classify?labels=Cat,dog,cat', /"cat" is given twice/],
      ['/v1/classify?labels=a,b,c,d,e,f', /6 labels, over the limit of 5 \(MAX_LABELS\)/],
      [`/v1/classify?labels=${'x'.repeat(301)}`, /301 characters/],
      ['/v1/classify?labels=class 1,dog&index=bench', /"class 1" is given twice \(the same as a class of the index\)/],
      ['/v1/segment?labels=cat,CAT', /"CAT" is given twice/],
    ];
    for (const [path, message] of cases) {
      const r = await post(worker, path);
      expect(r.status, path).toBe(422);
      expect(r.body.error!.message).toMatch(message);
    }
    const twice = await post(worker, '/v1/classify?labels=cat', JSON.stringify({ image: Buffer.from(image).toString('base64'), labels: ['dog'] }), 'application/json');
    expect(twice.status).toBe(422);
    expect(twice.body.error!.message).toMatch(/given twice: in the query and in the body/);
    const noBraces = await post(worker, '/v1/classify', JSON.stringify({ image: Buffer.from(image).toString('base64'), labels: ['dog'], templates: ['a photo'] }), 'application/json');
    expect(noBraces.status).toBe(422);
    expect(noBraces.body.error!.message).toMatch(/template "a photo" has no \{\}/);
    const long = 'x '.repeat(99) + 'y'; // 100 tokens in 199 characters
    const cut = await post(worker, `/v1/classify?labels=${encodeURIComponent(long)},short`);
    expect(cut.status).toBe(200);
    expect(cut.body.request_labels!.truncated).toEqual([long]);
  });

  it('an index named with labels: its classes and the labels; TIP-X terms only on its classes (said in the answer); the labels keep their zero-shot logits', async () => {
    const union = await post(worker, '/v1/classify?index=bench&labels=receipt,menu&method=tipx&top_k=6');
    expect(union.status).toBe(200);
    expect(union.body.labels.map((l) => l.label).sort()).toEqual(['class 0', 'class 1', 'class 2', 'class 3', 'menu', 'receipt']);
    expect(union.body.request_labels!.note).toMatch(/TIP-X scores only the 4 classes of index bench/);
    const alone = await post(worker, '/v1/classify?labels=receipt,menu&method=clip');
    for (const label of ['receipt', 'menu']) {
      expect(Math.abs(union.body.labels.find((l) => l.label === label)!.logit - alone.body.labels.find((l) => l.label === label)!.logit)).toBeLessThanOrEqual(1e-4);
    }
    const noSupport = await post(worker, '/v1/classify?labels=receipt,menu&method=tipx');
    expect(noSupport.status).toBe(422);
    expect(noSupport.body.error!.message).toMatch(/labels given with the request have no support set/);
  });

  it('segment takes the same labels: the legend is the labels (alone) or the index classes then the labels', async () => {
    const alone = await post(worker, '/v1/segment?labels=receipt,menu');
    expect(alone.status).toBe(200);
    expect(alone.body.legend!.map((l) => l.label)).toEqual(['receipt', 'menu']);
    const union = await post(worker, '/v1/segment?index=bench&labels=menu');
    expect(union.body.legend!.map((l) => l.label)).toEqual(['class 0', 'class 1', 'class 2', 'class 3', 'menu']);
  });
});

describe('labels= without a working text Worker: 503 with the reason, never a wrong answer', () => {
  it('the text tower missing from the bucket: the text Worker says so, the image Worker passes it on', async () => {
    const worker = await startWorker({ DEFAULT_INDEX: 'bench' }, false, false, undefined, 'bound');
    try {
      await worker.publish(syntheticIndex(modelDir, 4, 2), modelDir);
      const info = readModelInfo(modelDir);
      const sha = modelJsonSha256(modelDir);
      await (await worker.mf.getR2Bucket('STORE')).delete(modelKey(sha, info.files.textEngineWeights!));
      const r = await post(worker, '/v1/classify?labels=receipt,menu');
      expect(r.status).toBe(503);
      expect(r.body.error!.message).toMatch(/the text Worker could not embed the labels \(503\): text engine weights of model .* are not in the bucket; publish the model again/);
    } finally {
      await worker.dispose();
    }
  });

  for (const text of ['unbound', 'down'] as const) {
    it(`text Worker ${text}`, async () => {
      const worker = await startWorker({ DEFAULT_INDEX: 'bench' }, false, false, undefined, text);
      try {
        await worker.publish(syntheticIndex(modelDir, 4, 2), modelDir);
        const r = await post(worker, '/v1/classify?labels=receipt,menu');
        expect(r.status).toBe(503);
        expect(r.body.error!.message).toMatch(text === 'unbound' ? /no TEXT service binding/ : /text Worker/);
        // Without labels the index still answers.
        expect((await post(worker, '/v1/classify')).status).toBe(200);
      } finally {
        await worker.dispose();
      }
    });
  }
});

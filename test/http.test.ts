// Request bodies at the Worker's edge (worker/http.ts), in Node's fetch implementation.
import { describe, expect, it } from 'vitest';
import { HttpError, readBody } from '../worker/http.js';

const request = (body: BodyInit | ReadableStream<Uint8Array>, headers: Record<string, string> = {}) => new Request('http://localhost/v1/classify', { method: 'POST', body, headers, duplex: 'half' } as RequestInit);

describe('readBody', () => {
  it('a Content-Length that is not a byte count is a 400, not a 500', async () => {
    for (const header of ['abc', '-1', '1e3', '']) {
      const error = await readBody(request('xyz', { 'content-length': header }), 100).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(HttpError);
      expect((error as HttpError).message).toMatch(/is not a byte count/);
      expect((error as HttpError).status).toBe(400);
    }
    expect(await readBody(request('xyz', { 'content-length': '3' }), 100)).toEqual(new TextEncoder().encode('xyz'));
  });

  it('an upload that breaks off is a 400 with the reason', async () => {
    const broken = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array(10));
        controller.error(new Error('connection reset'));
      },
    });
    await expect(readBody(request(broken), 100)).rejects.toThrow(/the upload broke off before the body was complete/);
  });
});

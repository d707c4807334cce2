// Our SuS-SD stand-in: a text-to-image service for the shapes world, speaking the
// indexer's generator protocol: POST JSON {prompt, seed, width, height} -> PNG.
import { createServer, type Server } from 'node:http';
import { encode as encodePng } from 'fast-png';
import { parsePrompt, PromptError, renderScene, type RenderStyle } from './shapes-world.js';

export function renderPrompt(prompt: string, seed: number, size: number, style: RenderStyle = 'world'): Uint8Array {
  const scene = renderScene(parsePrompt(prompt, seed), seed, size, style);
  return encodePng({ width: size, height: size, data: scene.image.data, channels: 3, depth: 8 });
}

/** style 'flat': the off-domain look, the stand-in for text-to-image pictures of a photo-trained world. */
export function startGeneratorServer(port = 0, host = '127.0.0.1', style: RenderStyle = 'world'): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const fail = (status: number, message: string) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message } }));
    };
    if (req.method !== 'POST') return fail(405, 'POST JSON {prompt, seed, width, height}');
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > 1e5) req.destroy();
    });
    req.on('end', () => {
      let request: { prompt?: unknown; seed?: unknown; width?: unknown; height?: unknown };
      try {
        request = JSON.parse(body);
      } catch {
        return fail(400, 'body is not JSON');
      }
      const { prompt, seed = 0, width = 64, height = width } = request;
      if (typeof prompt !== 'string' || !prompt.trim()) return fail(400, 'prompt must be a non-empty string');
      if (!Number.isInteger(seed) || !Number.isInteger(width) || width !== height || (width as number) < 16 || (width as number) > 1024) {
        return fail(400, 'seed must be an integer and width = height in 16..1024');
      }
      try {
        const png = renderPrompt(prompt, seed as number, width as number, style);
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length });
        res.end(png);
      } catch (e) {
        fail(e instanceof PromptError ? 422 : 500, (e as Error).message);
      }
    });
  });
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const address = server.address();
      const actual = typeof address === 'object' && address ? address.port : port;
      resolvePromise({ server, url: `http://${host}:${actual}/generate` });
    });
  });
}

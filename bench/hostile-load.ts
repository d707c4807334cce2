// A load run against a listening Worker: `connections` clients in a closed loop for `seconds`,
// of which `hostile` send segment requests with hostile images (a 1024×1 strip, a 65535×1 strip,
// a large `size`) and the rest classify a valid image. Reports classify latency and statuses.
import { encode as encodePng } from 'fast-png';

export const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

export interface LoadResult {
  classify: { requests: number; failed: number; p50: number; p99: number };
  segment: { requests: number; statuses: Record<number, number> };
}

const strip = (width: number) => encodePng({ width, height: 1, data: Uint8Array.from({ length: width * 3 }, (_, i) => (i * 7) % 256), channels: 3, depth: 8 });

export async function hostileLoadRun(url: string, validImage: Uint8Array, options: { seconds: number; connections: number; hostile: number }): Promise<LoadResult> {
  const hostileRequests: [string, Uint8Array][] = [
    ['/v1/segment?format=rle', strip(1024)],
    ['/v1/segment?format=rle', strip(65535)],
    ['/v1/segment?format=png&size=256', validImage],
  ];
  const latencies: number[] = [];
  let failed = 0, segments = 0;
  const statuses: Record<number, number> = {};
  const end = Date.now() + options.seconds * 1000;
  const post = (path: string, body: Uint8Array) => fetch(`${url}${path}`, { method: 'POST', body: body as BodyInit, headers: { 'content-type': 'image/png' } });
  const client = async (i: number) => {
    for (let n = 0; Date.now() < end; n++) {
      if (i < options.hostile) {
        const [path, body] = hostileRequests[(i + n) % hostileRequests.length]!;
        const r = await post(path, body);
        await r.arrayBuffer();
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        segments++;
      } else {
        const t = performance.now();
        const r = await post('/v1/classify?method=combined', validImage);
        await r.arrayBuffer();
        latencies.push(performance.now() - t);
        if (r.status !== 200) failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: options.connections }, (_, i) => client(i)));
  return { classify: { requests: latencies.length, failed, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) }, segment: { requests: segments, statuses } };
}

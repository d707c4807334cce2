// Pool embedding cache, keyed by image content hash. The format is the contract for
// sharding: a folder of append-only `*.bin` shard files, each a run of records of
// 32 bytes of SHA-256 followed by D little-endian float32 (the normalised image
// embedding). Shards made on other machines are merged by copying them into the folder.
import { appendFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export class EmbeddingCache {
  private readonly entries = new Map<string, Float32Array>();
  private readonly shard: string;

  constructor(
    readonly dir: string,
    readonly dim: number,
  ) {
    mkdirSync(dir, { recursive: true });
    const record = 32 + 4 * dim;
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.bin')).sort()) {
      const bytes = readFileSync(join(dir, file));
      // A record cut short by an interrupted write is ignored; everything before it counts.
      for (let off = 0; off + record <= bytes.length; off += record) {
        const key = bytes.subarray(off, off + 32).toString('hex');
        this.entries.set(key, new Float32Array(bytes.buffer.slice(bytes.byteOffset + off + 32, bytes.byteOffset + off + record)));
      }
    }
    this.shard = join(dir, `shard-${Date.now()}-${process.pid}.bin`);
  }

  get size(): number {
    return this.entries.size;
  }

  get(sha256: string): Float32Array | undefined {
    return this.entries.get(sha256);
  }

  /** Appends at once, so an interrupted run keeps what it embedded. */
  add(sha256: string, embedding: Float32Array): void {
    if (embedding.length !== this.dim) throw new Error(`cache: embedding of ${embedding.length}, expected ${this.dim}`);
    this.entries.set(sha256, embedding);
    const record = Buffer.alloc(32 + 4 * this.dim);
    Buffer.from(sha256, 'hex').copy(record, 0);
    Buffer.from(embedding.buffer, embedding.byteOffset, embedding.byteLength).copy(record, 32);
    appendFileSync(this.shard, record);
  }
}

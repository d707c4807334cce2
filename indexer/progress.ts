// Progress output for long steps: a bar with rate and ETA on a terminal, a line every
// few seconds otherwise (CI logs).
export class Progress {
  private done = 0;
  private readonly started = Date.now();
  private lastPrint = 0;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly unit = 'items',
    private readonly stream: NodeJS.WriteStream | null = process.stderr,
  ) {}

  tick(n = 1): void {
    this.done += n;
    if (!this.stream) return;
    const now = Date.now();
    if (now - this.lastPrint < (this.stream.isTTY ? 100 : 5000) || this.done >= this.total) return;
    this.lastPrint = now;
    this.print(false);
  }

  private print(final: boolean): void {
    if (!this.stream) return;
    const secs = (Date.now() - this.started) / 1000;
    const rate = this.done / Math.max(secs, 1e-3);
    const eta = rate > 0 ? (this.total - this.done) / rate : 0;
    const width = 24, filled = Math.round((width * this.done) / Math.max(this.total, 1));
    const line = `${this.label} [${'='.repeat(filled)}${' '.repeat(width - filled)}] ${this.done}/${this.total} ${rate.toFixed(1)} ${this.unit}/s ${final ? `in ${secs.toFixed(1)}s` : `ETA ${eta.toFixed(0)}s`}`;
    if (this.stream.isTTY) this.stream.write(`\r${line}${final ? '\n' : ''}`);
    else this.stream.write(line + '\n');
  }

  finish(): number {
    this.print(true);
    return (Date.now() - this.started) / 1000;
  }
}

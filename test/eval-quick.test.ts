// A small, fast run of `npm run eval` (a few dozen images): a regression anywhere in the
// pipeline (converter, tokenizer, indexer, generator, scoring, segmentation) fails here.
// Thresholds are well below what the full eval reports (README).
import { describe, expect, it } from 'vitest';
import { formatReport, QUICK, runEval } from '../eval/run.js';
import { tempDir } from './helpers.js';

describe('shapes-world evaluation (quick)', () => {
  it('runs the real pipeline end to end and clears conservative accuracy floors', { timeout: 300_000 }, async () => {
    const report = await runEval({ ...QUICK, workDir: tempDir('eval'), log: () => {} });
    const shape = (method: string) => report.shapes.find((r) => r.method === method)!.accuracy;
    expect(shape('CLIP')).toBeGreaterThan(0.45); // chance is 12.5 %
    expect(shape('TIP-X')).toBeGreaterThanOrEqual(shape('CLIP') - 0.05); // 16 generated shots do not hurt
    expect(shape('CALIP (published defaults)')).toBeGreaterThan(0.45);
    expect(report.pairs.find((r) => r.method === 'CLIP')!.accuracy).toBeGreaterThan(0.3); // chance is 1.6 %
    const csa = report.segmentation.find((s) => s.attention === 'csa' && !s.pamr && s.probThreshold === null)!;
    expect(csa.pixelAccuracy).toBeGreaterThan(0.2);
    expect(report.segmentation).toHaveLength(4 * 2 * 2); // every last block, with and without PAMR and the threshold
    // Calibration and "none of these" for every method: few in-class test renders refused, and
    // empty backgrounds of the world refused more often than shapes.
    expect(report.calibration.map((c) => c.method)).toEqual(['clip', 'calip', 'tipx', 'combined']);
    for (const c of report.calibration) {
      expect(c.rejectedInClass).toBeLessThan(0.25);
      expect(c.rejectedEmpty).toBeGreaterThan(c.rejectedInClass);
    }
    // On its own test set a label-peeking grid search can only match or beat any single grid point (sequential for 'combined', so not checked there).
    for (const t of report.tuning.filter((r) => r.method !== 'combined')) expect(t.peekingAccuracy).toBeGreaterThanOrEqual(t.nameOnlyAccuracy);
    expect(formatReport(report)).toMatch(/\| CLIP \| - \| \d+\.\d %/);
    // The engine (the Worker's image tower) against onnxruntime-web on the same renders: at most two of 48 images apart.
    const [engine, ort] = report.runtimes;
    for (const m of ['clip', 'calip', 'combined'] as const) expect(Math.abs(engine![m] - ort![m])).toBeLessThanOrEqual(2 / 48 + 1e-9);
  });
});

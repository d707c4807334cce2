import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatReport, FULL, QUICK, runEval } from '../../eval/run.js';
import { parse, type Command } from '../args.js';

export const evaluate: Command = {
  name: 'eval',
  summary: 'the accuracy tables on the shapes world (CLIP, CALIP, TIP-X, combined, CSA)',
  usage: `nameonly eval [--quick] [--json report.json] [--work <dir>]
   (also: npm run eval)

Renders fresh seeded test sets of the shapes world and runs them through the real
pipeline (converted shapes-clip, indexes with generated support sets, the Worker's
uint8 encoder in WASM). Prints markdown tables; --json writes the numbers too.`,
  async run(argv, io) {
    const { values } = parse(argv, { quick: { type: 'boolean' }, json: { type: 'string' }, work: { type: 'string' } });
    const workDir = values.work ?? mkdtempSync(join(tmpdir(), 'nameonly-eval-'));
    const report = await runEval({ ...(values.quick ? QUICK : FULL), workDir, log: io.err });
    io.out(formatReport(report));
    io.out(`\n(nameonly eval${values.quick ? ' --quick' : ''}, ${report.date}, ${report.seconds.toFixed(0)} s)`);
    if (values.json) writeFileSync(values.json, JSON.stringify(report, null, 2) + '\n');
    return 0;
  },
};

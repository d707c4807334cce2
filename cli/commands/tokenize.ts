import { bundledVocabulary } from '../../models/bundled-vocab.js';
import { openTokenizer } from '../../models/load-model.js';
import { ClipTokenizer } from '../../core/tokenizer.js';
import { parse, UsageError, type Command } from '../args.js';

export const tokenize: Command = {
  name: 'tokenize',
  summary: 'print CLIP token ids (77 per text) as JSON',
  usage: `nameonly tokenize "<text>" ["<text>" ...] [--model <model-dir>]

Prints a JSON array with one 77-long id array per text. Uses the model's own
vocabulary with --model, otherwise the bundled OpenAI CLIP vocabulary.`,
  async run(argv, io) {
    const { values, positionals } = parse(argv, { model: { type: 'string', short: 'm' } }, true);
    if (positionals.length === 0) throw new UsageError('give at least one text to tokenize');
    const tokenizer = values.model ? openTokenizer(values.model) : new ClipTokenizer(bundledVocabulary().vocab, bundledVocabulary().merges);
    io.out(JSON.stringify(positionals.map((t) => tokenizer.tokenize(t))));
    return 0;
  },
};

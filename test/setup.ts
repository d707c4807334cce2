// Runs in every test file: its temporary folder goes when the file ends.
import { afterAll } from 'vitest';
import { removeTestFiles } from './helpers.js';

afterAll(removeTestFiles);

#!/usr/bin/env node
/** Entry point of the `pelk` command; the commands live in main.ts. */
import { main } from './main.js';

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});

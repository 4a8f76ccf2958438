// The container image's ENTRYPOINT: `<bin> [flags…]` runs one of package.json's bins, so one image
// serves the hub, the agent and the CLIs (`podman run fedtunnel:0.1.0 proxy-server --help`).
// The bins are read from package.json, not listed here, so a new bin needs no change to this file.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { resolveBin } from './bins.js';

/** The package root: this file is dist/deploy/image/entrypoint.js. */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const bins = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin;
const choice = resolveBin(bins, process.argv.slice(2));
if ('usage' in choice) {
  (choice.exitCode === 0 ? process.stdout : process.stderr).write(choice.usage);
  process.exit(choice.exitCode);
}
// The bins parse process.argv.slice(2) as they load: give them their own argv.
const file = path.join(root, choice.file);
process.argv = [process.argv[0]!, file, ...choice.args];
await import(pathToFileURL(file).href);

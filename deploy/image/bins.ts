// Which bin the image's entrypoint runs: a pure decision over package.json's `bin` map and argv.

export type BinChoice = { file: string; args: string[] } | { usage: string; exitCode: 0 | 2 };

export function resolveBin(bins: Record<string, string>, argv: string[]): BinChoice {
  const names = Object.keys(bins).sort();
  const usage = `usage: <bin> [flags…], bin one of: ${names.join(', ')} (each takes --help)\n`;
  const [name, ...args] = argv;
  if (name === undefined) return { usage, exitCode: 2 };
  if (name === '--help' || name === '-h') return { usage, exitCode: 0 };
  const file = Object.hasOwn(bins, name) ? bins[name] : undefined;
  if (file === undefined) return { usage: `unknown bin ${JSON.stringify(name)}\n${usage}`, exitCode: 2 };
  return { file, args };
}

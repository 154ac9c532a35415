// The files and bytes of JavaScript an entry point loads from this package
// (its static and literal dynamic import closure), to compare generated
// monitors by how much code they load. A test helper, not product code.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export function importClosure(entry: string, resolveDynamic: (spec: string, from: string) => string[] = () => []): { files: string[]; bytes: number } {
  const seen = new Set<string>();
  let bytes = 0;
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    bytes += Buffer.byteLength(text);
    for (const m of text.matchAll(/^\s*(?:import|export)\s(?:[^'"]*?from\s+)?['"]([^'"]+)['"]/gm)) {
      const spec = m[1] as string;
      if (spec.startsWith('file://')) visit(fileURLToPath(spec));
      else if (spec.startsWith('.')) visit(resolve(dirname(file), spec));
    }
    for (const f of resolveDynamic(text, file)) visit(f);
  };
  visit(resolve(entry));
  return { files: [...seen], bytes };
}

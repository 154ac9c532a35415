// The solo5-hvt command line (docs/abi.md §2): the first pass finds --help,
// --version and KERNEL; the second, run after the kernel's notes are read,
// gives --mem= to the core and every other option to the modules in order.
import { DEFAULT_MEM_MIB, HVT_ABI_VERSION, MiB } from '../abi/constants.js';
import { invalidOption } from '../errors.js';
import type { Manifest } from '../kernel/manifest.js';
import { parseMemArg } from '../vm/memsize.js';
import type { Module, ModuleDescriptor } from '../module.js';

export type CliAction =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'missing-kernel' }
  | { kind: 'run'; kernel: string; options: string[]; guestArgs: string[] };

/** Pass 1 (§2.3 rule 1). Options written as "--disk PATH" become "--disk=PATH". */
export function firstPass(argv: readonly string[], modules: readonly ModuleDescriptor[]): CliAction {
  const separate = new Set(modules.flatMap((m) => m.cli.separateValue ?? []));
  const options: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('-')) break;
    if (arg === '--') {
      i++;
      break;
    }
    if (arg === '--help') return { kind: 'help' };
    if (arg === '--version') return { kind: 'version' };
    const next = argv[i + 1];
    if (separate.has(arg) && next !== undefined) {
      options.push(`${arg}=${next}`);
      i++;
    } else {
      options.push(arg);
    }
  }
  const kernel = argv[i];
  if (kernel === undefined) return { kind: 'missing-kernel' };
  return { kind: 'run', kernel, options, guestArgs: argv.slice(i + 1) };
}

/**
 * Pass 2: applies --mem= (the last one wins) and hands every other option to
 * the first module that takes it. Returns the requested memory in bytes.
 */
export function secondPass(options: readonly string[], mft: Manifest, modules: readonly Module[]): bigint {
  let mem = BigInt(DEFAULT_MEM_MIB * MiB);
  for (const arg of options) {
    if (arg.startsWith('--mem=')) {
      mem = parseMemArg(arg.slice('--mem='.length));
      continue;
    }
    if (!modules.some((m) => m.handleArg?.(arg, mft) === true)) throw invalidOption(arg);
  }
  return mem;
}

export function usageText(prog: string, modules: readonly ModuleDescriptor[]): string {
  const moduleLines = modules.flatMap((m) => m.cli.usage);
  return [
    `usage: ${prog} [ CORE OPTIONS ] [ MODULE OPTIONS ] [ -- ] KERNEL [ ARGS ]`,
    'KERNEL is the filename of the unikernel to run.',
    'ARGS are optional arguments passed to the unikernel.',
    'Core options:',
    `  [ --mem=${DEFAULT_MEM_MIB} ] (guest memory in MiB)`,
    '  [ --help ] (display this help)',
    '  [ --version ] (display version information)',
    `Compiled-in modules: ${modules.map((m) => m.name).join(' ')}`,
    ...(moduleLines.length ? ['Module options:', ...moduleLines.map((l) => `  ${l}`)] : []),
  ].join('\n');
}

export function versionText(prog: string, version: string): string {
  return `${prog} (ukvm-ts) tender, version ${version}\nABI version ${HVT_ABI_VERSION}`;
}
